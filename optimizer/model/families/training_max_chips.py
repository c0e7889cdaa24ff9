"""``training_max_chips[workload,hour]``: chips a training run holds in an hour <= its max_chips."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    WORKLOAD_CHIPS, BuildContext, ConstraintFamily, Rows, group,
)

TRAINING_MAX_CHIPS = Rows("training_max_chips", ("workload", "hour"), "<=",
                          "sum over pools of blocks x block <= max_chips")


class TrainingMaxChips(ConstraintFamily):
    name = "training_max_chips"
    doc = TRAINING_MAX_CHIPS.doc
    rows = (TRAINING_MAX_CHIPS,)

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        terms = ctx.terms(WORKLOAD_CHIPS)
        terms = terms.where(np.isfinite(d.training_max_chips[terms.coords[0]]))
        (w, t), row = group(*terms.coords)
        # Rows with one eligible pool are implied by that column's upper bound.
        keep, in_kept, rows = ctx.drop_single_member_rows(row, len(w))
        ctx.add_rows(TRAINING_MAX_CHIPS, (w[keep], t[keep]), rows_of=rows, cols=terms.column[in_kept],
                     vals=terms.coefficient[in_kept], lower=-np.inf, upper=d.training_max_chips[w[keep]])


FAMILY = TrainingMaxChips()
