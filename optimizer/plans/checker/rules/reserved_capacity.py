"""``reserved_blocks[pool]`` and ``reserved_capacity[pool,hour]``: each reservations row names a
reserved pool once, with whole blocks within its availability; chips in use on a reserved pool
never exceed what is held in any hour; what is held is paid for every hour of the horizon."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, whole


def read(facts: Facts, rows: list[dict[str, str]]) -> None:
    violations = facts.violations
    for row in rows:
        where = f"reservations.csv line {row['_line']}"
        pool = facts.pools.get(row["pool"])
        count = whole(row["chips"])
        if pool is None:
            violations.append(f"{where}: unknown pool {row['pool']!r}")
        elif pool.pricing != "reserved":
            violations.append(f"{where}: pool {pool.id!r} is {pool.pricing}, not reserved")
        elif count is None or count < 0:
            violations.append(f"{where}: chips must be a whole number >= 0, got {row['chips']!r}")
        elif pool.id in facts.reserved:
            violations.append(f"{where}: pool {pool.id!r} listed twice")
        else:
            if count % pool.block:
                violations.append(f"reserved_blocks[{pool.id}]: {count} chips is not a multiple of block {pool.block}")
            if count > pool.available:
                violations.append(f"reserved_blocks[{pool.id}]: {count} chips reserved, at most {pool.available} available")
            facts.reserved[pool.id] = count
    fees = {pool_id: count * facts.pools[pool_id].usd_per_chip_hour * facts.hours
            for pool_id, count in facts.reserved.items()}
    for pool_id, fee in fees.items():
        facts.pool_fees_usd[pool_id] += fee
    facts.costs["reserved"] += sum(fees.values())


def check(facts: Facts) -> None:
    for (pool_id, hour), count in sorted(facts.pool_hour_chips.items()):
        if facts.pools[pool_id].pricing != "reserved":
            continue
        held = facts.reserved.get(pool_id, 0)
        if count > held:
            facts.violations.append(f"reserved_capacity[{pool_id},{hour}]: {count} chips allocated, {held} reserved")
