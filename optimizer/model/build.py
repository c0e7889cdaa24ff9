"""The chipmix MILP: every constraint family of :data:`optimizer.model.families.FAMILIES`, built
vectorised from :class:`~optimizer.model.data.ModelData`.

The families are walked three times, in registry order: their columns (and the terms they add to
shared expressions), their elastic slack (diagnostic model only), then their rows.  The names
are the names in docs/formulation.md, in LP files and in infeasibility reports.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.data import ModelData
from optimizer.model.families import FAMILIES, cost_terms
from optimizer.model.families.base import BuildContext
from optimizer.model.linear import LinearModel, ModelBuilder


def build_model(
    data: ModelData, *, elastic: bool = False, fixed_reserved_blocks: dict[int, int] | None = None,
    slack_usd: float | None = None, keep_implied_rows: bool = False,
) -> LinearModel:
    """The chipmix MILP.  ``elastic=True`` builds the diagnostic model: hard demand gets
    slack and the objective is the total slack alone (see :mod:`optimizer.plans.diagnose`), or,
    with ``slack_usd``, the usual costs plus ``slack_usd`` per unit of slack: a relaxation of the
    MILP that every purchase leaves feasible (a hedge's L-shaped cuts are read from it).
    ``fixed_reserved_blocks`` (pool index -> blocks) holds reservations already bought.
    ``keep_implied_rows`` keeps the rows a column's upper bound implies (pool capacity with one
    eligible allocation): the same columns, and rows that carry every limit (plans/duals.py)."""
    i = data.instruments
    # A routed service's allocations are named by its variant (blocks[chat/draft,pool,hour]): the
    # variants' labels follow the workloads in the "workload" dimension.
    ids = {"workload": data.workload_ids + data.economics.variant_ids, "pool": data.pool_ids, "site": data.site_ids, "chip": data.chip_ids,
           "offer": i.offer_ids, "commitment": i.commitment_ids, "contract": i.contract_ids,
           "quota": data.energy.quota_ids, "variant": data.economics.variant_ids,
           "category": data.economics.category_ids}
    ctx = BuildContext(data=data, builder=ModelBuilder(ids), elastic=elastic,
                       fixed_reserved_blocks=fixed_reserved_blocks, keep_implied_rows=keep_implied_rows,
                       spend_keys=frozenset(term.key for term in cost_terms() if term.spend))
    for family in FAMILIES:
        family.add_variables(ctx)
    if elastic:
        for family in FAMILIES:
            family.add_elastic(ctx)
    for family in FAMILIES:
        family.add_rows(ctx)

    model = ctx.builder.build()
    model.hours = data.hours
    model.expressions = ctx.expressions()
    model.cumulatives = [resource for family in FAMILIES for resource in family.cumulatives(data, model)]
    if elastic:
        slack = np.zeros(model.n_cols, dtype=bool)
        for fam in model.variables.values():
            slack[fam.slice] = fam.elastic
        if slack_usd is None:  # phase-1 objective: find the least slack, whatever it costs
            model.col_cost = np.where(slack, model.col_cost, 0.0)
        else:
            model.col_cost = np.where(slack, float(slack_usd), model.col_cost)
    return model
