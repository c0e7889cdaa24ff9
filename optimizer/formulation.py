"""The chipmix MILP, built vectorised from :class:`~optimizer.data.ModelData`.

A flat list of ``define_<family>()`` calls (see :func:`build_model`), each adding
one named variable or constraint family over index arrays.  The names here are
the names in docs/formulation.md, in LP files and in infeasibility reports.

Allocation variables count *blocks* (``blocks[w,p,t]``); chips are
``block_p * blocks``, so "chips in multiples of the block" is plain integrality.
A gang-scheduled run has no ``blocks``: it picks at most one start
``gang_start[w,p,s]``, and that start's chips count in every hour of its span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.data import EFLOP_PER_TFLOPS_HOUR, ModelData
from optimizer.model import Cumulative, Family, LinearModel, ModelBuilder

#: Cost per unit of slack in the elastic (diagnostic) model: only its sign matters there.
ELASTIC_SLACK_COST = 1.0


def _group(*keys: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct key tuples (sorted) and, for every input position, the index of its group."""
    if len(keys[0]) == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in keys), np.zeros(0, dtype=np.int64)
    stacked = np.stack(keys, axis=1)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return tuple(unique[:, i] for i in range(len(keys))), inverse.reshape(-1)


def _drop_single_member_rows(row: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with one member are implied by that variable's upper bound: leave them out.

    Returns the kept-row mask, which members are in kept rows, and their new row numbers.
    """
    keep = np.bincount(row, minlength=n_rows) >= 2
    in_kept = keep[row]
    return keep, in_kept, (np.cumsum(keep) - 1)[row[in_kept]]


@dataclass
class _Context:
    data: ModelData
    builder: ModelBuilder
    elastic: bool
    blocks: Family | None = None
    reserved_blocks: Family | None = None
    reserved_column_of_pool: np.ndarray | None = None
    site_choice: Family | None = None
    site_choice_column: np.ndarray | None = None  # [workload, site] -> column, -1 if none
    fixed_reserved_blocks: dict[int, int] | None = None  # pool index -> blocks already bought
    gang_start: Family | None = None


def _pool_hour_terms(ctx: _Context, reserved: bool) -> tuple[np.ndarray, ...]:
    """(pool, hour, column, blocks) of every term that uses a pool's blocks in an hour:
    hourly allocations, and each hour of each gang start's span; only (non-)reserved pools."""
    d = ctx.data
    k = np.nonzero(d.pool_reserved[d.alloc_pool] == reserved)[0]
    option, hour = d.gang_spans(np.nonzero(d.pool_reserved[d.gang_pool] == reserved)[0])
    return (
        np.concatenate([d.alloc_pool[k], d.gang_pool[option]]),
        np.concatenate([d.alloc_hour[k], hour]),
        np.concatenate([ctx.blocks.start + k, ctx.gang_start.start + option]),
        np.concatenate([np.ones(len(k)), d.gang_blocks[option].astype(float)]),
    )


# -- variables ---------------------------------------------------------------------------------


def define_allocation_variables(ctx: _Context) -> None:
    """blocks[workload,pool,hour]: integer blocks of the pool given to the workload in the hour."""
    d = ctx.data
    pool = d.alloc_pool
    chip_power_kw = d.pool_chip_power_kw[pool]
    energy_usd_per_kwh = d.site_energy_usd_per_kwh[d.pool_site[pool], d.alloc_hour]
    usage_usd_per_chip_hour = np.where(d.pool_reserved[pool], 0.0, d.pool_usd_per_chip_hour[pool])
    cost = d.pool_block[pool] * (usage_usd_per_chip_hour + chip_power_kw * energy_usd_per_kwh)
    ctx.blocks = ctx.builder.add_variables(
        "blocks",
        ("workload", "pool", "hour"),
        (d.alloc_workload, pool, d.alloc_hour),
        lower=0.0,
        upper=d.alloc_max_blocks.astype(float),
        cost=cost,
        integer=True,
    )


def define_reservation_variables(ctx: _Context) -> None:
    """reserved_blocks[pool]: blocks of a reserved pool held (and paid) for the whole horizon.

    With ``fixed_reserved_blocks`` (a plan already bought) the variable is fixed to that value,
    and a fixed pool no workload can use still gets its column, so its bill is counted.
    """
    d = ctx.data
    fixed = ctx.fixed_reserved_blocks or {}
    pools = np.unique(
        np.concatenate(
            [
                d.alloc_pool[d.pool_reserved[d.alloc_pool]],
                d.gang_pool[d.pool_reserved[d.gang_pool]],
                np.array(sorted(fixed), dtype=np.int64),
            ]
        )
    )
    upper = d.pool_available_blocks[pools, 0].astype(float)
    lower = np.zeros(len(pools))
    for position, p in enumerate(pools):
        if int(p) in fixed:
            lower[position] = upper[position] = float(fixed[int(p)])
    fam = ctx.builder.add_variables(
        "reserved_blocks",
        ("pool",),
        (pools,),
        lower=lower,
        upper=upper,
        cost=d.pool_block[pools] * d.pool_usd_per_chip_hour[pools] * d.hours,
        integer=True,
    )
    ctx.reserved_blocks = fam
    column = np.full(len(d.pool_ids), -1, dtype=np.int64)
    column[pools] = fam.start + np.arange(fam.size)
    ctx.reserved_column_of_pool = column


def define_unmet_variables(ctx: _Context) -> None:
    """unmet[workload,hour]: PFLOP/s of soft inference demand left unserved (priced)."""
    d = ctx.data
    soft = d.workload_is_inference & ~np.isnan(d.unmet_usd_per_pflops_hour)
    w, t = np.nonzero(soft[:, None] & (d.inference_demand_pflops > 0))
    ctx.builder.add_variables(
        "unmet",
        ("workload", "hour"),
        (w, t),
        lower=0.0,
        upper=d.inference_demand_pflops[w, t],
        cost=d.unmet_usd_per_pflops_hour[w],
        integer=False,
    )


def define_shortfall_variables(ctx: _Context) -> None:
    """short[workload]: EFLOP of soft training work not delivered by the deadline (priced);
    a gang run's shortfall is all or nothing (``gang_skipped``)."""
    d = ctx.data
    (w,) = np.nonzero(~d.workload_is_inference & ~d.workload_is_gang & ~np.isnan(d.short_usd_per_eflop))
    ctx.builder.add_variables(
        "short",
        ("workload",),
        (w,),
        lower=0.0,
        upper=d.training_work_eflop[w],
        cost=d.short_usd_per_eflop[w],
        integer=False,
    )


def define_gang_variables(ctx: _Context) -> None:
    """gang_start[workload,pool,hour]: 1 if the gang run starts on that pool in that hour;
    gang_skipped[workload]: 1 if a priced gang run does not run at all (pays its whole work).

    A start's cost is its chips' price and energy over every hour of its span.  In the
    diagnostic model a hard gang run gets ``gang_slack[workload]`` instead, weighted by its
    work, so it weighs the same per EFLOP as ``work_slack``.
    """
    d = ctx.data
    option, hour = d.gang_spans(np.arange(len(d.gang_workload)))
    pool = d.gang_pool[option]
    usage = np.where(d.pool_reserved[pool], 0.0, d.pool_usd_per_chip_hour[pool])
    energy = d.pool_chip_power_kw[pool] * d.site_energy_usd_per_kwh[d.pool_site[pool], hour]
    cost = np.zeros(len(d.gang_workload))
    np.add.at(cost, option, d.gang_chips[d.gang_workload[option]] * (usage + energy))
    ctx.gang_start = ctx.builder.add_variables(
        "gang_start",
        ("workload", "pool", "hour"),
        (d.gang_workload, d.gang_pool, d.gang_start),
        lower=0.0,
        upper=1.0,
        cost=cost,
        integer=True,
    )
    (soft,) = np.nonzero(d.workload_is_gang & ~np.isnan(d.short_usd_per_eflop))
    ctx.builder.add_variables(
        "gang_skipped", ("workload",), (soft,), lower=0.0, upper=1.0,
        cost=d.short_usd_per_eflop[soft] * d.training_work_eflop[soft], integer=True,
    )
    if ctx.elastic:
        (hard,) = np.nonzero(d.workload_is_gang & d.hard_training)
        ctx.builder.add_variables(
            "gang_slack", ("workload",), (hard,), lower=0.0, upper=1.0,
            cost=ELASTIC_SLACK_COST * d.training_work_eflop[hard], integer=True,
        )


def define_site_choice_variables(ctx: _Context) -> None:
    """site_choice[workload,site]: 1 if a single-site training run uses that site."""
    d = ctx.data
    single = d.training_single_site[d.alloc_workload]
    (w, s), _ = _group(d.alloc_workload[single], d.pool_site[d.alloc_pool[single]])
    fam = ctx.builder.add_variables(
        "site_choice", ("workload", "site"), (w, s), lower=0.0, upper=1.0, cost=0.0, integer=True
    )
    ctx.site_choice = fam
    column = np.full((len(d.workload_ids), len(d.site_ids)), -1, dtype=np.int64)
    column[w, s] = fam.start + np.arange(fam.size)
    ctx.site_choice_column = column


def define_elastic_variables(ctx: _Context) -> None:
    """demand_slack[workload,hour] and work_slack[workload]: only in the diagnostic model.

    They let hard demand go unmet at a cost, so an infeasible instance still
    solves and the slack that remains says which workloads and hours are short.
    """
    d = ctx.data
    w, t = np.nonzero(d.hard_inference[:, None] & (d.inference_demand_pflops > 0))
    ctx.builder.add_variables(
        "demand_slack", ("workload", "hour"), (w, t),
        lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST, integer=False,
    )
    (w,) = np.nonzero(d.hard_training & ~d.workload_is_gang)
    ctx.builder.add_variables(
        "work_slack", ("workload",), (w,), lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST, integer=False
    )


# -- constraints -------------------------------------------------------------------------------


def define_pool_capacity(ctx: _Context) -> None:
    """pool_capacity[pool,hour]: sum_w blocks + sum of gang starts spanning the hour x their
    blocks <= available blocks (non-reserved pools).

    Rows with a single member are implied by that variable's upper bound (a gang
    start exists only where its blocks fit) and left out.
    """
    d = ctx.data
    pool, hour, cols, vals = _pool_hour_terms(ctx, reserved=False)
    (p, t), row = _group(pool, hour)
    keep, in_kept, rows = _drop_single_member_rows(row, len(p))
    ctx.builder.add_constraints(
        "pool_capacity",
        ("pool", "hour"),
        (p[keep], t[keep]),
        rows=rows,
        cols=cols[in_kept],
        vals=vals[in_kept],
        lower=-np.inf,
        upper=d.pool_available_blocks[p[keep], t[keep]].astype(float),
    )


def define_reserved_capacity(ctx: _Context) -> None:
    """reserved_capacity[pool,hour]: sum_w blocks + spanning gang blocks - reserved_blocks <= 0
    (reserved pools)."""
    pool, hour, cols, vals = _pool_hour_terms(ctx, reserved=True)
    (p, t), row = _group(pool, hour)
    n_rows = len(p)
    ctx.builder.add_constraints(
        "reserved_capacity",
        ("pool", "hour"),
        (p, t),
        rows=np.concatenate([row, np.arange(n_rows)]),
        cols=np.concatenate([cols, ctx.reserved_column_of_pool[p]]),
        vals=np.concatenate([vals, -np.ones(n_rows)]),
        lower=-np.inf,
        upper=0.0,
    )


def define_site_power(ctx: _Context) -> None:
    """site_power[site,hour]: sum blocks * block * power_kw * pue <= 1000 * power_cap_mw.

    Only capped sites, and only hours where the site's pools at full
    availability could draw more than the cap (other rows can never bind).
    """
    d = ctx.data
    kw_per_block = d.pool_block * d.pool_chip_power_kw
    terms = [_pool_hour_terms(ctx, reserved) for reserved in (False, True)]
    pool, hour, cols, blocks = (np.concatenate(parts) for parts in zip(*terms))
    site = d.pool_site[pool]
    cap_kw = d.site_power_cap_kw[site, hour]
    # Most each site could draw in each hour: every usable block of every pool in use.
    max_draw_kw = np.zeros_like(d.site_power_cap_kw)
    np.add.at(max_draw_kw, d.pool_site, d.pool_available_blocks * kw_per_block[:, None])
    binding = np.isfinite(cap_kw) & (max_draw_kw[site, hour] > cap_kw * (1 + 1e-12))
    k = np.nonzero(binding)[0]
    (s, t), row = _group(site[k], hour[k])
    ctx.builder.add_constraints(
        "site_power",
        ("site", "hour"),
        (s, t),
        rows=row,
        cols=cols[k],
        vals=blocks[k] * kw_per_block[pool[k]],
        lower=-np.inf,
        upper=d.site_power_cap_kw[s, t],
    )


def define_inference_demand(ctx: _Context) -> None:
    """inference_demand[workload,hour]: sum_p blocks * block * r / 1000 + unmet >= demand_pflops."""
    d = ctx.data
    w, t = np.nonzero(d.workload_is_inference[:, None] & (d.inference_demand_pflops > 0))
    row_of = np.full(d.inference_demand_pflops.shape, -1, dtype=np.int64)
    row_of[w, t] = np.arange(len(w))
    k = np.nonzero(d.workload_is_inference[d.alloc_workload])[0]
    # Every eligible inference triple has positive demand (data.py prunes the rest).
    pflops_per_block = d.pool_block[d.alloc_pool[k]] * d.alloc_rate_tflops[k] / 1000.0
    row_parts = [row_of[d.alloc_workload[k], d.alloc_hour[k]]]
    col_parts, val_parts = [ctx.blocks.start + k], [pflops_per_block]
    for name in ("unmet", "demand_slack"):
        fam = ctx.builder.model.variables.get(name)
        if fam is not None and fam.size:
            row_parts.append(row_of[fam.coords[0], fam.coords[1]])
            col_parts.append(fam.start + np.arange(fam.size))
            val_parts.append(np.ones(fam.size))
    ctx.builder.add_constraints(
        "inference_demand",
        ("workload", "hour"),
        (w, t),
        rows=np.concatenate(row_parts),
        cols=np.concatenate(col_parts),
        vals=np.concatenate(val_parts),
        lower=d.inference_demand_pflops[w, t],
        upper=np.inf,
    )


def define_training_work(ctx: _Context) -> None:
    """training_work[workload]: sum_{p,t} blocks * block * r * 0.0036 + short >= work_eflop.

    Not for gang runs: a gang start's span is long enough by construction (D = ceil(...)).
    """
    d = ctx.data
    (w,) = np.nonzero(~d.workload_is_inference & ~d.workload_is_gang)
    row_of = np.full(len(d.workload_ids), -1, dtype=np.int64)
    row_of[w] = np.arange(len(w))
    k = np.nonzero(~d.workload_is_inference[d.alloc_workload])[0]
    eflop_per_block = d.pool_block[d.alloc_pool[k]] * d.alloc_rate_tflops[k] * EFLOP_PER_TFLOPS_HOUR
    row_parts, col_parts, val_parts = [row_of[d.alloc_workload[k]]], [ctx.blocks.start + k], [eflop_per_block]
    for name in ("short", "work_slack"):
        fam = ctx.builder.model.variables.get(name)
        if fam is not None and fam.size:
            row_parts.append(row_of[fam.coords[0]])
            col_parts.append(fam.start + np.arange(fam.size))
            val_parts.append(np.ones(fam.size))
    ctx.builder.add_constraints(
        "training_work",
        ("workload",),
        (w,),
        rows=np.concatenate(row_parts),
        cols=np.concatenate(col_parts),
        vals=np.concatenate(val_parts),
        lower=d.training_work_eflop[w],
        upper=np.inf,
    )


def define_training_max_chips(ctx: _Context) -> None:
    """training_max_chips[workload,hour]: sum_p blocks * block <= max_chips.

    Rows with one eligible pool are implied by that variable's upper bound.
    """
    d = ctx.data
    k = np.nonzero(np.isfinite(d.training_max_chips[d.alloc_workload]))[0]
    (w, t), row = _group(d.alloc_workload[k], d.alloc_hour[k])
    keep, in_kept, rows = _drop_single_member_rows(row, len(w))
    ctx.builder.add_constraints(
        "training_max_chips",
        ("workload", "hour"),
        (w[keep], t[keep]),
        rows=rows,
        cols=ctx.blocks.start + k[in_kept],
        vals=d.pool_block[d.alloc_pool[k[in_kept]]].astype(float),
        lower=-np.inf,
        upper=d.training_max_chips[w[keep]],
    )


def define_single_site(ctx: _Context) -> None:
    """single_site_choice[workload]: sum_s site_choice <= 1, and
    single_site_link[workload,pool,hour]: blocks - max_blocks * site_choice[w, site(p)] <= 0."""
    d = ctx.data
    fam = ctx.site_choice
    w_of_choice = fam.coords[0]
    (w,), row = _group(w_of_choice)
    ctx.builder.add_constraints(
        "single_site_choice",
        ("workload",),
        (w,),
        rows=row,
        cols=fam.start + np.arange(fam.size),
        vals=np.ones(fam.size),
        lower=-np.inf,
        upper=1.0,
    )
    k = np.nonzero(d.training_single_site[d.alloc_workload])[0]
    choice_col = ctx.site_choice_column[d.alloc_workload[k], d.pool_site[d.alloc_pool[k]]]
    n = len(k)
    ctx.builder.add_constraints(
        "single_site_link",
        ("workload", "pool", "hour"),
        (d.alloc_workload[k], d.alloc_pool[k], d.alloc_hour[k]),
        rows=np.concatenate([np.arange(n), np.arange(n)]),
        cols=np.concatenate([ctx.blocks.start + k, choice_col]),
        vals=np.concatenate([np.ones(n), -d.alloc_max_blocks[k].astype(float)]),
        lower=-np.inf,
        upper=0.0,
    )


def define_gang_once(ctx: _Context) -> None:
    """gang_once[workload]: sum_{p,s} gang_start + gang_skipped (+ gang_slack) = 1.

    A hard gang run has no ``gang_skipped``: it must start exactly once.
    """
    d = ctx.data
    (w,) = np.nonzero(d.workload_is_gang)
    row_of = np.full(len(d.workload_ids), -1, dtype=np.int64)
    row_of[w] = np.arange(len(w))
    fam = ctx.gang_start
    row_parts, col_parts = [row_of[d.gang_workload]], [fam.start + np.arange(fam.size)]
    for name in ("gang_skipped", "gang_slack"):
        other = ctx.builder.model.variables.get(name)
        if other is not None and other.size:
            row_parts.append(row_of[other.coords[0]])
            col_parts.append(other.start + np.arange(other.size))
    cols = np.concatenate(col_parts)
    ctx.builder.add_constraints(
        "gang_once", ("workload",), (w,),
        rows=np.concatenate(row_parts), cols=cols, vals=np.ones(len(cols)), lower=1.0, upper=1.0,
    )


def gang_cumulatives(data: ModelData, model: LinearModel) -> list[Cumulative]:
    """Each pool a gang run may use, as one resource over the hours any such run could span:
    its hourly allocations (one unit per block) and its gang starts (their blocks over their
    span), within the pool's available blocks (reserved: ``reserved_blocks``)."""
    if not len(data.gang_workload):
        return []
    blocks, starts = model.variables["blocks"], model.variables["gang_start"]
    reserved = model.variables["reserved_blocks"]
    out = []
    for p in np.unique(data.gang_pool):
        options = np.nonzero(data.gang_pool == p)[0]
        span_hours = np.unique(data.gang_spans(options)[1])
        k = np.nonzero((data.alloc_pool == p) & np.isin(data.alloc_hour, span_hours))[0]
        (w_of,), choice = _group(data.gang_workload[options])
        per_run = [options[choice == c] for c in range(len(w_of))]  # one interval choice per gang run
        first = [run[0] for run in per_run]
        family = "reserved_capacity" if data.pool_reserved[p] else "pool_capacity"
        capacity_column = -1
        if data.pool_reserved[p]:
            capacity_column = int(reserved.start + np.nonzero(reserved.coords[0] == p)[0][0])
        out.append(
            Cumulative(
                label=f"{family}[{data.pool_ids[p]}]",
                hourly_hour=data.alloc_hour[k],
                hourly_column=blocks.start + k,
                hourly_coefficient=np.ones(len(k)),
                interval_columns=tuple(starts.start + run for run in per_run),
                interval_starts=tuple(data.gang_start[run] for run in per_run),
                interval_duration=data.gang_duration[first],
                interval_demand=data.gang_blocks[first].astype(float),
                capacity=(
                    np.full(data.hours, float(data.pool_available_blocks[p, 0]))
                    if data.pool_reserved[p]
                    else data.pool_available_blocks[p].astype(float)
                ),
                capacity_column=capacity_column,
            )
        )
    return out


def build_model(
    data: ModelData, *, elastic: bool = False, fixed_reserved_blocks: dict[int, int] | None = None
) -> LinearModel:
    """The chipmix MILP.  ``elastic=True`` builds the diagnostic model: hard demand gets
    slack and the objective is the total slack alone (see :mod:`optimizer.diagnose`).
    ``fixed_reserved_blocks`` (pool index -> blocks) holds reservations already bought."""
    ids = {"workload": data.workload_ids, "pool": data.pool_ids, "site": data.site_ids, "chip": data.chip_ids}
    ctx = _Context(data=data, builder=ModelBuilder(ids), elastic=elastic, fixed_reserved_blocks=fixed_reserved_blocks)

    define_allocation_variables(ctx)
    define_reservation_variables(ctx)
    define_unmet_variables(ctx)
    define_shortfall_variables(ctx)
    define_gang_variables(ctx)
    define_site_choice_variables(ctx)
    if elastic:
        define_elastic_variables(ctx)

    define_pool_capacity(ctx)
    define_reserved_capacity(ctx)
    define_site_power(ctx)
    define_inference_demand(ctx)
    define_training_work(ctx)
    define_training_max_chips(ctx)
    define_single_site(ctx)
    define_gang_once(ctx)

    model = ctx.builder.build()
    model.cumulatives = gang_cumulatives(data, model)
    if elastic:
        # Phase-1 objective: find the least slack, whatever it costs.
        slack = np.zeros(model.n_cols, dtype=bool)
        for name in ("demand_slack", "work_slack", "gang_slack"):
            slack[model.variables[name].slice] = True
        model.col_cost = np.where(slack, model.col_cost, 0.0)
    return model
