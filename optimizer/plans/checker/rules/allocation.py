"""``blocks[workload,pool,hour]``: each allocation row names a known hour, workload and pool, holds
whole blocks, of a chip the workload runs on, at an allowed site, inside a training run's window.
Every valid row is summed into the facts the other rules read, and priced (usage and energy)."""

from __future__ import annotations

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import Facts, at, whole


def read(facts: Facts, rows: list[dict[str, str]]) -> None:
    violations, hours = facts.violations, facts.hours
    facts.allocation_rows = rows
    seen: set[tuple[int, str, str]] = set()
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
        key = (hour, workload.id, pool.id)
        if key in seen:
            violations.append(f"{where}: allocation ({hour}, {workload.id}, {pool.id}) listed twice")
            continue
        seen.add(key)
        name = f"blocks[{workload.id},{pool.id},{hour}]"
        chip, site = facts.chips[pool.chip], facts.sites[pool.site]
        if count % pool.block:
            violations.append(f"{name}: {count} chips is not a multiple of block {pool.block}")
        if pool.chip not in workload.efficiency:
            violations.append(f"{name}: workload {workload.id!r} cannot run on chip {pool.chip!r} (not in efficiency)")
            continue
        if workload.sites is not None and pool.site not in workload.sites:
            violations.append(f"{name}: site {pool.site!r} is not in the workload's sites")
            continue
        if not isinstance(workload, InferenceWorkload):
            deadline = workload.deadline_hour if workload.deadline_hour is not None else hours
            if not workload.release_hour <= hour < deadline:
                violations.append(f"{name}: hour {hour} is outside the run's window [{workload.release_hour}, {deadline})")
                continue
        rate_tflops = facts.rate_tflops(workload, pool)
        facility_kw = count * chip.power_kw * site.pue
        facts.pool_hour_chips[(pool.id, hour)] += count
        facts.site_hour_kw[(site.id, hour)] += facility_kw
        facts.workload_hour_chips[(workload.id, hour)] += count
        facts.sites_used[workload.id].add(site.id)
        if isinstance(workload, InferenceWorkload):
            facts.delivered_pflops[(workload.id, hour)] += count * rate_tflops / 1000
        else:
            facts.delivered_eflop[workload.id] += count * rate_tflops * 3600 * 1e12 / 1e18
        if pool.pricing != "reserved":
            facts.costs["usage"] += count * pool.usd_per_chip_hour
        facts.costs["energy"] += facility_kw / 1000 * at(site.energy_usd_per_mwh, hour)
