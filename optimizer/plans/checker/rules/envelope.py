"""``envelope_budget``: the plan's spend (every cost term that is money paid: not the penalty
nor restarts) is within budget_usd; ``envelope_floor[category]``: the category's workloads'
chips deliver at least its floor (EFLOP, or a share of every workload's compute)."""

from __future__ import annotations

from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts, exceeds

#: Cost terms that price the plan's shape rather than pay for compute.
NOT_SPEND = ("penalty", "restarts")


def spend_usd(costs: dict[str, float]) -> float:
    return sum(usd for key, usd in costs.items() if key not in NOT_SPEND)


def check(facts: Facts) -> None:
    envelope = facts.instance.envelope
    if envelope is None:
        return
    spend = spend_usd(facts.costs)
    if envelope.budget_usd is not None and exceeds(spend, envelope.budget_usd):
        facts.violations.append(f"envelope_budget: the plan spends {spend:,.2f} USD, the budget is "
                                f"{envelope.budget_usd:,.2f}")
    total = sum(facts.compute_eflop.values())
    for category, floor in envelope.floors.items():
        got = sum(e for w, e in facts.compute_eflop.items() if facts.workloads[w].category == category)
        need = floor.eflop if floor.eflop is not None else floor.share * total
        if got < need - ABS_TOL - REL_TOL * need:
            facts.violations.append(f"envelope_floor[{category}]: {got:,.6g} EFLOP delivered, the floor is {need:,.6g}")
