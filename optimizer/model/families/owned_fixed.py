"""``fixed_cost[pool]``: an owned pool's amortised capital and hosting, paid for every available
chip in every hour whether it is used or not (fixed_usd_per_chip_hour).

A constant of every plan, so it changes no decision; it is one column fixed at 1 so that the
solver's objective and bound are the plan's whole cost, and the cost breakdown shows it as the
term ``fixed``.  No rows.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import BuildContext, ConstraintFamily, CostTerm, Variable

FIXED = CostTerm("fixed", "owned chips available x fixed_usd_per_chip_hour x hours, used or not")
FIXED_COST = Variable("fixed_cost", ("pool",), integer=True, hourly=False, cost=(FIXED,),
                      doc="1: the owned pool's fixed cost is paid (fixed at 1)")


class OwnedFixed(ConstraintFamily):
    name = "owned_fixed"
    doc = "owned pools pay fixed_usd_per_chip_hour on every available chip, used or not"
    variables = (FIXED_COST,)
    cost_terms = (FIXED,)

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        (p,) = np.nonzero(d.pool_fixed_usd > 0)
        ctx.add_variables(FIXED_COST, (p,), lower=1.0, upper=1.0, cost=d.pool_fixed_usd[p],
                          cost_terms={FIXED: d.pool_fixed_usd[p]})


FAMILY = OwnedFixed()
