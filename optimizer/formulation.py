"""The chipmix MILP, built vectorised from :class:`~optimizer.data.ModelData`.

A flat list of ``define_<family>()`` calls (see :func:`build_model`), each adding
one named variable or constraint family over index arrays.  The names here are
the names in docs/formulation.md, in LP files and in infeasibility reports.

Allocation variables count *blocks* (``blocks[w,p,t]``); chips are
``block_p * blocks``, so "chips in multiples of the block" is plain integrality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.data import EFLOP_PER_TFLOPS_HOUR, ModelData
from optimizer.model import Family, LinearModel, ModelBuilder

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
    pools = np.unique(np.concatenate([d.alloc_pool[d.pool_reserved[d.alloc_pool]], np.array(sorted(fixed), dtype=np.int64)]))
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
    """short[workload]: EFLOP of soft training work not delivered by the deadline (priced)."""
    d = ctx.data
    (w,) = np.nonzero(~d.workload_is_inference & ~np.isnan(d.short_usd_per_eflop))
    ctx.builder.add_variables(
        "short",
        ("workload",),
        (w,),
        lower=0.0,
        upper=d.training_work_eflop[w],
        cost=d.short_usd_per_eflop[w],
        integer=False,
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
    (w,) = np.nonzero(d.hard_training)
    ctx.builder.add_variables(
        "work_slack", ("workload",), (w,), lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST, integer=False
    )


# -- constraints -------------------------------------------------------------------------------


def define_pool_capacity(ctx: _Context) -> None:
    """pool_capacity[pool,hour]: sum_w blocks <= available blocks (non-reserved pools).

    Rows with a single eligible workload are implied by that variable's upper
    bound and left out.
    """
    d = ctx.data
    mask = ~d.pool_reserved[d.alloc_pool]
    k = np.nonzero(mask)[0]
    (p, t), row = _group(d.alloc_pool[k], d.alloc_hour[k])
    keep, in_kept, rows = _drop_single_member_rows(row, len(p))
    ctx.builder.add_constraints(
        "pool_capacity",
        ("pool", "hour"),
        (p[keep], t[keep]),
        rows=rows,
        cols=ctx.blocks.start + k[in_kept],
        vals=np.ones(int(in_kept.sum())),
        lower=-np.inf,
        upper=d.pool_available_blocks[p[keep], t[keep]].astype(float),
    )


def define_reserved_capacity(ctx: _Context) -> None:
    """reserved_capacity[pool,hour]: sum_w blocks - reserved_blocks <= 0 (reserved pools)."""
    d = ctx.data
    k = np.nonzero(d.pool_reserved[d.alloc_pool])[0]
    (p, t), row = _group(d.alloc_pool[k], d.alloc_hour[k])
    n_rows = len(p)
    ctx.builder.add_constraints(
        "reserved_capacity",
        ("pool", "hour"),
        (p, t),
        rows=np.concatenate([row, np.arange(n_rows)]),
        cols=np.concatenate([ctx.blocks.start + k, ctx.reserved_column_of_pool[p]]),
        vals=np.concatenate([np.ones(len(k)), -np.ones(n_rows)]),
        lower=-np.inf,
        upper=0.0,
    )


def define_site_power(ctx: _Context) -> None:
    """site_power[site,hour]: sum blocks * block * power_kw * pue <= 1000 * power_cap_mw.

    Only capped sites, and only hours where the site's pools at full
    availability could draw more than the cap (other rows can never bind).
    """
    d = ctx.data
    site = d.pool_site[d.alloc_pool]
    cap_kw = d.site_power_cap_kw[site, d.alloc_hour]
    capped = np.isfinite(cap_kw)
    kw_per_block = d.pool_block * d.pool_chip_power_kw
    # Most each site could draw in each hour: every usable block of every pool in use.
    max_draw_kw = np.zeros_like(d.site_power_cap_kw)
    np.add.at(max_draw_kw, d.pool_site, d.pool_available_blocks * kw_per_block[:, None])
    binding = capped & (max_draw_kw[site, d.alloc_hour] > cap_kw * (1 + 1e-12))
    k = np.nonzero(binding)[0]
    (s, t), row = _group(site[k], d.alloc_hour[k])
    ctx.builder.add_constraints(
        "site_power",
        ("site", "hour"),
        (s, t),
        rows=row,
        cols=ctx.blocks.start + k,
        vals=kw_per_block[d.alloc_pool[k]],
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
    """training_work[workload]: sum_{p,t} blocks * block * r * 0.0036 + short >= work_eflop."""
    d = ctx.data
    (w,) = np.nonzero(~d.workload_is_inference)
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

    model = ctx.builder.build()
    if elastic:
        # Phase-1 objective: find the least slack, whatever it costs.
        slack = np.zeros(model.n_cols, dtype=bool)
        for name in ("demand_slack", "work_slack"):
            slack[model.variables[name].slice] = True
        model.col_cost = np.where(slack, model.col_cost, 0.0)
    return model
