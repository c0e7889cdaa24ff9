"""summary.json's ``economics`` block, recomputed from the plan's facts with the attribution rule
of docs/formulation.md ("Economics"), stated again here in plain loops: a workload pays its own
chips' usage and energy, its chip-hour share of the reserved, capacity-block and owned pools'
fees, and a share pro rata to those of every other spend."""

from __future__ import annotations

from typing import Any

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts, close
from optimizer.plans.checker.rules.envelope import spend_usd

CATEGORIES = ("inference", "research", "internal")


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def attributed_usd(facts: Facts) -> dict[str, float]:
    """Workload id -> the spend it is attributed."""
    instance = facts.instance
    fees = {pool.id: facts.pool_fees_usd.get(pool.id, 0.0) for pool in instance.pools}
    direct = {w.id: facts.own_usd.get(w.id, 0.0) for w in instance.workloads}
    for pool_id, fee in fees.items():
        users = {w: n for (w, p), n in facts.pool_chip_hours.items() if p == pool_id and n > 0}
        total = sum(users.values())
        for w, n in users.items():
            direct[w] += fee * n / total
    base = sum(direct.values())
    rest = spend_usd(facts.costs) - base
    count = len(direct)
    return {w: usd + (usd / base * rest if base > 0 else rest / count) for w, usd in direct.items()}


def _served(facts: Facts, workload, hour: int) -> float:
    """PFLOP/s served in the hour: the demand, where what is missing is within the rows' slack."""
    demand = facts.demand_pflops(workload, hour)
    delivered = facts.delivered_pflops.get((workload.id, hour), 0.0)
    return demand if demand - delivered <= ABS_TOL + REL_TOL * demand else delivered


def economics_block(facts: Facts) -> dict[str, Any]:
    instance = facts.instance
    cost = attributed_usd(facts)
    spend = spend_usd(facts.costs)
    revenue = paying_cost = tokens = token_cost = token_kwh = 0.0
    services: dict[str, Any] = {}
    for w in instance.workloads:
        reference = facts.reference_flop(w) if isinstance(w, InferenceWorkload) else None
        if reference is None:
            continue
        served = sum(_served(facts, w, h) for h in range(facts.hours))
        mtok = served * 1e15 * 3600 / reference / 1e6
        earned = served * facts.paying_usd_per_pflops_hour(w)
        revenue += earned
        if w.revenue_usd_per_mtok:
            paying_cost += cost[w.id] * w.paying_share
        kwh = facts.kwh.get(w.id, 0.0)
        tokens, token_cost, token_kwh = tokens + mtok, token_cost + cost[w.id], token_kwh + kwh
        services[w.id] = {"mtok": mtok, "cost_usd": cost[w.id], "usd_per_mtok": _ratio(cost[w.id], mtok),
                          "revenue_usd": earned, "kwh": kwh, "tokens_per_kwh": _ratio(mtok * 1e6, kwh),
                          "tokens_per_usd": _ratio(mtok * 1e6, cost[w.id])}
    non_research = sum(usd for w, usd in cost.items() if facts.workloads[w].category != "research")
    out: dict[str, Any] = {
        "mtok": tokens, "usd_per_mtok": _ratio(token_cost, tokens), "tokens_per_kwh": _ratio(tokens * 1e6, token_kwh),
        "tokens_per_usd": _ratio(tokens * 1e6, token_cost), "revenue_usd": revenue,
        "compute_margin": _ratio(revenue - paying_cost, revenue),
        "pnl_ex_research_usd": revenue - non_research, "pnl_full_usd": revenue - spend,
        "eflop_by_category": {c: sum(e for w, e in facts.compute_eflop.items() if facts.workloads[w].category == c)
                              for c in CATEGORIES},
        "cost_usd_by_workload": cost,
        "services": services,
    }
    if instance.envelope is not None and instance.envelope.budget_usd is not None:
        out["budget_usd"] = instance.envelope.budget_usd
    return out


def _same(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(b, dict):
        if not isinstance(a, dict) or set(a) != set(b):
            out.append(f"summary.json: {path} has keys {sorted(a) if isinstance(a, dict) else a!r}, expected {sorted(b)}")
            return
        for key in b:
            _same(a[key], b[key], f"{path}.{key}", out)
    elif b is None or a is None:
        if a is not b:
            out.append(f"summary.json: {path} is {a!r}, recomputed {b!r}")
    elif not isinstance(a, (int, float)) or not close(a, b, 1e-6):
        out.append(f"summary.json: {path} is {a!r}, recomputed {b:.9g}")


def check_economics(block: object, facts: Facts, violations: list[str]) -> None:
    _same(block, economics_block(facts), "economics", violations)
