"""``training_restart[workload,hour]``: chips added to a run from one hour to the next are paid
for (restart_usd_per_chip: a resize or restart reloads a checkpoint onto the new chips).

    chips_added[w,t] - chips[w,t] + chips[w,t-1] >= 0        for t >= 1

``chips_added`` is the slack of that row (settled to max(0, chips[t] - chips[t-1])) and costs
restart_usd_per_chip each.  Hour 0 is not priced: what a run held before the horizon is not
known.  The rows tie each hour to the one before, so the hour decomposition dualizes them.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    WORKLOAD_CHIPS, BuildContext, ConstraintFamily, CostTerm, Rows, Variable, row_index,
)
from optimizer.model.families.training_min_chips import run_hours

RESTARTS = CostTerm("restarts", "chips added to a training run from one hour to the next x restart_usd_per_chip",
                    spend=False)
TRAINING_RESTART = Rows("training_restart", ("workload", "hour"), ">=",
                        "chips_added - chips in the hour + chips in the hour before >= 0 (hours >= 1)")
CHIPS_ADDED = Variable("chips_added", ("workload", "hour"), integer=False, cost=(RESTARTS,),
                       covered_by=TRAINING_RESTART.name,
                       doc="chips the run holds in the hour beyond those it held in the hour before")


class TrainingRestart(ConstraintFamily):
    name = "training_restart"
    doc = TRAINING_RESTART.doc
    variables = (CHIPS_ADDED,)
    rows = (TRAINING_RESTART,)
    cost_terms = (RESTARTS,)
    couples_hours = "a run's chips in each hour against the hour before"

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        (w, t), cap = run_hours(d, (d.restart_usd_per_chip[d.alloc_workload] > 0) & (d.alloc_hour >= 1))
        price = d.restart_usd_per_chip[w]
        ctx.add_variables(CHIPS_ADDED, (w, t), lower=0.0, upper=cap, cost=price, cost_terms={RESTARTS: price})

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        added = ctx.block(CHIPS_ADDED)
        w, t = added.coords
        row_of = row_index((len(d.workload_ids), d.hours + 1), (w, t))
        chips = ctx.terms(WORKLOAD_CHIPS)
        cw, ct = chips.coords
        now = row_of[cw, ct]  # the chips of hour t, in row (w, t)
        before = row_of[cw, ct + 1]  # the chips of hour t, in row (w, t + 1)
        rows = np.concatenate([np.arange(added.size), now[now >= 0], before[before >= 0]])
        cols = np.concatenate([added.start + np.arange(added.size), chips.column[now >= 0], chips.column[before >= 0]])
        vals = np.concatenate([np.ones(added.size), -chips.coefficient[now >= 0], chips.coefficient[before >= 0]])
        ctx.add_rows(TRAINING_RESTART, (w, t), rows_of=rows, cols=cols, vals=vals,
                     lower=np.zeros(added.size), upper=np.full(added.size, np.inf))


FAMILY = TrainingRestart()
