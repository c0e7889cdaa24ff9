"""summary.json: its keys and types, and every figure in it against the checker's own recomputation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from optimizer.input.schema import Instance
from optimizer.plans.checker.economics import check_economics
from optimizer.plans.checker.facts import close, exceeds

if TYPE_CHECKING:
    from optimizer.plans.checker import CheckReport

SUMMARY_KEYS = {
    "instance", "instance_sha256", "engine", "status", "solve_seconds", "objective_usd", "bound_usd", "gap",
    "cost_usd", "unmet_pflops_hours", "short_eflop", "energy", "economics",
}
#: Keys a summary may carry beyond those (progress figures: seconds, or null when never reached;
#: the method that ran, which plans written before --method auto do not have).
OPTIONAL_SUMMARY_KEYS = {"time_to_first_plan_s", "time_to_1pct_s", "method"}
#: The solve methods a summary may name (its ``method.chosen``).
METHODS = {"direct", "decompose"}
#: The cost breakdown's terms, in the order they are added up, and their sum.
COST_TERMS = ("usage", "reserved", "energy", "penalty", "restarts", "blocks", "commitments", "fixed",
              "certificates", "carbon", "contract_shortfall")
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
        if key == "method":
            continue
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            violations.append(f"summary.json: {key} must be seconds >= 0 or null, got {value!r}")
    method = summary.get("method")
    if method is not None and (not isinstance(method, dict) or method.get("chosen") not in METHODS
                               or not isinstance(method.get("reason"), str)):
        violations.append(f"summary.json: method must be {{asked, chosen (one of {sorted(METHODS)}), reason}}, "
                          f"got {method!r}")
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
    _check_energy(summary["energy"], report)
    if report.facts is not None:
        check_economics(summary["economics"], report.facts, violations)
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


def _check_energy(block: object, report: CheckReport) -> None:
    """The summary's ``energy`` block against energy.csv's rows (which the rules checked against
    the allocations): totals, tonnes of CO2 per site and each quota's share."""
    violations = report.violations
    facts = report.facts
    if facts is None or not facts.energy_read:
        return
    if not isinstance(block, dict):
        violations.append("summary.json: energy must be an object")
        return
    rows = facts.energy.values()
    totals = {"facility_mwh": sum(r[0] for r in rows), "renewable_mwh": sum(r[1] for r in rows),
              "certificates_mwh": sum(r[2] for r in rows), "grid_mwh": sum(r[3] for r in rows),
              "carbon_t": sum(facts.carbon_t.values())}
    for key, mine in totals.items():
        value = block.get(key)
        if not isinstance(value, (int, float)) or not close(value, mine):
            violations.append(f"summary.json: energy.{key} is {value!r}, recomputed {mine:.9g}")
    by_site = block.get("carbon_t_by_site")
    if not isinstance(by_site, dict) or set(by_site) != set(facts.carbon_t) or any(
            not isinstance(by_site[s], (int, float)) or not close(by_site[s], t) for s, t in facts.carbon_t.items()):
        violations.append(f"summary.json: energy.carbon_t_by_site is {by_site!r}, recomputed "
                          f"{ {s: round(t, 9) for s, t in sorted(facts.carbon_t.items())} }")
    quotas = block.get("quotas")
    if not isinstance(quotas, dict) or set(quotas) != {q.id for q in facts.instance.renewable_quotas}:
        violations.append("summary.json: energy.quotas must have one entry per renewable quota")
        return
    for quota in facts.instance.renewable_quotas:
        drawn, counted = facts.quota_mwh.get(quota.id, (0.0, 0.0))
        entry = quotas[quota.id]
        share = entry.get("achieved_share") if isinstance(entry, dict) else None
        expected = counted / drawn if drawn > 0 else None
        if expected is None and share is not None or expected is not None and (
                not isinstance(share, (int, float)) or not close(share, expected)):
            violations.append(f"summary.json: energy.quotas.{quota.id}.achieved_share is {share!r}, recomputed "
                              f"{expected!r}")
