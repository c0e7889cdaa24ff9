"""Cross-entity checks of an instance, each with a field path and a fix-it hint.

The schema checks each field on its own; here we check what needs the whole
instance: ids are unique and resolve, hourly lists have ``hours`` entries,
training windows fit the horizon, and hard demand is not impossible on its
face (no pool could serve it even with every chip to itself).  Every problem is
collected, so a planner fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from optimizer.errors import FieldError
from optimizer.input.economics import check_economics
from optimizer.input.instruments import check_instruments, latest_start
from optimizer.input.schema import InferenceWorkload, Instance, Pool, TrainingWorkload
from optimizer.units import EFLOP_PER_TFLOPS_HOUR, gang_duration_hours, hour_ranges



def _known(ids: Iterable[str], limit: int = 12) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def _hourly_value(value: float | int | tuple, hour: int) -> float:
    return value[hour] if isinstance(value, tuple) else value


def check_instance(instance: Instance) -> list[FieldError]:
    """Return every cross-entity problem of ``instance`` (empty when it is consistent)."""
    errors: list[FieldError] = []
    hours = instance.hours

    def paths(kind: str, entries: Sequence) -> list[str]:
        return [f"{kind}[{i}]({entry.id})" for i, entry in enumerate(entries)]

    chip_paths, site_paths = paths("chips", instance.chips), paths("sites", instance.sites)
    pool_paths, workload_paths = paths("pools", instance.pools), paths("workloads", instance.workloads)

    for kind, entries, entry_paths in (
        ("chips", instance.chips, chip_paths),
        ("sites", instance.sites, site_paths),
        ("pools", instance.pools, pool_paths),
        ("workloads", instance.workloads, workload_paths),
    ):
        first_path: dict[str, str] = {}
        for entry, path in zip(entries, entry_paths):
            if entry.id in first_path:
                errors.append(
                    FieldError(
                        f"{path}.id",
                        f"duplicate id {entry.id!r} in {kind} (first at {first_path[entry.id]})",
                        "give each entry its own id",
                    )
                )
            else:
                first_path[entry.id] = path

    chips = {chip.id: chip for chip in instance.chips}
    sites = {site.id: site for site in instance.sites}

    def check_length(path: str, value: object, what: str) -> None:
        if isinstance(value, tuple) and len(value) != hours:
            errors.append(
                FieldError(
                    path,
                    f"hourly list has {len(value)} entries, expected hours = {hours}",
                    f"give one {what} per hour, or a single number for every hour",
                )
            )

    for site, path in zip(instance.sites, site_paths):
        if site.power_cap_mw is not None:
            check_length(f"{path}.power_cap_mw", site.power_cap_mw, "cap")
        check_length(f"{path}.energy_usd_per_mwh", site.energy_usd_per_mwh, "price")
        if site.renewable_mw is not None:
            check_length(f"{path}.renewable_mw", site.renewable_mw, "supply")
        if site.grid_carbon_kg_per_mwh is not None:
            check_length(f"{path}.grid_carbon_kg_per_mwh", site.grid_carbon_kg_per_mwh, "intensity")
    errors += _quota_problems(instance, sites)

    for pool, path in zip(instance.pools, pool_paths):
        if pool.site not in sites:
            errors.append(
                FieldError(f"{path}.site", f"unknown site {pool.site!r}", f"use one of: {_known(sites)}")
            )
        if pool.chip not in chips:
            errors.append(
                FieldError(f"{path}.chip", f"unknown chip {pool.chip!r}", f"use one of: {_known(chips)}")
            )
        if pool.pricing == "reserved" and isinstance(pool.available, tuple):
            errors.append(
                FieldError(
                    f"{path}.available",
                    "a reserved pool's available is the most chips that can be reserved, a single integer",
                    "give one number; reserved chips are held for the whole horizon",
                )
            )
        else:
            check_length(f"{path}.available", pool.available, "chip count")

    for workload, path in zip(instance.workloads, workload_paths):
        # The workload's efficiency, and each routing variant's own.
        efficiencies = [(path, workload.efficiency)] + [
            (f"{path}.variants[{k}]({v.id})", v.efficiency) for k, v in enumerate(getattr(workload, "variants", ()))
            if v.efficiency is not None]
        for where, efficiency in efficiencies:
            errors += [FieldError(f"{where}.efficiency.{chip_id}", f"unknown chip {chip_id!r}", f"use one of: {_known(chips)}")
                       for chip_id in efficiency if chip_id not in chips]
        for position, site_id in enumerate(workload.sites or ()):
            if site_id not in sites:
                errors.append(
                    FieldError(
                        f"{path}.sites[{position}]", f"unknown site {site_id!r}", f"use one of: {_known(sites)}"
                    )
                )
        if isinstance(workload, InferenceWorkload):  # which of the two it gives: economics.py
            for name in ("demand_pflops", "demand_tokens_per_s"):
                if getattr(workload, name) is not None:
                    check_length(f"{path}.{name}", getattr(workload, name), "demand")
        else:
            deadline = workload.deadline_hour if workload.deadline_hour is not None else hours
            if workload.deadline_hour is not None and workload.deadline_hour > hours:
                errors.append(
                    FieldError(
                        f"{path}.deadline_hour",
                        f"deadline {workload.deadline_hour} is past the horizon (hours = {hours})",
                        f"use at most {hours} (deadlines are exclusive)",
                    )
                )
            if workload.release_hour >= deadline:
                errors.append(
                    FieldError(
                        f"{path}.release_hour",
                        f"release hour {workload.release_hour} leaves no hour before the deadline {deadline}",
                        "release the run before its (exclusive) deadline",
                    )
                )

    errors += check_economics(instance, workload_paths)

    if errors:
        # The face-value demand checks below need resolved ids and right lengths.
        return errors
    errors += check_instruments(instance)
    if errors:
        return errors
    errors += _model_size(instance)
    if errors:
        return errors
    errors += _gang_problems(instance, workload_paths)
    errors += _run_shape_problems(instance, workload_paths)
    errors += _fixed_cost_problems(instance, pool_paths)
    if errors:
        return errors
    errors += _impossible_hard_demand(instance, workload_paths)
    return errors


def _quota_problems(instance: Instance, sites: dict) -> list[FieldError]:
    """Quota ids unique, their sites known, and each site in one quota at most (its renewable
    energy and certificates count once)."""
    errors: list[FieldError] = []
    first_path: dict[str, str] = {}
    quota_of_site: dict[str, str] = {}
    for i, quota in enumerate(instance.renewable_quotas):
        path = f"renewable_quotas[{i}]({quota.id})"
        if quota.id in first_path:
            errors.append(FieldError(f"{path}.id", f"duplicate id {quota.id!r} in renewable_quotas "
                                     f"(first at {first_path[quota.id]})", "give each quota its own id"))
        first_path.setdefault(quota.id, path)
        for position, site_id in enumerate(quota.sites):
            where = f"{path}.sites[{position}]"
            if site_id not in sites:
                errors.append(FieldError(where, f"unknown site {site_id!r}", f"use one of: {_known(sites)}"))
            elif site_id in quota.sites[:position]:
                errors.append(FieldError(where, f"site {site_id!r} is listed twice", "list each site once"))
            elif site_id in quota_of_site:
                errors.append(FieldError(where, f"site {site_id!r} is already in quota {quota_of_site[site_id]!r}",
                                         "a site's renewable energy counts toward one quota: merge the quotas "
                                         "or list the site in one"))
            else:
                quota_of_site[site_id] = quota.id
    return errors


#: Most columns chipmix builds a model of.  Measured: the 3.0M-column fleet-year peaks at 5.7 GB
#: (docs/performance.md), about 1.9 kB a column; 10M columns is what a 24 GB machine holds.
MAX_MODEL_COLUMNS = 10_000_000


def model_columns(instance: Instance) -> int:
    """An upper estimate of the model's columns: every (workload, eligible pool, hour the workload
    may run) triple, counted before anything is built (a 300-byte file can ask for billions)."""
    total = 0
    for workload in instance.workloads:
        if isinstance(workload, InferenceWorkload):
            demand = workload.pflops_demand()
            active = sum(1 for v in demand if v > 0) if isinstance(demand, tuple) else (instance.hours if demand > 0 else 0)
        else:
            deadline = workload.deadline_hour if workload.deadline_hour is not None else instance.hours
            active = max(deadline - workload.release_hour, 0)
        models = len(workload.models()) if isinstance(workload, InferenceWorkload) else 1  # a column per variant
        total += active * models * sum(1 for pool in instance.pools if _serves(workload, pool))
    return total


def _model_size(instance: Instance) -> list[FieldError]:
    columns = model_columns(instance)
    if columns <= MAX_MODEL_COLUMNS:
        return []
    return [FieldError(
        "", f"the model would have about {columns:,} allocation columns, more than the {MAX_MODEL_COLUMNS:,} "
            "chipmix builds on one machine",
        "shorten the horizon (hours), split the instance, or narrow efficiency / sites",
    )]


def _gang_problems(instance: Instance, workload_paths: list[str]) -> list[FieldError]:
    """A gang run's chips must be whole blocks of every pool it may use, and within max_chips."""
    errors: list[FieldError] = []
    for workload, path in zip(instance.workloads, workload_paths):
        chips = getattr(workload, "gang_chips", None)
        if chips is None:
            continue
        if workload.max_chips is not None and chips > workload.max_chips:
            errors.append(
                FieldError(
                    f"{path}.gang_chips",
                    f"gang_chips {chips} is more than max_chips {workload.max_chips}",
                    "raise max_chips or lower gang_chips",
                )
            )
        for pool in instance.pools:
            if _serves(workload, pool) and chips % pool.block:
                errors.append(
                    FieldError(
                        f"{path}.gang_chips",
                        f"{chips} chips is not a whole number of pool {pool.id!r}'s {pool.block}-chip blocks",
                        f"use a multiple of {pool.block}, or leave {pool.chip!r} out of efficiency "
                        "(or the pool's site out of sites)",
                    )
                )
    return errors


def _run_shape_problems(instance: Instance, workload_paths: list[str]) -> list[FieldError]:
    """min_chips and restart_usd_per_chip shape a preemptible run: not a gang run (which holds
    exactly gang_chips, never resized), min_chips within max_chips and within what the run's
    pools could give it in some hour of its window."""
    errors: list[FieldError] = []
    for workload, path in zip(instance.workloads, workload_paths):
        if not isinstance(workload, TrainingWorkload):
            continue
        if workload.gang_chips is None and workload.gang_start_step_hours is not None:
            errors.append(FieldError(
                f"{path}.gang_start_step_hours", "only a gang run has a start grid",
                "remove it, or set gang_chips",
            ))
        if workload.gang_chips is not None:
            for key in ("min_chips", "restart_usd_per_chip"):
                if getattr(workload, key) is not None:
                    errors.append(FieldError(
                        f"{path}.{key}", "a gang run holds exactly gang_chips for its whole span, never resized",
                        f"remove {key}, or remove gang_chips for a preemptible run",
                    ))
            continue
        if workload.min_chips is None:
            continue
        if workload.max_chips is not None and workload.min_chips > workload.max_chips:
            errors.append(FieldError(
                f"{path}.min_chips", f"min_chips {workload.min_chips} is more than max_chips {workload.max_chips}",
                "lower min_chips or raise max_chips",
            ))
            continue
        pools = [pool for pool in instance.pools if _serves(workload, pool)]
        deadline = workload.deadline_hour if workload.deadline_hour is not None else instance.hours
        most = max((sum((int(_hourly_value(pool.available, t)) // pool.block) * pool.block for pool in pools)
                    for t in range(workload.release_hour, deadline)), default=0)
        if workload.min_chips > most:
            errors.append(FieldError(
                f"{path}.min_chips",
                f"min_chips {workload.min_chips} is more than the {most} chips the run's pools offer in any hour "
                f"of its window, so it could never run",
                "lower min_chips, or add pools (efficiency, sites)",
            ))
    return errors


def _fixed_cost_problems(instance: Instance, pool_paths: list[str]) -> list[FieldError]:
    """A fixed cost per available chip is what owning a campus costs; a rented pool bills per use."""
    return [
        FieldError(f"{path}.fixed_usd_per_chip_hour",
                   f"pool {pool.id!r} is {pool.pricing}; only owned pools carry a fixed cost per available chip",
                   "remove it, or fold the cost into usd_per_chip_hour")
        for pool, path in zip(instance.pools, pool_paths)
        if pool.fixed_usd_per_chip_hour is not None and pool.pricing != "owned"
    ]


def instance_warnings(instance: Instance) -> list[FieldError]:
    """What loads but may not mean what the planner meant: chips a pool lists that its blocks
    cannot use (available is rounded down to whole blocks)."""
    warnings: list[FieldError] = []
    for i, pool in enumerate(instance.pools):
        if pool.block == 1:
            continue
        path = f"pools[{i}]({pool.id}).available"
        values = pool.available if isinstance(pool.available, tuple) else (pool.available,)
        odd = [(t, int(v)) for t, v in enumerate(values) if int(v) % pool.block]
        if not odd:
            continue
        t, value = odd[0]
        where = f"{path}[{t}]" if isinstance(pool.available, tuple) else path
        more = f" (and {len(odd) - 1} more hours)" if len(odd) > 1 else ""
        warnings.append(FieldError(
            where, f"{value} chips is not a multiple of block {pool.block}: only "
                   f"{value // pool.block * pool.block} are usable{more}",
            f"give a multiple of {pool.block}, or change block",
        ))
    return warnings


def _serves(workload: InferenceWorkload | TrainingWorkload, pool: Pool) -> bool:
    runs = [e for _, e in workload.models()] if isinstance(workload, InferenceWorkload) else [workload.efficiency]
    return any(pool.chip in efficiency for efficiency in runs) and (workload.sites is None or pool.site in workload.sites)


def _impossible_hard_demand(instance: Instance, workload_paths: list[str]) -> list[FieldError]:
    """Hard demand that exceeds what every eligible chip could deliver, alone and unpowered-capped."""
    errors: list[FieldError] = []
    chips = {chip.id: chip for chip in instance.chips}
    # A capacity_block pool's chips exist only in hours one of its offers' blocks could cover.
    block_hours: dict[str, set[int]] = {}
    for offer in instance.capacity_blocks:
        last = latest_start(offer, instance.hours) + offer.duration_hours
        block_hours.setdefault(offer.pool, set()).update(range(offer.earliest_start_hour, last))

    def usable_chips(pool: Pool, hour: int) -> int:
        if pool.pricing == "capacity_block" and hour not in block_hours.get(pool.id, ()):
            return 0
        available = int(_hourly_value(pool.available, hour))
        return available - available % pool.block

    def rate_tflops(workload, pool: Pool) -> float:
        return chips[pool.chip].peak_tflops * workload.efficiency[pool.chip] * (1 - pool.interruption_rate)

    for workload, path in zip(instance.workloads, workload_paths):
        pools = [pool for pool in instance.pools if _serves(workload, pool)]
        if isinstance(workload, InferenceWorkload):
            # Routed services: what the variants can serve depends on their shares; the solve's
            # diagnosis explains an impossible one.
            if workload.unmet_usd_per_pflops_hour is not None or workload.variants or instance.priced_by_budget(workload):
                continue
            short_hours, worst = [], None
            for hour in range(instance.hours):
                demand = _hourly_value(workload.pflops_demand(), hour)
                if demand <= 0:
                    continue
                best = sum(usable_chips(pool, hour) * rate_tflops(workload, pool) for pool in pools) / 1000
                if best < demand * (1 - 1e-9):
                    short_hours.append(hour)
                    if worst is None or demand - best > worst[1] - worst[2]:
                        worst = (hour, demand, best)
            if short_hours:
                hour, demand, best = worst
                errors.append(
                    FieldError(
                        f"{path}.{'demand_pflops' if workload.demand_pflops is not None else 'demand_tokens_per_s'}",
                        f"hard demand exceeds what every eligible pool could deliver in hours "
                        f"{hour_ranges(short_hours)} (worst: hour {hour} needs {demand:g} PFLOP/s, "
                        f"at most {best:g} possible)",
                        "lower the demand, add pools or chips to efficiency, or set unmet_usd_per_pflops_hour",
                    )
                )
        elif workload.short_usd_per_eflop is None and workload.gang_chips is not None:
            errors += _impossible_gang(instance, workload, path, pools, rate_tflops)
        elif workload.short_usd_per_eflop is None:
            deadline = workload.deadline_hour if workload.deadline_hour is not None else instance.hours
            best_eflop = 0.0
            for hour in range(workload.release_hour, deadline):
                # Fastest chips first, up to max_chips: the most work any allocation could do.
                offers = sorted(
                    ((rate_tflops(workload, pool), usable_chips(pool, hour)) for pool in pools), reverse=True
                )
                room = workload.max_chips if workload.max_chips is not None else float("inf")
                for rate, count in offers:
                    take = min(count, room)
                    best_eflop += take * rate * EFLOP_PER_TFLOPS_HOUR
                    room -= take
            if best_eflop < workload.work_eflop * (1 - 1e-9):
                errors.append(
                    FieldError(
                        f"{path}.work_eflop",
                        f"hard training work {workload.work_eflop:g} EFLOP exceeds the {best_eflop:g} EFLOP "
                        f"every eligible chip could deliver in hours {workload.release_hour}-{deadline - 1}",
                        "extend the deadline, add pools, raise max_chips, or set short_usd_per_eflop",
                    )
                )
    return errors


def _impossible_gang(instance: Instance, workload: TrainingWorkload, path: str, pools: list[Pool], rate_tflops) -> list[FieldError]:
    """A hard gang run needs one pool that holds gang_chips for its whole span inside the window."""

    deadline = workload.deadline_hour if workload.deadline_hour is not None else instance.hours
    chips, shortest = workload.gang_chips, None
    for pool in pools:
        duration = gang_duration_hours(workload.work_eflop, chips, rate_tflops(workload, pool))
        shortest = duration if shortest is None else min(shortest, duration)
        run = 0
        for hour in range(workload.release_hour, deadline):
            available = pool.available if pool.pricing == "reserved" else _hourly_value(pool.available, hour)
            run = run + 1 if available >= chips else 0
            if run >= duration:
                return []
    reason = (
        f"no eligible pool can hold {chips} chips for the {shortest} hours the run needs"
        if shortest is not None
        else "no pool can run it"
    )
    return [
        FieldError(
            f"{path}.gang_chips",
            f"hard gang run: {reason} within hours {workload.release_hour}-{deadline - 1}",
            "extend the window, add chips, change gang_chips, or set short_usd_per_eflop",
        )
    ]
