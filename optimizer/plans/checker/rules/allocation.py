"""``blocks[workload,pool,hour]``: each allocation row names a known hour, workload and pool, holds
whole blocks, of a chip the workload runs on, at an allowed site, inside a training run's window.
Every valid row is summed into the facts the other rules read, and priced (usage and energy)."""

from __future__ import annotations

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import Facts, at, whole


def read(facts: Facts, rows: list[dict[str, str]]) -> None:
    violations, hours = facts.violations, facts.hours
    facts.allocation_rows = rows
    seen: set[tuple[int, str, str, str]] = set()
    for row in rows:
        where = f"allocations.csv line {row['_line']}"
        hour, count = whole(row["hour"]), whole(row["chips"])
        workload, pool = facts.workloads.get(row["workload"]), facts.pools.get(row["pool"])
        problems = []
        if hour is None or not 0 <= hour < hours:
            problems.append(f"hour {row['hour']!r} is not in 0..{hours - 1}")
        if workload is None:
            problems.append(f"unknown workload {row['workload']!r}")
        if pool is None:
            problems.append(f"unknown pool {row['pool']!r}")
        if count is None or count <= 0:
            problems.append(f"chips must be a whole number > 0, got {row['chips']!r}")
        if problems:
            violations.append(f"{where}: " + "; ".join(problems))
            continue
        variant = row["variant"]
        routed = bool(getattr(workload, "variants", ()))
        efficiency = facts.efficiency(workload, variant)
        if routed and (not variant or efficiency is None):
            violations.append(f"{where}: {workload.id!r} routes its tokens: variant must be one of "
                              f"{[v.id for v in workload.variants]}, got {variant!r}")
            continue
        if not routed and variant:
            violations.append(f"{where}: {workload.id!r} has no variants, got variant {variant!r}")
            continue
        key = (hour, workload.id, pool.id, variant)
        if key in seen:
            violations.append(f"{where}: allocation ({hour}, {workload.id}, {pool.id}{', ' + variant if variant else ''}) "
                              "listed twice")
            continue
        seen.add(key)
        name = f"blocks[{workload.id},{pool.id},{hour}]"
        chip, site = facts.chips[pool.chip], facts.sites[pool.site]
        if count % pool.block:
            violations.append(f"{name}: {count} chips is not a multiple of block {pool.block}")
        if pool.chip not in efficiency:
            what = f"variant {variant!r} of {workload.id!r}" if variant else f"workload {workload.id!r}"
            violations.append(f"{name}: {what} cannot run on chip {pool.chip!r} (not in efficiency)")
            continue
        if workload.sites is not None and pool.site not in workload.sites:
            violations.append(f"{name}: site {pool.site!r} is not in the workload's sites")
            continue
        if not isinstance(workload, InferenceWorkload):
            deadline = workload.deadline_hour if workload.deadline_hour is not None else hours
            if not workload.release_hour <= hour < deadline:
                violations.append(f"{name}: hour {hour} is outside the run's window [{workload.release_hour}, {deadline})")
                continue
        rate_tflops = facts.rate_tflops(workload, pool, variant)
        facility_kw = count * chip.power_kw * site.pue
        usage_usd = 0.0 if pool.pricing == "reserved" else count * pool.usd_per_chip_hour
        energy_usd = facility_kw / 1000 * at(site.energy_usd_per_mwh, hour)
        facts.pool_hour_chips[(pool.id, hour)] += count
        facts.site_hour_kw[(site.id, hour)] += facility_kw
        facts.workload_hour_chips[(workload.id, hour)] += count
        facts.sites_used[workload.id].add(site.id)
        eflop = count * rate_tflops * 3600 * 1e12 / 1e18
        if variant:
            facts.variant_pflops[(workload.id, variant, hour)] += count * rate_tflops / 1000
        elif isinstance(workload, InferenceWorkload):
            facts.delivered_pflops[(workload.id, hour)] += count * rate_tflops / 1000
        else:
            facts.delivered_eflop[workload.id] += eflop
        facts.compute_eflop[workload.id] += eflop
        facts.kwh[workload.id] += facility_kw
        facts.own_usd[workload.id] += usage_usd + energy_usd
        facts.pool_chip_hours[(workload.id, pool.id)] += count
        facts.costs["usage"] += usage_usd
        facts.costs["energy"] += energy_usd
