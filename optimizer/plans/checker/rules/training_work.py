"""``training_work[workload]``: a hard run delivers its work_eflop by its deadline; a soft run's
shortfall is priced at short_usd_per_eflop (penalty)."""

from __future__ import annotations

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts


def check(facts: Facts) -> None:
    for workload in facts.instance.workloads:
        if isinstance(workload, InferenceWorkload):
            continue
        done = facts.delivered_eflop.get(workload.id, 0.0)
        gap = workload.work_eflop - done
        if gap <= ABS_TOL + REL_TOL * workload.work_eflop:
            continue
        if workload.short_usd_per_eflop is None:
            facts.violations.append(
                f"training_work[{workload.id}]: must deliver {workload.work_eflop:.6g} EFLOP, delivers {done:.6g}")
        else:
            facts.short_eflop += gap
            facts.costs["penalty"] += gap * workload.short_usd_per_eflop
