"""``inference_demand[workload,hour]``: hard demand is served in full; soft demand left unserved
is priced at unmet_usd_per_pflops_hour (penalty)."""

from __future__ import annotations

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts, at


def check(facts: Facts) -> None:
    for workload in facts.instance.workloads:
        if not isinstance(workload, InferenceWorkload):
            continue
        for hour in range(facts.hours):
            demand = at(workload.demand_pflops, hour)
            gap = demand - facts.delivered_pflops.get((workload.id, hour), 0.0)
            if gap <= ABS_TOL + REL_TOL * demand:
                continue
            if workload.unmet_usd_per_pflops_hour is None:
                facts.violations.append(
                    f"inference_demand[{workload.id},{hour}]: hard demand {demand:.6g} PFLOP/s, {demand - gap:.6g} served")
            else:
                facts.unmet_pflops_hours += gap
                facts.costs["penalty"] += gap * workload.unmet_usd_per_pflops_hour
