"""Reserved pools: ``reserved_blocks[pool]``, held and paid for the whole horizon, and
``reserved_capacity[pool,hour]``: blocks in use in each hour <= the blocks reserved."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    BILLED_USD, POOL_BLOCKS, RESERVED, BuildContext, ConstraintFamily, Rows, chip_hour_prices, Variable, full_pools, group,
)

RESERVED_BLOCKS = Variable(
    "reserved_blocks", ("pool",), integer=True, hourly=False, purchase=True, cost=(RESERVED,),
    doc="blocks of a reserved pool held (and paid) for the whole horizon",
)
RESERVED_CAPACITY = Rows(
    "reserved_capacity", ("pool", "hour"), "<=",
    "sum of the pool's blocks in use in the hour - reserved_blocks <= 0 (reserved pools)",
)


class ReservedCapacity(ConstraintFamily):
    name = "reserved_capacity"
    doc = RESERVED_CAPACITY.doc
    variables = (RESERVED_BLOCKS,)
    rows = (RESERVED_CAPACITY,)
    couples_hours = "reserved_blocks[pool] is one column for the whole horizon, in every hour's row"

    def add_variables(self, ctx: BuildContext) -> None:
        """With ``fixed_reserved_blocks`` (a plan already bought) the column is fixed to that value,
        and a fixed pool no workload can use still gets its column, so its bill is counted."""
        d = ctx.data
        fixed = ctx.fixed_reserved_blocks or {}
        pools = np.unique(np.concatenate([
            d.alloc_pool[d.pool_reserved[d.alloc_pool]],
            d.gang_pool[d.pool_reserved[d.gang_pool]],
            np.array(sorted(fixed), dtype=np.int64),
        ]))
        upper = d.pool_available_blocks[pools, 0].astype(float)
        lower = np.zeros(len(pools))
        for position, p in enumerate(pools):
            if int(p) in fixed:
                lower[position] = upper[position] = float(fixed[int(p)])
        cost = d.pool_block[pools] * d.pool_usd_per_chip_hour[pools] * d.hours
        fam = ctx.add_variables(RESERVED_BLOCKS, (pools,), lower=lower, upper=upper, cost=cost,
                                cost_terms={RESERVED: cost})
        column = np.full(len(d.pool_ids), -1, dtype=np.int64)
        column[pools] = fam.start + np.arange(fam.size)
        ctx.contribute(BILLED_USD, (pools,), column[pools], cost)
        ctx.own(self)["column_of_pool"] = column

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        terms = ctx.terms(POOL_BLOCKS)
        terms = terms.where(d.pool_reserved[terms.coords[0]])
        (p, t), row = group(*terms.coords)
        n_rows = len(p)
        ctx.add_rows(
            RESERVED_CAPACITY, (p, t),
            rows_of=np.concatenate([row, np.arange(n_rows)]),
            cols=np.concatenate([terms.column, ctx.own(self)["column_of_pool"][p]]),
            vals=np.concatenate([terms.coefficient, -np.ones(n_rows)]),
            lower=-np.inf, upper=0.0,
        )

    def fix_from_lp(self, model, lp_values, lower, upper) -> None:
        """Reservations rounded up: never fewer chips than the LP held."""
        fam = model.variables.get(RESERVED_BLOCKS.name)
        if fam is not None and fam.size:
            value = np.minimum(np.ceil(lp_values[fam.slice] - 1e-6), upper[fam.slice])
            lower[fam.slice] = upper[fam.slice] = np.maximum(value, lower[fam.slice])

    def full(self, data, model, values, pool_hours):
        return full_pools(self.name, data, model, values, pool_hours, reserved=True)

    def shadow_prices(self, data, model, worth):
        return chip_hour_prices(self.name, RESERVED_CAPACITY, data, model, worth)

FAMILY = ReservedCapacity()
