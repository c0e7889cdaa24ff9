"""Procurement instruments: which pools each covers, and their cross-entity checks.

Capacity-block offers, commitments and take-or-pay contracts (schema.py) name pools directly or
through ``applies_to``; here each is resolved against the instance, with a field path and a fix
for everything that does not fit (docs/formulation.md, "Procurement", states the rules).
"""

from __future__ import annotations

from optimizer.errors import FieldError
from optimizer.input.schema import AppliesTo, Commitment, Contract, Instance, Pool

#: Pricing an instrument of each kind may cover: commitments cover on-demand usage only; a
#: contract counts what the provider bills (owned chips bill nothing).
COMMITMENT_PRICING = ("on_demand",)
CONTRACT_PRICING = ("on_demand", "spot", "reserved", "capacity_block")


def _values(value) -> list | None:
    if value is None:
        return None
    return list(value) if isinstance(value, list) else [value]


def pool_matches(applies_to, pool: Pool, instance: Instance) -> bool:
    """Whether ``pool`` is one of the pools ``applies_to`` describes (every given field matches):
    an instrument's AppliesTo, or anything with the same fields (a scenario's PoolMatch)."""
    chip = next(c for c in instance.chips if c.id == pool.chip)
    site = next(s for s in instance.sites if s.id == pool.site)
    for wanted, have in ((applies_to.vendor, chip.vendor), (applies_to.chip, pool.chip),
                         (applies_to.cloud, site.cloud), (applies_to.site, pool.site), (applies_to.pool, pool.id)):
        values = _values(wanted)
        if values is not None and have not in values:
            return False
    return True


def covered_pools(instrument: Commitment | Contract, instance: Instance) -> list[int]:
    """Indices of the pools an instrument covers, in file order."""
    pricing = COMMITMENT_PRICING if isinstance(instrument, Commitment) else CONTRACT_PRICING
    return [p for p, pool in enumerate(instance.pools)
            if pool.pricing in pricing and pool_matches(instrument.applies_to, pool, instance)]


def window(commitment: Commitment, hours: int) -> tuple[int, int]:
    """A commitment's hours, [start, end)."""
    return commitment.start_hour, commitment.end_hour if commitment.end_hour is not None else hours


def latest_start(offer, hours: int) -> int:
    return offer.latest_start_hour if offer.latest_start_hour is not None else hours - offer.duration_hours


def start_hours(offer, hours: int) -> list[int]:
    """The hours a block of ``offer`` may start."""
    return list(range(offer.earliest_start_hour, latest_start(offer, hours) + 1, offer.start_step_hours))


def check_instruments(instance: Instance) -> list[FieldError]:
    """Every problem of the instance's instruments (ids resolved and pools known already)."""
    errors: list[FieldError] = []
    hours = instance.hours
    pools = {pool.id: pool for pool in instance.pools}
    first: dict[str, str] = {}
    for kind in ("capacity_blocks", "commitments", "contracts"):
        for i, entry in enumerate(getattr(instance, kind)):
            path = f"{kind}[{i}]({entry.id})"
            if entry.id in first:
                errors.append(FieldError(f"{path}.id", f"duplicate instrument id {entry.id!r} (first at {first[entry.id]})",
                                         "give each offer, commitment and contract its own id (purchases.csv names them)"))
            else:
                first[entry.id] = path

    offered: set[str] = set()
    for i, offer in enumerate(instance.capacity_blocks):
        path = f"capacity_blocks[{i}]({offer.id})"
        pool = pools.get(offer.pool)
        if pool is None:
            errors.append(FieldError(f"{path}.pool", f"unknown pool {offer.pool!r}",
                                     "name a pool with pricing: capacity_block"))
            continue
        if pool.pricing != "capacity_block":
            errors.append(FieldError(f"{path}.pool", f"pool {pool.id!r} is {pool.pricing}, not capacity_block",
                                     "set the pool's pricing to capacity_block (its chips are usable only under blocks)"))
            continue
        offered.add(pool.id)
        if offer.duration_hours > hours:
            errors.append(FieldError(f"{path}.duration_hours", f"{offer.duration_hours} hours is longer than the "
                                     f"horizon ({hours})", "shorten the block or lengthen the horizon"))
            continue
        latest = latest_start(offer, hours)
        if latest + offer.duration_hours > hours:
            errors.append(FieldError(f"{path}.latest_start_hour", f"a block starting at {latest} ends at "
                                     f"{latest + offer.duration_hours}, past the horizon ({hours})",
                                     f"use at most {hours - offer.duration_hours}"))
            continue
        if offer.earliest_start_hour > latest:
            errors.append(FieldError(f"{path}.earliest_start_hour", f"earliest start {offer.earliest_start_hour} is "
                                     f"after the latest start {latest}", "widen the start window"))
            continue
        starts = set(start_hours(offer, hours))
        for j, bought in enumerate(offer.bought):
            if bought.start_hour not in starts:
                errors.append(FieldError(
                    f"{path}.bought[{j}].start_hour", f"{bought.start_hour} is not a start this offer allows "
                    f"(hours {offer.earliest_start_hour}-{latest}, every {offer.start_step_hours})",
                    "use a start inside the offer's window and on its step"))
        total = sum(bought.blocks for bought in offer.bought)
        if offer.max_blocks is not None and total > offer.max_blocks:
            errors.append(FieldError(f"{path}.bought", f"{total} blocks bought, more than max_blocks {offer.max_blocks}",
                                     "raise max_blocks to what was bought"))
    for p, pool in enumerate(instance.pools):
        if pool.pricing == "capacity_block" and pool.id not in offered:
            errors.append(FieldError(f"pools[{p}]({pool.id}).pricing", "a capacity_block pool with no offer: no chip "
                                     "of it can ever be used", "add a capacity_blocks offer for it, or change its pricing"))

    for i, commitment in enumerate(instance.commitments):
        path = f"commitments[{i}]({commitment.id})"
        found = len(errors)  # this commitment's own problems decide whether its pools are matched
        errors += _applies_to_ids(commitment.applies_to, f"{path}.applies_to", instance)
        if commitment.kind == "spend":
            if commitment.discount is None:
                errors.append(FieldError(f"{path}.discount", "a spend commitment needs its discount",
                                         "give discount in [0, 1), e.g. 0.35"))
            if commitment.usd_per_chip_hour is not None:
                errors.append(FieldError(f"{path}.usd_per_chip_hour", "a spend commitment is priced by its discount",
                                         "drop usd_per_chip_hour (or make it kind: usage)"))
        else:
            if commitment.usd_per_chip_hour is None:
                errors.append(FieldError(f"{path}.usd_per_chip_hour", "a usage commitment needs its committed rate",
                                         "give usd_per_chip_hour"))
            if commitment.discount is not None:
                errors.append(FieldError(f"{path}.discount", "a usage commitment is priced by usd_per_chip_hour",
                                         "drop discount (or make it kind: spend)"))
            for key in ("level", "max_level"):
                value = getattr(commitment, key)
                if value is not None and value != int(value):
                    errors.append(FieldError(f"{path}.{key}", f"a usage commitment's {key} is whole chips, got {value:g}",
                                             "use a whole number of chips"))
        start, end = window(commitment, hours)
        if end > hours:
            errors.append(FieldError(f"{path}.end_hour", f"end {end} is past the horizon ({hours})",
                                     f"use at most {hours} (end_hour is exclusive)"))
        elif start >= end:
            errors.append(FieldError(f"{path}.start_hour", f"start {start} leaves no hour before the end {end}",
                                     "start the window before its (exclusive) end"))
        if commitment.level is not None and commitment.max_level is not None and commitment.level > commitment.max_level:
            errors.append(FieldError(f"{path}.level", f"level {commitment.level:g} is above max_level "
                                     f"{commitment.max_level:g}", "raise max_level, or leave it out for a bought level"))
        if len(errors) > found:
            continue
        covered = covered_pools(commitment, instance)
        if not covered:
            errors.append(FieldError(f"{path}.applies_to", "matches no on_demand pool",
                                     "commitments cover on-demand usage: match at least one on_demand pool"))
        elif commitment.kind == "usage" and len({instance.pools[p].chip for p in covered}) > 1:
            chips = sorted({instance.pools[p].chip for p in covered})
            errors.append(FieldError(f"{path}.applies_to", f"a usage commitment covers chips of one kind; it matches "
                                     f"{', '.join(chips)}", "add chip: to applies_to"))

    for i, contract in enumerate(instance.contracts):
        path = f"contracts[{i}]({contract.id})"
        problems = _applies_to_ids(contract.applies_to, f"{path}.applies_to", instance)
        errors += problems
        if not problems and not covered_pools(contract, instance):
            errors.append(FieldError(f"{path}.applies_to", "matches no pool the provider bills",
                                     "match at least one on_demand, spot, reserved or capacity_block pool"))
    return errors


def _applies_to_ids(applies_to: AppliesTo, path: str, instance: Instance) -> list[FieldError]:
    """Ids in applies_to that name nothing in the instance."""
    known = {"chip": {c.id for c in instance.chips}, "site": {s.id for s in instance.sites},
             "pool": {p.id for p in instance.pools}, "cloud": {s.cloud for s in instance.sites}}
    errors = []
    for key, ids in known.items():
        for position, value in enumerate(_values(getattr(applies_to, key)) or ()):
            if value not in ids:
                where = f"{path}.{key}" + (f"[{position}]" if isinstance(getattr(applies_to, key), list) else "")
                errors.append(FieldError(where, f"unknown {key} {value!r}", f"use one of: {', '.join(sorted(ids)[:12])}"))
    return errors
