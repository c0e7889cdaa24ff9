"""The independent plan checker: re-reads plan files and recomputes everything from the instance.

It shares no code with model building (no ModelData, no formulation, no
backend, no numpy): plain loops over the validated instance and the CSV/JSON
files, so a bug in the model cannot hide itself here.  It recomputes capacity,
power, eligibility, block sizes, demand served, training work delivered and
every cost term, and compares the costs with summary.json.  Violations are
named with the constraint names of docs/formulation.md, e.g.
``pool_capacity[aws-h100,12]: 24 chips allocated, 16 available``.

The plan-file layout is written out here on purpose rather than imported from
:mod:`optimizer.plan`: the checker reads the files as any other tool would.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.input.loading import load_instance
from optimizer.input.schema import InferenceWorkload, Instance

SUMMARY_KEYS = {
    "instance", "engine", "status", "solve_seconds", "objective_usd", "bound_usd", "gap",
    "cost_usd", "unmet_pflops_hours", "short_eflop",
}
#: Keys a summary may carry beyond those (progress figures: seconds, or null when never reached).
OPTIONAL_SUMMARY_KEYS = {"time_to_first_plan_s", "time_to_1pct_s"}
COST_KEYS = {"usage", "reserved", "energy", "penalty", "total"}
PLAN_STATUSES = {"optimal", "feasible"}

#: Absolute slack on physical limits (chips are exact integers; power and FLOP are floats).
ABS_TOL = 1e-6
#: Relative slack on the same, and on reported cost terms.
REL_TOL = 1e-7
#: The solver's objective may differ from the exact plan cost by its own tolerances.
OBJECTIVE_REL_TOL = 1e-5


def _exceeds(value: float, limit: float) -> bool:
    return value > limit + ABS_TOL + REL_TOL * abs(limit)


def _close(a: float, b: float, rel: float = REL_TOL) -> bool:
    return abs(a - b) <= ABS_TOL + rel * max(abs(a), abs(b))


def _at(value, hour: int) -> float:
    return value[hour] if isinstance(value, tuple) else value


@dataclass
class CheckReport:
    """What the checker found: violations (empty means the plan is valid) and its own totals."""

    plan_dir: str
    violations: list[str] = field(default_factory=list)
    recomputed: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        if self.ok:
            return f"{self.plan_dir}: plan OK (total {self.recomputed.get('total', 0.0):,.2f} USD)"
        lines = [f"{self.plan_dir}: {len(self.violations)} violation(s)"]
        lines += [f"  {violation}" for violation in self.violations]
        return "\n".join(lines)


def check_plan_files(instance_path: str | Path, plan_dir: str | Path) -> CheckReport:
    """Load the instance file and check the plan in ``plan_dir``."""
    return check_plan(load_instance(instance_path), plan_dir)


def _read_csv(path: Path, header: list[str], report: CheckReport) -> list[dict[str, str]] | None:
    if not path.exists():
        report.violations.append(f"{path.name}: missing")
        return None
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        found = next(reader, None)
        if found != header:
            report.violations.append(f"{path.name}: header is {found}, expected {header}")
            return None
        rows = []
        for line_number, row in enumerate(reader, start=2):
            if len(row) != len(header):
                report.violations.append(f"{path.name} line {line_number}: {len(row)} fields, expected {len(header)}")
                continue
            rows.append({"_line": str(line_number), **dict(zip(header, row))})
        return rows


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def check_plan(instance: Instance, plan_dir: str | Path) -> CheckReport:
    """Check the plan files in ``plan_dir`` against ``instance``."""
    plan_dir = Path(plan_dir)
    report = CheckReport(str(plan_dir))
    violations = report.violations
    hours = instance.hours
    chips = {chip.id: chip for chip in instance.chips}
    sites = {site.id: site for site in instance.sites}
    pools = {pool.id: pool for pool in instance.pools}
    workloads = {workload.id: workload for workload in instance.workloads}

    allocation_rows = _read_csv(plan_dir / "allocations.csv", ["hour", "workload", "pool", "chips"], report)
    reservation_rows = _read_csv(plan_dir / "reservations.csv", ["pool", "chips"], report)
    summary_path = plan_dir / "summary.json"
    summary = None
    if not summary_path.exists():
        violations.append("summary.json: missing")
    else:
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            violations.append(f"summary.json: not JSON ({exc})")
    if allocation_rows is None or reservation_rows is None or summary is None:
        return report

    # -- reservations ------------------------------------------------------------------------
    reserved: dict[str, int] = {}
    for row in reservation_rows:
        where = f"reservations.csv line {row['_line']}"
        pool = pools.get(row["pool"])
        count = _whole(row["chips"])
        if pool is None:
            violations.append(f"{where}: unknown pool {row['pool']!r}")
        elif pool.pricing != "reserved":
            violations.append(f"{where}: pool {pool.id!r} is {pool.pricing}, not reserved")
        elif count is None or count < 0:
            violations.append(f"{where}: chips must be a whole number >= 0, got {row['chips']!r}")
        elif pool.id in reserved:
            violations.append(f"{where}: pool {pool.id!r} listed twice")
        else:
            if count % pool.block:
                violations.append(f"reserved_blocks[{pool.id}]: {count} chips is not a multiple of block {pool.block}")
            if count > pool.available:
                violations.append(f"reserved_blocks[{pool.id}]: {count} chips reserved, at most {pool.available} available")
            reserved[pool.id] = count

    # -- allocations ---------------------------------------------------------------------------
    pool_hour_chips: dict[tuple[str, int], int] = defaultdict(int)
    site_hour_kw: dict[tuple[str, int], float] = defaultdict(float)
    workload_hour_chips: dict[tuple[str, int], int] = defaultdict(int)
    delivered_pflops: dict[tuple[str, int], float] = defaultdict(float)
    delivered_eflop: dict[str, float] = defaultdict(float)
    sites_used: dict[str, set[str]] = defaultdict(set)
    usage_usd = energy_usd = 0.0
    seen: set[tuple[int, str, str]] = set()
    for row in allocation_rows:
        where = f"allocations.csv line {row['_line']}"
        hour, count = _whole(row["hour"]), _whole(row["chips"])
        workload, pool = workloads.get(row["workload"]), pools.get(row["pool"])
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
        chip, site = chips[pool.chip], sites[pool.site]
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
        rate_tflops = chip.peak_tflops * workload.efficiency[pool.chip] * (1 - pool.interruption_rate)
        facility_kw = count * chip.power_kw * site.pue
        pool_hour_chips[(pool.id, hour)] += count
        site_hour_kw[(site.id, hour)] += facility_kw
        workload_hour_chips[(workload.id, hour)] += count
        sites_used[workload.id].add(site.id)
        if isinstance(workload, InferenceWorkload):
            delivered_pflops[(workload.id, hour)] += count * rate_tflops / 1000
        else:
            delivered_eflop[workload.id] += count * rate_tflops * 3600 * 1e12 / 1e18
        if pool.pricing != "reserved":
            usage_usd += count * pool.usd_per_chip_hour
        energy_usd += facility_kw / 1000 * _at(site.energy_usd_per_mwh, hour)

    # -- capacity, power, per-run limits ---------------------------------------------------------
    for (pool_id, hour), count in sorted(pool_hour_chips.items()):
        pool = pools[pool_id]
        if pool.pricing == "reserved":
            held = reserved.get(pool_id, 0)
            if count > held:
                violations.append(f"reserved_capacity[{pool_id},{hour}]: {count} chips allocated, {held} reserved")
        elif count > _at(pool.available, hour):
            violations.append(
                f"pool_capacity[{pool_id},{hour}]: {count} chips allocated, {_at(pool.available, hour)} available"
            )
    for (site_id, hour), draw_kw in sorted(site_hour_kw.items()):
        cap = sites[site_id].power_cap_mw
        if cap is not None and _exceeds(draw_kw, 1000 * _at(cap, hour)):
            violations.append(
                f"site_power[{site_id},{hour}]: draws {draw_kw / 1000:.6g} MW, cap {_at(cap, hour):.6g} MW"
            )
    for (workload_id, hour), count in sorted(workload_hour_chips.items()):
        limit = getattr(workloads[workload_id], "max_chips", None)
        if limit is not None and count > limit:
            violations.append(f"training_max_chips[{workload_id},{hour}]: {count} chips, max_chips {limit}")
    for workload_id, used in sorted(sites_used.items()):
        if getattr(workloads[workload_id], "single_site", False) and len(used) > 1:
            violations.append(f"single_site_choice[{workload_id}]: uses {len(used)} sites ({', '.join(sorted(used))})")

    _check_gangs(instance, allocation_rows, violations)

    # -- demand, work and penalties ----------------------------------------------------------------
    unmet_total = short_total = penalty_usd = 0.0
    for workload in instance.workloads:
        if isinstance(workload, InferenceWorkload):
            for hour in range(hours):
                demand = _at(workload.demand_pflops, hour)
                gap = demand - delivered_pflops.get((workload.id, hour), 0.0)
                if gap <= ABS_TOL + REL_TOL * demand:
                    continue
                if workload.unmet_usd_per_pflops_hour is None:
                    violations.append(
                        f"inference_demand[{workload.id},{hour}]: hard demand {demand:.6g} PFLOP/s, "
                        f"{demand - gap:.6g} served"
                    )
                else:
                    unmet_total += gap
                    penalty_usd += gap * workload.unmet_usd_per_pflops_hour
        else:
            done = delivered_eflop.get(workload.id, 0.0)
            gap = workload.work_eflop - done
            if gap <= ABS_TOL + REL_TOL * workload.work_eflop:
                continue
            if workload.short_usd_per_eflop is None:
                violations.append(
                    f"training_work[{workload.id}]: must deliver {workload.work_eflop:.6g} EFLOP, delivers {done:.6g}"
                )
            else:
                short_total += gap
                penalty_usd += gap * workload.short_usd_per_eflop

    reserved_usd = sum(count * pools[pool_id].usd_per_chip_hour * hours for pool_id, count in reserved.items())
    total = usage_usd + reserved_usd + energy_usd + penalty_usd
    report.recomputed = {
        "usage": usage_usd, "reserved": reserved_usd, "energy": energy_usd, "penalty": penalty_usd,
        "total": total, "unmet_pflops_hours": unmet_total, "short_eflop": short_total,
    }
    _check_summary(summary, instance, report)
    return report


def _check_gangs(instance: Instance, allocation_rows: list[dict[str, str]], violations: list[str]) -> None:
    """gang_run[w]: a gang run is absent, or holds exactly gang_chips chips of one pool in each of
    D consecutive hours inside its window, D = ceil(work / (gang_chips * rate * 0.0036))."""
    chips = {chip.id: chip for chip in instance.chips}
    pools = {pool.id: pool for pool in instance.pools}
    gangs = {w.id: w for w in instance.workloads if getattr(w, "gang_chips", None) is not None}
    rows_of: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in allocation_rows:
        if row["workload"] in gangs and row["pool"] in pools:
            rows_of[row["workload"]].append(row)
    for workload in gangs.values():
        size = workload.gang_chips
        rows = rows_of[workload.id]
        if not rows:
            continue  # not run: its whole work is short (priced, or a training_work violation)
        name = f"gang_run[{workload.id}]"
        used = sorted({row["pool"] for row in rows})
        if len(used) > 1:
            violations.append(f"{name}: uses {len(used)} pools ({', '.join(used)}), a gang run uses one")
            continue
        pool = pools[used[0]]
        odd = sorted({row["chips"] for row in rows if _whole(row["chips"]) != size})
        if odd:
            violations.append(f"{name}: holds {', '.join(odd)} chips in some hours, gang_chips is {size}")
        hours = sorted(h for h in (_whole(row["hour"]) for row in rows) if h is not None)
        if pool.chip not in workload.efficiency:
            continue  # already reported as a blocks[...] violation
        rate_tflops = chips[pool.chip].peak_tflops * workload.efficiency[pool.chip] * (1 - pool.interruption_rate)
        needed = max(1, math.ceil(workload.work_eflop / (size * rate_tflops * 3600 * 1e12 / 1e18) - 1e-9))
        if hours != list(range(hours[0], hours[0] + len(hours))):
            violations.append(f"{name}: hours {hours[0]}-{hours[-1]} have gaps; a gang run is never preempted")
        elif len(hours) != needed:
            violations.append(f"{name}: runs {len(hours)} hours on {pool.id}, needs exactly {needed}")


def _check_summary(summary: object, instance: Instance, report: CheckReport) -> None:
    violations, mine = report.violations, report.recomputed
    if not isinstance(summary, dict):
        violations.append("summary.json: not an object")
        return
    missing, extra = SUMMARY_KEYS - set(summary), set(summary) - SUMMARY_KEYS - OPTIONAL_SUMMARY_KEYS
    if missing or extra:
        violations.append(f"summary.json: keys differ (missing {sorted(missing)}, unexpected {sorted(extra)})")
        return
    for key in sorted(OPTIONAL_SUMMARY_KEYS & set(summary)):
        value = summary[key]
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            violations.append(f"summary.json: {key} must be seconds >= 0 or null, got {value!r}")
    first, one_pct = summary.get("time_to_first_plan_s"), summary.get("time_to_1pct_s")
    if isinstance(first, (int, float)) and isinstance(one_pct, (int, float)) and one_pct < first:
        violations.append(f"summary.json: time_to_1pct_s {one_pct} is before time_to_first_plan_s {first}")
    if summary["instance"] != instance.name:
        violations.append(f"summary.json: instance is {summary['instance']!r}, the instance file is {instance.name!r}")
    if summary["status"] not in PLAN_STATUSES:
        violations.append(f"summary.json: status {summary['status']!r} is not a plan status ({sorted(PLAN_STATUSES)})")
    costs = summary["cost_usd"]
    if not isinstance(costs, dict) or set(costs) != COST_KEYS:
        violations.append(f"summary.json: cost_usd must have exactly {sorted(COST_KEYS)}")
        return
    for key in sorted(COST_KEYS):
        if not isinstance(costs[key], (int, float)) or not _close(costs[key], mine[key]):
            violations.append(f"summary.json: cost_usd.{key} is {costs[key]!r}, recomputed {mine[key]:.6f}")
    for key in ("unmet_pflops_hours", "short_eflop"):
        if not isinstance(summary[key], (int, float)) or not _close(summary[key], mine[key]):
            violations.append(f"summary.json: {key} is {summary[key]!r}, recomputed {mine[key]:.6g}")
    objective, bound, gap = summary["objective_usd"], summary["bound_usd"], summary["gap"]
    if not isinstance(objective, (int, float)) or not _close(objective, mine["total"], OBJECTIVE_REL_TOL):
        violations.append(f"summary.json: objective_usd {objective!r} differs from the plan's cost {mine['total']:.6f}")
    elif isinstance(bound, (int, float)):
        if _exceeds(bound, objective * (1 + OBJECTIVE_REL_TOL)):
            violations.append(f"summary.json: bound_usd {bound!r} is above objective_usd {objective!r}")
        if isinstance(gap, (int, float)) and objective:
            expected = max(objective - bound, 0.0) / abs(objective)
            if not math.isclose(gap, expected, rel_tol=1e-6, abs_tol=1e-9):
                violations.append(f"summary.json: gap {gap!r} but (objective - bound) / objective is {expected:.6g}")
        if summary["status"] == "optimal" and gap in (None, "inf"):
            violations.append("summary.json: an optimal plan must report a finite gap")
