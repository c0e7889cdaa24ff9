"""Training work: ``training_work[workload]``: EFLOP delivered + short >= work_eflop (by the deadline).

``short[workload]`` is priced soft work not delivered; in the diagnostic model a hard run gets
``work_slack[workload]``.  Gang runs have no such row: a gang start's span is long enough by
construction (see :mod:`.gang`).
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    DELIVERED_EFLOP, ELASTIC_SLACK_COST, PENALTY, BuildContext, ConstraintFamily, Rows, ShadowPrice, Shortfall, Variable,
    row_index, row_worth,
)
from optimizer.model.families.inference_demand import SLACK_TOLERANCE

TRAINING_WORK = Rows(
    "training_work", ("workload",), ">=",
    "sum over pools and hours of blocks x block x useful TFLOP/s x 0.0036 + short >= work_eflop",
)
SHORT = Variable("short", ("workload",), integer=False, hourly=False, cost=(PENALTY,), covered_by=TRAINING_WORK.name,
                 doc="EFLOP of soft training work not delivered by the deadline (priced)")
WORK_SLACK = Variable("work_slack", ("workload",), integer=False, hourly=False, covered_by=TRAINING_WORK.name,
                      doc="hard training work not delivered (diagnostic model only)")


class TrainingWork(ConstraintFamily):
    name = "training_work"
    doc = TRAINING_WORK.doc
    variables = (SHORT,)
    elastic = (WORK_SLACK,)
    rows = (TRAINING_WORK,)
    couples_hours = "one run's blocks over every hour of its window"

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        (w,) = np.nonzero(~d.workload_is_inference & ~d.workload_is_gang & ~np.isnan(d.short_usd_per_eflop))
        ctx.add_variables(SHORT, (w,), lower=0.0, upper=d.training_work_eflop[w], cost=d.short_usd_per_eflop[w],
                          cost_terms={PENALTY: d.short_usd_per_eflop[w]})

    def add_elastic(self, ctx: BuildContext) -> None:
        d = ctx.data
        (w,) = np.nonzero(d.hard_training & ~d.workload_is_gang)
        ctx.add_variables(WORK_SLACK, (w,), lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST, elastic=True)

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        (w,) = np.nonzero(~d.workload_is_inference & ~d.workload_is_gang)
        row_of = row_index((len(d.workload_ids),), (w,))
        delivered = ctx.terms(DELIVERED_EFLOP)
        rows, cols, vals = [row_of[delivered.coords[0]]], [delivered.column], [delivered.coefficient]
        for var in (SHORT, WORK_SLACK):
            fam = ctx.block(var)
            if fam is not None and fam.size:
                rows.append(row_of[fam.coords[0]])
                cols.append(fam.start + np.arange(fam.size))
                vals.append(np.ones(fam.size))
        ctx.add_rows(TRAINING_WORK, (w,), rows_of=np.concatenate(rows), cols=np.concatenate(cols),
                     vals=np.concatenate(vals), lower=d.training_work_eflop[w], upper=np.inf)

    def shortfalls(self, data, model, values):
        fam = model.variables[WORK_SLACK.name]
        slack = values[fam.slice]
        out = []
        for k in np.nonzero(slack > SLACK_TOLERANCE)[0]:
            w = int(fam.coords[0][k])
            path = f"workloads[{w}]({data.workload_ids[w]}).work_eflop"
            amount = float(slack[k])
            out.append(Shortfall(
                data.workload_ids[w], "training", [], amount, path,
                f"{path}: hard training run '{data.workload_ids[w]}' falls {amount:.6g} EFLOP short by its deadline",
                unserved_eflop=amount,
            ))
        return out

    def shadow_prices(self, data, model, worth):
        """USD per EFLOP: one more EFLOP of the run's work by its deadline."""
        fam, value = row_worth(model, TRAINING_WORK.name, worth)
        if fam is None:
            return []
        return [ShadowPrice(self.name, data.workload_ids[w], None, float(v), "USD/EFLOP")
                for w, v in zip(fam.coords[0], value)]


FAMILY = TrainingWork()
