"""Capacity blocks (the AWS EC2 Capacity Blocks for ML shape): ``blocks_bought[offer,hour]``,
blocks of an offer bought to start in that hour and paid for their whole duration, used or not;
``block_capacity[pool,hour]``: blocks in use on a capacity_block pool <= the blocks bought that
cover the hour; ``block_offer_limit[offer]``: blocks bought of an offer <= its max_blocks."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    BILLED_USD, POOL_BLOCKS, BuildContext, ConstraintFamily, CostTerm, Rows, Variable, group,
)

BLOCKS = CostTerm("blocks", "capacity blocks bought x their chips x duration_hours x the offer's usd_per_chip_hour")
BLOCKS_BOUGHT = Variable(
    "blocks_bought", ("offer", "hour"), integer=True, hourly=False, purchase=True, cost=(BLOCKS,),
    doc="blocks of the offer bought to start in the hour (at least those already bought); they span duration_hours",
)
BLOCK_CAPACITY = Rows(
    "block_capacity", ("pool", "hour"), "<=",
    "blocks of the pool in use in the hour - blocks bought that cover the hour <= 0 (capacity_block pools)",
)
BLOCK_OFFER_LIMIT = Rows(
    "block_offer_limit", ("offer",), "<=", "sum over start hours of blocks_bought[offer,hour] <= max_blocks",
)


class BlockCapacity(ConstraintFamily):
    name = "block_capacity"
    doc = BLOCK_CAPACITY.doc
    variables = (BLOCKS_BOUGHT,)
    rows = (BLOCK_CAPACITY, BLOCK_OFFER_LIMIT)
    cost_terms = (BLOCKS,)
    couples_hours = "a block bought at one start hour covers duration_hours consecutive hours' rows"

    def add_variables(self, ctx: BuildContext) -> None:
        d, i = ctx.data, ctx.data.instruments
        offer, pool = i.start_offer, i.offer_pool[i.start_offer]
        most = np.minimum(i.offer_max_blocks[offer], d.pool_available_blocks[pool].max(axis=1))
        upper = np.maximum(most, i.start_bought_blocks).astype(float)
        fee = d.pool_block[pool] * i.offer_duration_hours[offer] * i.offer_usd_per_chip_hour[offer]
        fam = ctx.add_variables(BLOCKS_BOUGHT, (offer, i.start_hour), lower=i.start_bought_blocks.astype(float),
                                upper=upper, cost=fee, cost_terms={BLOCKS: fee})
        columns = fam.start + np.arange(fam.size)
        ctx.contribute(BILLED_USD, (pool,), columns, fee)
        ctx.own(self)["columns"] = columns

    def add_rows(self, ctx: BuildContext) -> None:
        d, i = ctx.data, ctx.data.instruments
        columns = ctx.own(self)["columns"]
        terms = ctx.terms(POOL_BLOCKS)
        is_block_pool = np.zeros(len(d.pool_ids), dtype=bool)
        is_block_pool[i.offer_pool] = True
        terms = terms.where(is_block_pool[terms.coords[0]])
        start, hour = i.starts_covering()
        pool = i.offer_pool[i.start_offer[start]]
        # One row per (pool, hour) a block could cover: usage there (+1) against the blocks (-1).
        (p, t), row = group(np.concatenate([terms.coords[0], pool]), np.concatenate([terms.coords[1], hour]))
        n_use = len(terms.column)
        has_use = np.zeros(len(p), dtype=bool)
        has_use[row[:n_use]] = True  # a row with no usage term holds nothing: leave it out
        kept = np.cumsum(has_use) - 1
        members = has_use[row]
        ctx.add_rows(
            BLOCK_CAPACITY, (p[has_use], t[has_use]),
            rows_of=kept[row[members]],
            cols=np.concatenate([terms.column, columns[start]])[members],
            vals=np.concatenate([terms.coefficient, -np.ones(len(start))])[members],
            lower=-np.inf, upper=0.0,
        )
        limited = np.nonzero(np.isfinite(i.offer_max_blocks))[0]
        at = np.isin(i.start_offer, limited)
        order = np.searchsorted(limited, i.start_offer[at])
        ctx.add_rows(BLOCK_OFFER_LIMIT, (limited,), rows_of=order, cols=columns[at], vals=np.ones(int(at.sum())),
                     lower=-np.inf, upper=i.offer_max_blocks[limited])

    def fix_from_lp(self, model, lp_values, lower, upper) -> None:
        """Blocks rounded up (never fewer chips than the LP bought), then, where that is more than
        an offer's max_blocks, the starts the LP bought least of rounded down until it fits."""
        fam = model.variables.get(BLOCKS_BOUGHT.name)
        if fam is None or not fam.size:
            return
        lp = lp_values[fam.slice]
        value = np.maximum(np.minimum(np.ceil(lp - 1e-6), upper[fam.slice]), lower[fam.slice])
        limit = model.constraints.get(BLOCK_OFFER_LIMIT.name)
        if limit is not None and limit.size:
            offer = fam.coords[0]
            for position, o in enumerate(limit.coords[0]):
                most = model.row_upper[limit.start + position]
                members = np.nonzero(offer == o)[0]
                for k in members[np.argsort(lp[members] - np.floor(lp[members] + 1e-9), kind="stable")]:
                    if value[members].sum() <= most + 1e-9:
                        break
                    value[k] = max(np.floor(lp[k] + 1e-6), lower[fam.start + k])
        lower[fam.slice] = upper[fam.slice] = value


FAMILY = BlockCapacity()
