"""``inference_demand[workload,hour]``: hard demand is served in full; soft demand left unserved
is priced at unmet_usd_per_pflops_hour, or within a budget at the paying revenue it loses
(penalty).  A routed service's served PFLOP/s are the routing rule's."""

from __future__ import annotations

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts


def check(facts: Facts) -> None:
    for workload in facts.instance.workloads:
        if not isinstance(workload, InferenceWorkload):
            continue
        for hour in range(facts.hours):
            demand = facts.demand_pflops(workload, hour)
            gap = demand - facts.delivered_pflops.get((workload.id, hour), 0.0)
            if gap <= ABS_TOL + REL_TOL * demand:
                continue
            price = facts.unmet_price(workload)
            if price is None:
                facts.violations.append(
                    f"inference_demand[{workload.id},{hour}]: hard demand {demand:.6g} PFLOP/s, {demand - gap:.6g} served")
            else:
                facts.unmet_pflops_hours += gap
                facts.costs["penalty"] += gap * price
