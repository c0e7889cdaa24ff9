"""Allocations: ``blocks[workload,pool,hour]``, whole blocks of a pool given to a workload in an hour.

No rows of its own: its columns are the terms of the pool, power, demand, work and chip-count
rows of the other families (through the expressions of :mod:`.base`).  A gang run has no
allocations (see :mod:`.gang`).
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    COMPUTE_EFLOP, DELIVERED_EFLOP, ENERGY, POOL_BLOCKS, SERVED_PFLOPS, USAGE, VARIANT_PFLOPS, WORKLOAD_CHIPS, BuildContext, ConstraintFamily,
    Variable,
)
from optimizer.units import EFLOP_PER_TFLOPS_HOUR

BLOCKS = Variable(
    "blocks", ("workload", "pool", "hour"), integer=True, cost=(USAGE, ENERGY), dual_lp="relax_unbounded",
    doc="integer blocks of the pool given to the workload in the hour",
)


class Allocation(ConstraintFamily):
    name = "allocation"
    doc = "blocks of each eligible pool per workload and hour; chips = block x blocks"
    variables = (BLOCKS,)

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        pool = d.alloc_pool
        chip_power_kw = d.pool_chip_power_kw[pool]
        energy_usd_per_kwh = d.site_energy_usd_per_kwh[d.pool_site[pool], d.alloc_hour]
        usage_usd_per_chip_hour = np.where(d.pool_reserved[pool], 0.0, d.pool_usd_per_chip_hour[pool])
        block = d.pool_block[pool]
        # Reserved pools are paid through reserved_blocks: their allocations cost only energy.
        cost = block * (usage_usd_per_chip_hour + chip_power_kw * energy_usd_per_kwh)
        # Named by the variant where the chips run one (ids: model/build.py), so every name is unique.
        named = np.where(d.alloc_variant >= 0, len(d.workload_ids) + d.alloc_variant, d.alloc_workload)
        fam = ctx.add_variables(
            BLOCKS, (named, pool, d.alloc_hour), lower=0.0, upper=d.alloc_max_blocks.astype(float),
            cost=cost,
            cost_terms={USAGE: block * usage_usd_per_chip_hour, ENERGY: block * chip_power_kw * energy_usd_per_kwh},
        )
        columns = fam.start + np.arange(fam.size)
        ctx.contribute(POOL_BLOCKS, (pool, d.alloc_hour), columns, np.ones(fam.size))
        ctx.contribute(WORKLOAD_CHIPS, (d.alloc_workload, d.alloc_hour), columns, block.astype(float))
        inference = d.workload_is_inference[d.alloc_workload]
        routed = d.alloc_variant >= 0
        # A routed service's chips serve its variant; the routing family turns them into tokens.
        k = np.nonzero(inference & ~routed)[0]
        ctx.contribute(SERVED_PFLOPS, (d.alloc_workload[k], d.alloc_hour[k]), columns[k],
                       block[k] * d.alloc_rate_tflops[k] / 1000.0)
        k = np.nonzero(routed)[0]
        ctx.contribute(VARIANT_PFLOPS, (d.alloc_variant[k], d.alloc_hour[k]), columns[k],
                       block[k] * d.alloc_rate_tflops[k] / 1000.0)
        ctx.contribute(COMPUTE_EFLOP, (d.alloc_workload,), columns, block * d.alloc_rate_tflops * EFLOP_PER_TFLOPS_HOUR)
        k = np.nonzero(~inference)[0]
        ctx.contribute(DELIVERED_EFLOP, (d.alloc_workload[k],), columns[k],
                       block[k] * d.alloc_rate_tflops[k] * EFLOP_PER_TFLOPS_HOUR)


FAMILY = Allocation()
