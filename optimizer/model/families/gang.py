"""Gang-scheduled training runs: exactly ``gang_chips`` chips of one pool for D consecutive hours
inside the window, or not at all.

``gang_start[workload,pool,hour]`` (1: the run starts there; its chips count in every hour of its
span), ``gang_skipped[workload]`` (1: a priced run does not run and pays its whole work) and
``gang_once[workload]``: starts + skipped = 1.  In the diagnostic model a hard run gets
``gang_slack[workload]`` instead, weighted by its work so that it weighs the same per EFLOP as
``work_slack``.  The eligible (run, pool, start) options are listed in ModelData (``gang_*``).
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.allocation import BLOCKS
from optimizer.model.families.base import (
    COMPUTE_EFLOP, ELASTIC_SLACK_COST, ENERGY, PENALTY, POOL_BLOCKS, USAGE, BuildContext, ConstraintFamily, Rows, Shortfall,
    Variable, group, row_index,
)
from optimizer.model.families.reserved_capacity import RESERVED_BLOCKS, RESERVED_CAPACITY
from optimizer.model.families.pool_capacity import POOL_CAPACITY
from optimizer.model.families.single_site import pick_one
from optimizer.model.linear import Cumulative
from optimizer.units import EFLOP_PER_TFLOPS_HOUR

GANG_START = Variable("gang_start", ("workload", "pool", "hour"), integer=True, hourly=False, cost=(USAGE, ENERGY),
                      doc="1 if the gang run starts on that pool in that hour (its chips count over its span)")
GANG_SKIPPED = Variable("gang_skipped", ("workload",), integer=True, hourly=False, cost=(PENALTY,),
                        doc="1 if a priced gang run does not run at all (pays its whole work)")
GANG_SLACK = Variable("gang_slack", ("workload",), integer=True, hourly=False,
                      doc="1 if a hard gang run cannot run (diagnostic model only)")
GANG_ONCE = Rows("gang_once", ("workload",), "=", "sum over pools and starts of gang_start + gang_skipped = 1")


class Gang(ConstraintFamily):
    name = "gang"
    doc = "a gang run holds gang_chips chips of one pool for D consecutive hours, or does not run"
    variables = (GANG_START, GANG_SKIPPED)
    elastic = (GANG_SLACK,)
    rows = (GANG_ONCE,)
    couples_hours = "a gang start holds its chips in every hour of its span"

    def add_variables(self, ctx: BuildContext) -> None:
        """A start's cost is its chips' price and energy over every hour of its span."""
        d = ctx.data
        option, hour = d.gang_spans(np.arange(len(d.gang_workload)))
        pool = d.gang_pool[option]
        usage = np.where(d.pool_reserved[pool], 0.0, d.pool_usd_per_chip_hour[pool])
        energy = d.pool_chip_power_kw[pool] * d.site_energy_usd_per_kwh[d.pool_site[pool], hour]
        chips = d.gang_chips[d.gang_workload[option]]
        cost = np.zeros(len(d.gang_workload))
        np.add.at(cost, option, chips * (usage + energy))
        usage_usd, energy_usd = np.zeros(len(d.gang_workload)), np.zeros(len(d.gang_workload))
        np.add.at(usage_usd, option, chips * usage)
        np.add.at(energy_usd, option, chips * energy)
        fam = ctx.add_variables(GANG_START, (d.gang_workload, d.gang_pool, d.gang_start), lower=0.0, upper=1.0,
                                cost=cost, cost_terms={USAGE: usage_usd, ENERGY: energy_usd})
        ctx.contribute(POOL_BLOCKS, (pool, hour), fam.start + option, d.gang_blocks[option].astype(float))
        options = np.arange(len(d.gang_workload))
        ctx.contribute(COMPUTE_EFLOP, (d.gang_workload,), fam.start + options,
                       d.gang_chips[d.gang_workload] * d.gang_rate_tflops * d.gang_duration * EFLOP_PER_TFLOPS_HOUR)
        (soft,) = np.nonzero(d.workload_is_gang & ~np.isnan(d.short_usd_per_eflop))
        penalty = d.short_usd_per_eflop[soft] * d.training_work_eflop[soft]
        ctx.add_variables(GANG_SKIPPED, (soft,), lower=0.0, upper=1.0, cost=penalty, cost_terms={PENALTY: penalty})

    def add_elastic(self, ctx: BuildContext) -> None:
        d = ctx.data
        (hard,) = np.nonzero(d.workload_is_gang & d.hard_training)
        ctx.add_variables(GANG_SLACK, (hard,), lower=0.0, upper=1.0,
                          cost=ELASTIC_SLACK_COST * d.training_work_eflop[hard], elastic=True)

    def add_rows(self, ctx: BuildContext) -> None:
        """A hard gang run has no ``gang_skipped``: it must start exactly once."""
        d = ctx.data
        (w,) = np.nonzero(d.workload_is_gang)
        row_of = row_index((len(d.workload_ids),), (w,))
        rows, cols = [], []
        for var in (GANG_START, GANG_SKIPPED, GANG_SLACK):
            fam = ctx.block(var)
            if fam is not None and fam.size:
                rows.append(row_of[fam.coords[0]])
                cols.append(fam.start + np.arange(fam.size))
        rows_of = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        cols_ = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        ctx.add_rows(GANG_ONCE, (w,), rows_of=rows_of, cols=cols_, vals=np.ones(len(cols_)), lower=1.0, upper=1.0)

    def cumulatives(self, data, model) -> list[Cumulative]:
        """Each pool a gang run may use, as one resource over the hours any such run could span:
        its hourly allocations (one unit per block) and its gang starts (their blocks over their
        span), within the pool's available blocks (reserved: ``reserved_blocks``)."""
        if not len(data.gang_workload):
            return []
        blocks, starts = model.variables[BLOCKS.name], model.variables[GANG_START.name]
        reserved = model.variables[RESERVED_BLOCKS.name]
        out = []
        for p in np.unique(data.gang_pool):
            options = np.nonzero(data.gang_pool == p)[0]
            span_hours = np.unique(data.gang_spans(options)[1])
            k = np.nonzero((data.alloc_pool == p) & np.isin(data.alloc_hour, span_hours))[0]
            (w_of,), choice = group(data.gang_workload[options])
            per_run = [options[choice == c] for c in range(len(w_of))]  # one interval choice per gang run
            first = [run[0] for run in per_run]
            family = RESERVED_CAPACITY.name if data.pool_reserved[p] else POOL_CAPACITY.name
            capacity_column = -1
            if data.pool_reserved[p]:
                capacity_column = int(reserved.start + np.nonzero(reserved.coords[0] == p)[0][0])
            out.append(Cumulative(
                label=f"{family}[{data.pool_ids[p]}]",
                hourly_hour=data.alloc_hour[k],
                hourly_column=blocks.start + k,
                hourly_coefficient=np.ones(len(k)),
                interval_columns=tuple(starts.start + run for run in per_run),
                interval_starts=tuple(data.gang_start[run] for run in per_run),
                interval_duration=data.gang_duration[first],
                interval_demand=data.gang_blocks[first].astype(float),
                capacity=(np.full(data.hours, float(data.pool_available_blocks[p, 0])) if data.pool_reserved[p]
                          else data.pool_available_blocks[p].astype(float)),
                capacity_column=capacity_column,
            ))
        return out

    def fix_from_lp(self, model, lp_values, lower, upper) -> None:
        """Each gang run at its most chosen start; a priced run the LP runs less than half is skipped."""
        starts, skipped = model.variables.get(GANG_START.name), model.variables.get(GANG_SKIPPED.name)
        skip_column = {} if skipped is None else {int(w): skipped.start + k for k, w in enumerate(skipped.coords[0])}
        if starts is not None:
            for w in np.unique(starts.coords[0]):
                run = int(w) not in skip_column or lp_values[starts.slice][starts.coords[0] == w].sum() >= 0.5
                pick_one(starts, w, lp_values, lower, upper, run)
                if int(w) in skip_column:
                    lower[skip_column[int(w)]] = upper[skip_column[int(w)]] = 0.0 if run else 1.0
        for w, column in skip_column.items():  # a priced gang run with no start at all
            if starts is None or not np.any(starts.coords[0] == w):
                lower[column] = upper[column] = 1.0

    def shortfalls(self, data, model, values):
        fam = model.variables[GANG_SLACK.name]
        slack = values[fam.slice]
        out = []
        for k in np.nonzero(slack > 0.5)[0]:
            w = int(fam.coords[0][k])
            path = f"workloads[{w}]({data.workload_ids[w]}).gang_chips"
            work = float(data.training_work_eflop[w])
            out.append(Shortfall(
                data.workload_ids[w], "training", [], work, path,
                f"{path}: hard gang run '{data.workload_ids[w]}' finds no pool and span for its chips "
                f"alongside the other hard demand ({work:.6g} EFLOP not run)",
                unserved_eflop=work,
            ))
        return out


FAMILY = Gang()
