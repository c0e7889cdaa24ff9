"""``usage_level`` / ``spend_level``, ``commitment_cover[commitment,hour]`` and
``covered_usage[pool,hour]``: each commitment has one purchase row with its level (the level
given in the instance, if any, and within max_level); coverage is of pools the commitment applies
to, in its window; covered chips never exceed the chips in use, nor (spend: at the discounted
rate) the level; covered usage is not billed at the pool's rate, and the level is paid for every
hour of the window."""

from __future__ import annotations

from collections import defaultdict

from optimizer.plans.checker.facts import Facts, close, exceeds


def _listed(value) -> list | None:
    return None if value is None else (list(value) if isinstance(value, list) else [value])


def applies(facts: Facts, applies_to, pool) -> bool:
    """The pool is one ``applies_to`` describes (stated here again: the checker shares no code)."""
    chip, site = facts.chips[pool.chip], facts.sites[pool.site]
    for wanted, have in ((applies_to.vendor, chip.vendor), (applies_to.chip, pool.chip),
                         (applies_to.cloud, site.cloud), (applies_to.site, pool.site), (applies_to.pool, pool.id)):
        values = _listed(wanted)
        if values is not None and have not in values:
            return False
    return True


def check(facts: Facts) -> None:
    violations = facts.violations
    commitments = {c.id: c for c in facts.instance.commitments}
    levels: dict[str, float] = {}
    for commitment in facts.instance.commitments:
        start = commitment.start_hour
        end = commitment.end_hour if commitment.end_hour is not None else facts.hours
        entry = facts.purchases.get(commitment.id)
        name = f"{commitment.kind}_level[{commitment.id}]"
        if entry is None:
            violations.append(f"{name}: no purchases.csv row (every commitment has one, its level 0 if none is bought)")
            continue
        _, row_start, level, usd, where = entry
        if row_start != start:
            violations.append(f"{where}: start_hour {row_start}, the commitment starts at {start}")
        if commitment.level is not None and not close(level, commitment.level):
            violations.append(f"{name}: level {level:g}, but {commitment.level:g} was bought already")
        if commitment.max_level is not None and exceeds(level, commitment.max_level):
            violations.append(f"{name}: level {level:g} is above max_level {commitment.max_level:g}")
        if commitment.kind == "usage" and level != int(level):
            violations.append(f"{name}: a usage commitment's level is whole chips, got {level:g}")
        rate = 1.0 if commitment.kind == "spend" else commitment.usd_per_chip_hour
        fee = level * rate * (end - start)
        if not close(usd, fee):
            violations.append(f"{name}: usd is {usd!r}, level x rate x {end - start} hours is {fee:.6f}")
        facts.costs["commitments"] += fee
        levels[commitment.id] = level

    covered_chips: dict[tuple[str, int], float] = defaultdict(float)  # (pool, hour) -> chips covered
    against_level: dict[tuple[str, int], float] = defaultdict(float)  # (commitment, hour) -> level used
    for (commitment_id, pool_id, hour), chips in sorted(facts.coverage.items()):
        commitment, pool = commitments[commitment_id], facts.pools[pool_id]
        end = commitment.end_hour if commitment.end_hour is not None else facts.hours
        name = f"{commitment.kind}_covered[{commitment_id},{pool_id},{hour}]"
        if pool.pricing != "on_demand" or not applies(facts, commitment.applies_to, pool):
            violations.append(f"{name}: the commitment does not apply to pool {pool_id!r}")
            continue
        if not commitment.start_hour <= hour < end:
            violations.append(f"{name}: hour {hour} is outside the window {commitment.start_hour}-{end - 1}")
            continue
        covered_chips[(pool_id, hour)] += chips
        weight = (1 - commitment.discount) * pool.usd_per_chip_hour if commitment.kind == "spend" else 1.0
        against_level[(commitment_id, hour)] += weight * chips
        facts.costs["usage"] -= chips * pool.usd_per_chip_hour
        facts.covered_usd[pool_id] += chips * pool.usd_per_chip_hour
    for (pool_id, hour), chips in sorted(covered_chips.items()):
        used = facts.pool_hour_chips.get((pool_id, hour), 0)
        if exceeds(chips, used):
            violations.append(f"covered_usage[{pool_id},{hour}]: {chips:g} chips covered, {used} in use")
    for (commitment_id, hour), amount in sorted(against_level.items()):
        level = levels.get(commitment_id, 0.0)
        if exceeds(amount, level):
            unit = "USD/h at the discounted rate" if commitments[commitment_id].kind == "spend" else "chips"
            violations.append(f"commitment_cover[{commitment_id},{hour}]: {amount:.6g} {unit} covered, level {level:g}")
