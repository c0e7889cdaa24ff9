"""A run that runs holds enough chips: ``training_min_chips[workload,hour]`` and
``training_runs[workload,hour]``, over ``runs[workload,hour]`` (1: the run holds chips in the hour).

    chips[w,t] >= min_chips[w] x runs[w,t]        (training_min_chips)
    chips[w,t] <= cap[w,t]     x runs[w,t]        (training_runs)

``cap[w,t]`` is the most chips the run could hold in the hour (its eligible allocations' upper
bounds, and max_chips), so the second row only says "no chips unless it runs".  Each row sits in
one hour: the family couples nothing.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    WORKLOAD_CHIPS, BuildContext, ConstraintFamily, Rows, Variable, group, row_index,
)

RUNS = Variable("runs", ("workload", "hour"), integer=True,
                doc="1 if a run with min_chips holds chips in the hour (then at least min_chips)")
TRAINING_MIN_CHIPS = Rows("training_min_chips", ("workload", "hour"), ">=",
                          "sum over pools of blocks x block - min_chips x runs >= 0")
TRAINING_RUNS = Rows("training_runs", ("workload", "hour"), "<=",
                     "sum over pools of blocks x block - cap x runs <= 0 (cap: the most chips it could hold)")


def run_hours(data, allocations: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The (run, hour) pairs of the ``allocations`` (a mask over ModelData.alloc_*), and each
    pair's cap: the most chips the run could hold in that hour (its allocations' upper bounds, and
    max_chips)."""
    (k,) = np.nonzero(allocations)
    (w, t), pair = group(data.alloc_workload[k], data.alloc_hour[k])
    cap = np.zeros(len(w))
    np.add.at(cap, pair, data.alloc_max_blocks[k] * data.pool_block[data.alloc_pool[k]])
    return (w, t), np.minimum(cap, data.training_max_chips[w])


class TrainingMinChips(ConstraintFamily):
    name = "training_min_chips"
    doc = "a run with min_chips holds 0 or at least min_chips chips in each hour"
    variables = (RUNS,)
    rows = (TRAINING_MIN_CHIPS, TRAINING_RUNS)

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        (w, t), cap = run_hours(d, d.training_min_chips[d.alloc_workload] > 0)
        ctx.own(self)["cap"] = cap
        ctx.add_variables(RUNS, (w, t), lower=0.0, upper=1.0, cost=0.0)

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        runs = ctx.block(RUNS)
        w, t = runs.coords
        row_of = row_index((len(d.workload_ids), d.hours), (w, t))
        chips = ctx.terms(WORKLOAD_CHIPS)
        mine = row_of[chips.coords] >= 0
        run_columns = runs.start + np.arange(runs.size)
        rows = np.concatenate([row_of[chips.coords][mine], np.arange(runs.size)])
        cols = np.concatenate([chips.column[mine], run_columns])
        for family, run_coefficient in ((TRAINING_MIN_CHIPS, -d.training_min_chips[w].astype(float)),
                                        (TRAINING_RUNS, -ctx.own(self)["cap"])):
            vals = np.concatenate([chips.coefficient[mine], run_coefficient])
            lower, upper = (0.0, np.inf) if family.sense == ">=" else (-np.inf, 0.0)
            ctx.add_rows(family, (w, t), rows_of=rows, cols=cols, vals=vals,
                         lower=np.full(runs.size, lower), upper=np.full(runs.size, upper))


FAMILY = TrainingMinChips()
