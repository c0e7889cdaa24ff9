"""Explain infeasibility: which workloads fall short, in which hours, and what binds there.

Only hard demand can make the model infeasible (every other constraint holds
with no chips at all), so we re-solve the *elastic* model, where hard demand
may go unmet at a cost and nothing else is priced.  The slack left in the
cheapest elastic plan is the least shortfall any plan must have; the capacity
and power rows that are full in those hours are what stands in the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.backends import get_backend
from optimizer.data import ModelData
from optimizer.formulation import build_model
from optimizer.options import SolveOptions
from optimizer.validate import _hour_ranges

_SLACK_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Shortfall:
    workload: str
    kind: str  # "inference" or "training"
    hours: list[int]
    amount: float  # worst-hour PFLOP/s (inference) or EFLOP (training)
    field_path: str

    def render(self) -> str:
        if self.kind == "inference":
            return (
                f"{self.field_path}: hard demand of '{self.workload}' cannot be met in hours "
                f"{_hour_ranges(self.hours)} (short by up to {self.amount:.6g} PFLOP/s)"
            )
        if self.field_path.endswith(".gang_chips"):
            return (
                f"{self.field_path}: hard gang run '{self.workload}' finds no pool and span for its chips "
                f"alongside the other hard demand ({self.amount:.6g} EFLOP not run)"
            )
        return (
            f"{self.field_path}: hard training run '{self.workload}' falls {self.amount:.6g} EFLOP short "
            f"by its deadline"
        )


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
    shortfalls: list[Shortfall] = []
    short_hours: set[int] = set()

    demand = model.variables["demand_slack"]
    slack = values[demand.slice]
    for w in np.unique(demand.coords[0][slack > _SLACK_TOLERANCE]):
        mask = (demand.coords[0] == w) & (slack > _SLACK_TOLERANCE)
        hours = sorted(int(t) for t in demand.coords[1][mask])
        short_hours.update(hours)
        shortfalls.append(
            Shortfall(
                data.workload_ids[w], "inference", hours, float(slack[mask].max()),
                f"workloads[{w}]({data.workload_ids[w]}).demand_pflops",
            )
        )
    work = model.variables["work_slack"]
    work_slack = values[work.slice]
    for k in np.nonzero(work_slack > _SLACK_TOLERANCE)[0]:
        w = int(work.coords[0][k])
        shortfalls.append(
            Shortfall(
                data.workload_ids[w], "training", [], float(work_slack[k]),
                f"workloads[{w}]({data.workload_ids[w]}).work_eflop",
            )
        )
    gang = model.variables["gang_slack"]
    gang_slack = values[gang.slice]
    gang_short_eflop = 0.0
    for k in np.nonzero(gang_slack > 0.5)[0]:
        w = int(gang.coords[0][k])
        gang_short_eflop += float(data.training_work_eflop[w])
        shortfalls.append(
            Shortfall(
                data.workload_ids[w], "training", [], float(data.training_work_eflop[w]),
                f"workloads[{w}]({data.workload_ids[w]}).gang_chips",
            )
        )
    shortfalls.sort(key=lambda s: workload_index[s.workload])

    hard = int(np.sum(data.hard_inference | data.hard_training))
    return InfeasibilityReport(
        shortfalls,
        _full_resources(data, model.values(values, "blocks"), shortfalls),
        hard_workloads=hard,
        unserved_pflops_hours=float(np.sum(slack[slack > _SLACK_TOLERANCE])),
        unserved_eflop=float(np.sum(work_slack[work_slack > _SLACK_TOLERANCE])) + gang_short_eflop,
    )


def _full_resources(data: ModelData, blocks: np.ndarray, shortfalls: list[Shortfall]) -> list[str]:
    """Pools and capped sites that the short workloads could use and that are full when they fall short."""
    short_ids = {s.workload for s in shortfalls}
    short_w = [i for i, w in enumerate(data.workload_ids) if w in short_ids]
    relevant = np.isin(data.alloc_workload, short_w)
    inference_hours = {(s.workload, t) for s in shortfalls for t in s.hours}
    training_short = {s.workload for s in shortfalls if s.kind == "training"}
    keep = relevant & np.array(
        [
            data.workload_ids[w] in training_short or (data.workload_ids[w], int(t)) in inference_hours
            for w, t in zip(data.alloc_workload, data.alloc_hour)
        ],
        dtype=bool,
    )
    pool_used = np.zeros_like(data.pool_available_blocks, dtype=float)
    np.add.at(pool_used, (data.alloc_pool, data.alloc_hour), np.rint(blocks))
    site_draw_kw = np.zeros_like(data.site_power_cap_kw)
    kw_per_block = data.pool_block * data.pool_chip_power_kw
    np.add.at(site_draw_kw, (data.pool_site[data.alloc_pool], data.alloc_hour), np.rint(blocks) * kw_per_block[data.alloc_pool])

    full: list[str] = []
    pools_hours: dict[int, set[int]] = {}
    sites_hours: dict[int, set[int]] = {}
    for p, t in zip(data.alloc_pool[keep], data.alloc_hour[keep]):
        p, t = int(p), int(t)
        if data.pool_available_blocks[p, t] > 0 and pool_used[p, t] >= data.pool_available_blocks[p, t]:
            pools_hours.setdefault(p, set()).add(t)
        s = int(data.pool_site[p])
        cap = data.site_power_cap_kw[s, t]
        if np.isfinite(cap) and site_draw_kw[s, t] + kw_per_block[p] > cap * (1 + 1e-9):
            sites_hours.setdefault(s, set()).add(t)
    for s, hours in sorted(sites_hours.items()):
        full.append(f"site_power[{data.site_ids[s]}] in hours {_hour_ranges(sorted(hours))}")
    for p, hours in sorted(pools_hours.items()):
        label = "reserved_capacity" if data.pool_reserved[p] else "pool_capacity"
        full.append(f"{label}[{data.pool_ids[p]}] in hours {_hour_ranges(sorted(hours))}")
    return full
