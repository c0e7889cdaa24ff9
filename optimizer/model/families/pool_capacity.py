"""``pool_capacity[pool,hour]``: blocks in use on a rented pool in an hour <= its available blocks."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    POOL_BLOCKS, BuildContext, ConstraintFamily, Rows, chip_hour_prices, full_pools, group,
)

POOL_CAPACITY = Rows(
    "pool_capacity", ("pool", "hour"), "<=",
    "sum of the pool's blocks in use in the hour (allocations, spanning gang starts) <= available blocks",
)


class PoolCapacity(ConstraintFamily):
    name = "pool_capacity"
    doc = POOL_CAPACITY.doc + " (on_demand and spot pools)"
    rows = (POOL_CAPACITY,)

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        terms = ctx.terms(POOL_BLOCKS)
        terms = terms.where(~d.pool_reserved[terms.coords[0]])
        (p, t), row = group(*terms.coords)
        # A row with one member is implied by that column's upper bound (a gang start exists only
        # where its blocks fit): leave it out.
        keep, in_kept, rows = ctx.drop_single_member_rows(row, len(p))
        ctx.add_rows(
            POOL_CAPACITY, (p[keep], t[keep]), rows_of=rows, cols=terms.column[in_kept],
            vals=terms.coefficient[in_kept], lower=-np.inf,
            upper=d.pool_available_blocks[p[keep], t[keep]].astype(float),
        )

    def full(self, data, model, values, pool_hours):
        return full_pools(self.name, data, model, values, pool_hours, reserved=False)

    def shadow_prices(self, data, model, worth):
        return chip_hour_prices(self.name, POOL_CAPACITY, data, model, worth)

FAMILY = PoolCapacity()
