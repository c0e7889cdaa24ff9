"""``blocks_bought[offer,hour]``, ``block_offer_limit[offer]`` and ``block_capacity[pool,hour]``:
every block purchase starts where its offer allows, whole blocks, at least what was bought
already and within max_blocks; chips in use on a capacity_block pool never exceed the chips of
the blocks that cover the hour; each block is paid for its whole duration."""

from __future__ import annotations

from collections import defaultdict

from optimizer.plans.checker.facts import Facts, close


def check(facts: Facts) -> None:
    violations, hours = facts.violations, facts.hours
    held: dict[tuple[str, int], int] = defaultdict(int)  # (pool, hour) -> chips under blocks
    for offer in facts.instance.capacity_blocks:
        pool = facts.pools[offer.pool]
        latest = offer.latest_start_hour if offer.latest_start_hour is not None else hours - offer.duration_hours
        already: dict[int, int] = defaultdict(int)
        for bought in offer.bought:
            already[bought.start_hour] += bought.blocks
        total = 0
        starts = {start for (instrument, start) in facts.block_purchases if instrument == offer.id}
        for start in sorted(starts | set(already)):
            entry = facts.block_purchases.get((offer.id, start))
            chips = 0 if entry is None else entry[2]
            name = f"blocks_bought[{offer.id},{start}]"
            if chips != int(chips) or int(chips) % pool.block:
                violations.append(f"{name}: {chips:g} chips is not a whole number of {pool.block}-chip blocks")
                continue
            blocks = int(chips) // pool.block
            if start < offer.earliest_start_hour or start > latest or (start - offer.earliest_start_hour) % offer.start_step_hours:
                violations.append(f"{name}: a block may start in hours {offer.earliest_start_hour}-{latest} every "
                                  f"{offer.start_step_hours}, not at {start}")
            if blocks < already[start]:
                violations.append(f"{name}: {blocks} blocks, but {already[start]} were bought already (they stay paid)")
            fee = chips * offer.duration_hours * offer.usd_per_chip_hour
            if entry is not None and not close(entry[3], fee):
                violations.append(f"{name}: usd is {entry[3]!r}, {chips:g} chips x {offer.duration_hours} h x "
                                  f"{offer.usd_per_chip_hour} is {fee:.6f}")
            facts.costs["blocks"] += fee
            facts.pool_fees_usd[pool.id] += fee
            total += blocks
            for hour in range(start, min(start + offer.duration_hours, hours)):
                held[(pool.id, hour)] += int(chips)
        if offer.max_blocks is not None and total > offer.max_blocks:
            violations.append(f"block_offer_limit[{offer.id}]: {total} blocks bought, at most {offer.max_blocks}")
    for (pool_id, hour), count in sorted(facts.pool_hour_chips.items()):
        if facts.pools[pool_id].pricing == "capacity_block" and count > held[(pool_id, hour)]:
            violations.append(f"block_capacity[{pool_id},{hour}]: {count} chips allocated, "
                              f"{held[(pool_id, hour)]} under blocks bought")
