"""Inference demand: ``inference_demand[workload,hour]``: PFLOP/s served + unmet >= demand_pflops.

``unmet[workload,hour]`` is priced soft demand left unserved; in the diagnostic model hard
demand gets ``demand_slack[workload,hour]`` instead, and what slack remains says which
workloads and hours no plan can serve.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    ELASTIC_SLACK_COST, PENALTY, SERVED_PFLOPS, BuildContext, ConstraintFamily, Rows, ShadowPrice, Shortfall, Variable,
    row_index, row_worth,
)
from optimizer.units import hour_ranges

INFERENCE_DEMAND = Rows(
    "inference_demand", ("workload", "hour"), ">=",
    "sum over pools of blocks x block x useful TFLOP/s / 1000 + unmet >= demand_pflops",
)
UNMET = Variable("unmet", ("workload", "hour"), integer=False, cost=(PENALTY,), covered_by=INFERENCE_DEMAND.name,
                 doc="PFLOP/s of soft inference demand left unserved (priced)")
DEMAND_SLACK = Variable("demand_slack", ("workload", "hour"), integer=False, covered_by=INFERENCE_DEMAND.name,
                        doc="hard inference demand left unserved (diagnostic model only)")

#: Slack below this is solver noise, not a shortfall.
SLACK_TOLERANCE = 1e-6


class InferenceDemand(ConstraintFamily):
    name = "inference_demand"
    doc = INFERENCE_DEMAND.doc
    variables = (UNMET,)
    elastic = (DEMAND_SLACK,)
    rows = (INFERENCE_DEMAND,)

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        soft = d.workload_is_inference & ~np.isnan(d.unmet_usd_per_pflops_hour)
        w, t = np.nonzero(soft[:, None] & (d.inference_demand_pflops > 0))
        ctx.add_variables(UNMET, (w, t), lower=0.0, upper=d.inference_demand_pflops[w, t],
                          cost=d.unmet_usd_per_pflops_hour[w], cost_terms={PENALTY: d.unmet_usd_per_pflops_hour[w]})

    def add_elastic(self, ctx: BuildContext) -> None:
        d = ctx.data
        w, t = np.nonzero(d.hard_inference[:, None] & (d.inference_demand_pflops > 0))
        ctx.add_variables(DEMAND_SLACK, (w, t), lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST, elastic=True)

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        w, t = np.nonzero(d.workload_is_inference[:, None] & (d.inference_demand_pflops > 0))
        row_of = row_index(d.inference_demand_pflops.shape, (w, t))
        # Every eligible inference term has positive demand (data.py prunes the rest).
        served = ctx.terms(SERVED_PFLOPS)
        rows, cols, vals = [row_of[served.coords]], [served.column], [served.coefficient]
        for var in (UNMET, DEMAND_SLACK):
            fam = ctx.block(var)
            if fam is not None and fam.size:
                rows.append(row_of[fam.coords[0], fam.coords[1]])
                cols.append(fam.start + np.arange(fam.size))
                vals.append(np.ones(fam.size))
        ctx.add_rows(INFERENCE_DEMAND, (w, t), rows_of=np.concatenate(rows), cols=np.concatenate(cols),
                     vals=np.concatenate(vals), lower=d.inference_demand_pflops[w, t], upper=np.inf)

    def shortfalls(self, data, model, values):
        fam = model.variables[DEMAND_SLACK.name]
        slack = values[fam.slice]
        out = []
        for w in np.unique(fam.coords[0][slack > SLACK_TOLERANCE]):
            mask = (fam.coords[0] == w) & (slack > SLACK_TOLERANCE)
            hours = sorted(int(t) for t in fam.coords[1][mask])
            path = f"workloads[{w}]({data.workload_ids[w]}).demand_pflops"
            worst = float(slack[mask].max())
            out.append(Shortfall(
                data.workload_ids[w], "inference", hours, worst, path,
                f"{path}: hard demand of '{data.workload_ids[w]}' cannot be met in hours "
                f"{hour_ranges(hours)} (short by up to {worst:.6g} PFLOP/s)",
                unserved_pflops_hours=float(slack[mask].sum()),
            ))
        return out

    def shadow_prices(self, data, model, worth):
        """USD per PFLOP/s-hour: one more PFLOP/s of the service's demand in the hour."""
        fam, value = row_worth(model, INFERENCE_DEMAND.name, worth)
        if fam is None:
            return []
        return [ShadowPrice(self.name, data.workload_ids[w], int(t), float(v), "USD/PFLOP/s-hour")
                for w, t, v in zip(*fam.coords, value)]


FAMILY = InferenceDemand()
