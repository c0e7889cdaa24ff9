"""``pool_capacity[pool,hour]``: chips in use on a rented pool in an hour <= its available chips."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, at


def check(facts: Facts) -> None:
    for (pool_id, hour), count in sorted(facts.pool_hour_chips.items()):
        pool = facts.pools[pool_id]
        if pool.pricing != "reserved" and count > at(pool.available, hour):
            facts.violations.append(
                f"pool_capacity[{pool_id},{hour}]: {count} chips allocated, {at(pool.available, hour)} available")
