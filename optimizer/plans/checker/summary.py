"""summary.json: its keys and types, and every figure in it against the checker's own recomputation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from optimizer.input.schema import Instance
from optimizer.plans.checker.facts import close, exceeds

if TYPE_CHECKING:
    from optimizer.plans.checker import CheckReport

SUMMARY_KEYS = {
    "instance", "instance_sha256", "engine", "status", "solve_seconds", "objective_usd", "bound_usd", "gap",
    "cost_usd", "unmet_pflops_hours", "short_eflop",
}
#: Keys a summary may carry beyond those (progress figures: seconds, or null when never reached).
OPTIONAL_SUMMARY_KEYS = {"time_to_first_plan_s", "time_to_1pct_s"}
#: The cost breakdown's terms, in the order they are added up, and their sum.
COST_TERMS = ("usage", "reserved", "energy", "penalty", "restarts", "blocks", "commitments", "fixed",
              "contract_shortfall")
COST_KEYS = set(COST_TERMS) | {"total"}
PLAN_STATUSES = {"optimal", "feasible"}
#: The solver's objective may differ from the exact plan cost by its own tolerances.
OBJECTIVE_REL_TOL = 1e-5


def check_summary(summary: object, instance: Instance, report: CheckReport) -> None:
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
        if not isinstance(costs[key], (int, float)) or not close(costs[key], mine[key]):
            violations.append(f"summary.json: cost_usd.{key} is {costs[key]!r}, recomputed {mine[key]:.6f}")
    for key in ("unmet_pflops_hours", "short_eflop"):
        if not isinstance(summary[key], (int, float)) or not close(summary[key], mine[key]):
            violations.append(f"summary.json: {key} is {summary[key]!r}, recomputed {mine[key]:.6g}")
    objective, bound, gap = summary["objective_usd"], summary["bound_usd"], summary["gap"]
    if not isinstance(objective, (int, float)) or not close(objective, mine["total"], OBJECTIVE_REL_TOL):
        violations.append(f"summary.json: objective_usd {objective!r} differs from the plan's cost {mine['total']:.6f}")
    elif isinstance(bound, (int, float)):
        if exceeds(bound, objective * (1 + OBJECTIVE_REL_TOL)):
            violations.append(f"summary.json: bound_usd {bound!r} is above objective_usd {objective!r}")
        if isinstance(gap, (int, float)) and objective:
            expected = max(objective - bound, 0.0) / abs(objective)
            if not math.isclose(gap, expected, rel_tol=1e-6, abs_tol=1e-9):
                violations.append(f"summary.json: gap {gap!r} but (objective - bound) / objective is {expected:.6g}")
        if summary["status"] == "optimal" and gap in (None, "inf"):
            violations.append("summary.json: an optimal plan must report a finite gap")
