"""Explain infeasibility: which workloads fall short, in which hours, and what binds there.

Only hard demand can make the model infeasible (every other constraint holds
with no chips at all), so we re-solve the *elastic* model, where hard demand
may go unmet at a cost and nothing else is priced.  The slack left in the
cheapest elastic plan is the least shortfall any plan must have; the capacity
and power rows that are full in those hours are what stands in the way.  Each
constraint family says what its slack means and which of its rows are full
(:mod:`optimizer.model.families`); this module only walks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.model.build import build_model
from optimizer.model.data import ModelData
from optimizer.model.families import FAMILIES
from optimizer.model.families.base import BINDING_ORDER, Shortfall
from optimizer.solvers.backends import get_backend
from optimizer.solvers.options import SolveOptions

__all__ = ["InfeasibilityReport", "Shortfall", "diagnose_infeasibility"]


@dataclass(frozen=True)
class InfeasibilityReport:
    shortfalls: list[Shortfall]
    binding: list[str] = field(default_factory=list)  # e.g. "site_power[campus] in hours 3-7"
    note: str | None = None
    hard_workloads: int = 1  # with several, the split of the shortfall among them is not unique
    unserved_pflops_hours: float = 0.0  # least total hard inference demand no plan can serve
    unserved_eflop: float = 0.0  # least total hard training work no plan can deliver

    def render(self) -> str:
        lines = [shortfall.render() for shortfall in self.shortfalls]
        if self.binding:
            lines.append("full in those hours: " + "; ".join(self.binding))
        if self.hard_workloads > 1:
            lines.append(
                "(where workloads compete, this is one least-slack split: each PFLOP/s-hour and each "
                "EFLOP of shortfall weighs 1; the total that cannot be served is what is certain)"
            )
        if self.note:
            lines.append(self.note)
        lines.append(
            "fix: add capacity or power, relax the demand, or price it "
            "(unmet_usd_per_pflops_hour / short_usd_per_eflop)"
        )
        return "\n".join(lines)


def diagnose_infeasibility(
    data: ModelData, options: SolveOptions, fixed_reserved_blocks: dict[int, int] | None = None
) -> InfeasibilityReport:
    model = build_model(data, elastic=True, fixed_reserved_blocks=fixed_reserved_blocks)
    # The least total slack is what we need; a proven optimum is not required to name the culprits.
    elastic_options = options.model_copy(update={"mip_rel_gap": max(options.mip_rel_gap, 1e-3)})
    result = get_backend(options.engine).solve(model, elastic_options)
    if not result.status.has_plan:
        return InfeasibilityReport([], note=f"the elastic re-solve ended {result.status.value}; no diagnosis")
    values = result.values
    workload_index = {w: i for i, w in enumerate(data.workload_ids)}
    shortfalls = [s for family in FAMILIES for s in family.shortfalls(data, model, values)]
    # Workloads in file order, then what is not a workload (a quota), in family order.
    shortfalls.sort(key=lambda s: workload_index.get(s.workload, len(workload_index)))
    pool_hours = _pool_hours_short_demand_could_use(data, shortfalls)
    full = [b for family in FAMILIES for b in family.full(data, model, values, pool_hours)]
    full.sort(key=lambda b: (BINDING_ORDER.index(b.dim), b.index))
    hard = int(np.sum(data.hard_inference | data.hard_training))
    return InfeasibilityReport(
        shortfalls,
        [b.text for b in full],
        hard_workloads=hard,
        unserved_pflops_hours=float(sum(s.unserved_pflops_hours for s in shortfalls)),
        unserved_eflop=float(sum(s.unserved_eflop for s in shortfalls)),
    )


def _pool_hours_short_demand_could_use(data: ModelData, shortfalls: list[Shortfall]) -> set[tuple[int, int]]:
    """(pool, hour) pairs a short workload could use where it falls short: an inference service's
    short hours; any hour of a short training run's allocations or gang spans."""
    inference_hours = {(s.workload, t) for s in shortfalls for t in s.hours}
    training_short = {s.workload for s in shortfalls if s.kind == "training"}
    ids = data.workload_ids
    pairs = {
        (int(p), int(t))
        for w, p, t in zip(data.alloc_workload, data.alloc_pool, data.alloc_hour)
        if ids[w] in training_short or (ids[w], int(t)) in inference_hours
    }
    short_gangs = [o for o, w in enumerate(data.gang_workload) if ids[w] in training_short]
    option, hour = data.gang_spans(np.asarray(short_gangs, dtype=np.int64))
    pairs.update(zip(data.gang_pool[option].tolist(), hour.tolist()))
    return pairs
