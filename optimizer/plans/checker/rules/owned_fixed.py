"""``fixed_cost[pool]``: an owned pool pays fixed_usd_per_chip_hour on every chip its
``available`` lists, in every hour, used or not: the cost term ``fixed``."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, at


def check(facts: Facts) -> None:
    for pool in facts.instance.pools:
        if pool.fixed_usd_per_chip_hour:
            chips = sum(at(pool.available, hour) for hour in range(facts.hours))
            facts.costs["fixed"] += chips * pool.fixed_usd_per_chip_hour
            facts.pool_fees_usd[pool.id] += chips * pool.fixed_usd_per_chip_hour
