"""Commitments: spend commitments (AWS Savings Plans, GCP flexible CUDs) and usage commitments
(reserved instances, GCP resource CUDs, Azure reservations) over the on_demand pools they apply to.

- ``usage_covered[commitment,pool,hour]`` (whole chips) and ``spend_covered[commitment,pool,hour]``
  (chips, continuous: a Savings Plan pays for part of an instance-hour) are the chips of the pool
  a commitment pays for in the hour; their cost is minus the pool's rate (that usage is not billed
  at the pool's rate: the commitment's fee pays for it).
- ``usage_level[commitment]`` (chips) and ``spend_level[commitment]`` (USD/hour) are what is
  committed, paid in every hour of the window, used or not: fixed where the instance gives it.
- ``commitment_cover[commitment,hour]``: spend: sum of (1 - discount) x rate x covered chips
  <= level; usage: covered chips <= level.
- ``covered_usage[pool,hour]``: chips covered by every commitment <= chips in use on the pool.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    BILLED_USD, POOL_BLOCKS, USAGE, BuildContext, ConstraintFamily, CostTerm, Rows, Variable, group,
)

COMMITMENTS = CostTerm("commitments", "commitment levels x their rate x the hours of their window, used or not")
USAGE_COVERED = Variable(
    "usage_covered", ("commitment", "pool", "hour"), integer=True, cost=(USAGE,), dual_lp="relax",
    doc="chips of the pool a usage commitment pays for in the hour (not billed at the pool's rate)",
)
SPEND_COVERED = Variable(
    "spend_covered", ("commitment", "pool", "hour"), integer=False, decision=True, cost=(USAGE,),
    doc="chips of the pool a spend commitment pays for in the hour, at (1 - discount) x the pool's rate",
)
USAGE_LEVEL = Variable(
    "usage_level", ("commitment",), integer=True, hourly=False, purchase=True, cost=(COMMITMENTS,),
    doc="chips a usage commitment holds in every hour of its window, at its usd_per_chip_hour",
)
SPEND_LEVEL = Variable(
    "spend_level", ("commitment",), integer=False, decision=True, hourly=False, purchase=True, cost=(COMMITMENTS,),
    doc="USD per hour a spend commitment pays in every hour of its window",
)
COMMITMENT_COVER = Rows(
    "commitment_cover", ("commitment", "hour"), "<=",
    "spend: sum (1 - discount) x rate x spend_covered - spend_level <= 0; usage: sum usage_covered - usage_level <= 0",
)
COVERED_USAGE = Rows(
    "covered_usage", ("pool", "hour"), "<=",
    "sum over commitments of the chips they cover - chips in use on the pool <= 0",
)


class CommitmentCover(ConstraintFamily):
    name = "commitment_cover"
    doc = COMMITMENT_COVER.doc
    variables = (USAGE_COVERED, SPEND_COVERED, USAGE_LEVEL, SPEND_LEVEL)
    rows = (COMMITMENT_COVER, COVERED_USAGE)
    cost_terms = (COMMITMENTS,)
    couples_hours = "a commitment's level is one column for its window, in every hour's commitment_cover row"

    def add_variables(self, ctx: BuildContext) -> None:
        d, i = ctx.data, ctx.data.instruments
        own = ctx.own(self)
        n = len(i.commitment_ids)
        # Coverage: one column per (commitment, pool, hour in its window) where the pool has chips.
        pair_hours = [np.arange(i.commitment_start_hour[c], i.commitment_end_hour[c]) for c in i.cover_commitment]
        lengths = np.array([len(h) for h in pair_hours], dtype=np.int64)
        pair = np.repeat(np.arange(len(i.cover_commitment)), lengths)
        hour = np.concatenate(pair_hours) if pair_hours else np.zeros(0, dtype=np.int64)
        commitment, pool = i.cover_commitment[pair], i.cover_pool[pair]
        chips = d.pool_available_blocks[pool, hour] * d.pool_block[pool]
        keep = chips > 0
        commitment, pool, hour, chips = commitment[keep], pool[keep], hour[keep], chips[keep]
        rate = d.pool_usd_per_chip_hour[pool]
        spend = i.commitment_spend[commitment]
        for var, pick in ((USAGE_COVERED, ~spend), (SPEND_COVERED, spend)):
            k = np.nonzero(pick)[0]
            fam = ctx.add_variables(var, (commitment[k], pool[k], hour[k]), lower=0.0, upper=chips[k].astype(float),
                                    cost=-rate[k], cost_terms={USAGE: -rate[k]})
            columns = fam.start + np.arange(fam.size)
            ctx.contribute(BILLED_USD, (pool[k],), columns, -rate[k])
            own[var.name] = (columns, commitment[k], pool[k], hour[k], rate[k])
        # Levels: the committed chips or USD/hour, bounded by what the pools could ever use.
        most_per_hour = np.zeros((n, d.hours))
        weight = np.where(spend, (1 - i.commitment_discount[commitment]) * rate, 1.0)
        np.add.at(most_per_hour, (commitment, hour), weight * chips)
        implied = most_per_hour.max(axis=1) if d.hours else np.zeros(n)
        for var, pick in ((USAGE_LEVEL, ~i.commitment_spend), (SPEND_LEVEL, i.commitment_spend)):
            c = np.nonzero(pick)[0]
            given = i.commitment_level[c]
            upper = np.where(np.isnan(given), np.minimum(i.commitment_max_level[c], implied[c]), given)
            if var.integer:
                upper = np.floor(upper + 1e-9)
            lower = np.where(np.isnan(given), 0.0, given)
            hours_in_window = i.commitment_hours[c]
            fee = np.where(i.commitment_spend[c], 1.0, i.commitment_usd_per_chip_hour[c]) * hours_in_window
            fam = ctx.add_variables(var, (c,), lower=lower, upper=upper, cost=fee, cost_terms={COMMITMENTS: fee})
            column_of = np.full(n, -1, dtype=np.int64)
            column_of[c] = fam.start + np.arange(fam.size)
            own[var.name] = column_of

    def add_rows(self, ctx: BuildContext) -> None:
        d, i = ctx.data, ctx.data.instruments
        own = ctx.own(self)
        level_column = np.maximum(own[USAGE_LEVEL.name], own[SPEND_LEVEL.name])
        parts = [own[USAGE_COVERED.name], own[SPEND_COVERED.name]]
        columns, commitment, pool, hour, rate = (np.concatenate(x) for x in zip(*parts))
        spend = i.commitment_spend[commitment]
        weight = np.where(spend, (1 - i.commitment_discount[commitment]) * rate, 1.0)
        # commitment_cover[c,t]: weighted coverage (+) against the level (-1), one row per (c, t) with coverage.
        (c, t), row = group(commitment, hour)
        ctx.add_rows(
            COMMITMENT_COVER, (c, t),
            rows_of=np.concatenate([row, np.arange(len(c))]),
            cols=np.concatenate([columns, level_column[c]]),
            vals=np.concatenate([weight, -np.ones(len(c))]),
            lower=-np.inf, upper=0.0,
        )
        # covered_usage[p,t]: coverage (+1) against the chips in use (-block x blocks).
        terms = ctx.terms(POOL_BLOCKS)
        covered_pool = np.zeros(len(d.pool_ids), dtype=bool)
        covered_pool[pool] = True
        terms = terms.where(covered_pool[terms.coords[0]])
        (p, t), row = group(np.concatenate([pool, terms.coords[0]]), np.concatenate([hour, terms.coords[1]]))
        has_cover = np.zeros(len(p), dtype=bool)
        has_cover[row[:len(columns)]] = True
        kept = np.cumsum(has_cover) - 1
        members = has_cover[row]
        ctx.add_rows(
            COVERED_USAGE, (p[has_cover], t[has_cover]),
            rows_of=kept[row[members]],
            cols=np.concatenate([columns, terms.column])[members],
            vals=np.concatenate([np.ones(len(columns)), -terms.coefficient * d.pool_block[terms.coords[0]]])[members],
            lower=-np.inf, upper=0.0,
        )

    def fix_from_lp(self, model, lp_values, lower, upper) -> None:
        """Levels from the LP: whole chips rounded up, USD/hour as the LP bought them."""
        for var in (USAGE_LEVEL, SPEND_LEVEL):
            fam = model.variables.get(var.name)
            if fam is None or not fam.size:
                continue
            value = lp_values[fam.slice]
            if var.integer:
                value = np.ceil(value - 1e-6)
            value = np.clip(value, lower[fam.slice], upper[fam.slice])
            lower[fam.slice] = upper[fam.slice] = value


FAMILY = CommitmentCover()
