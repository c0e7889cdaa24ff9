"""Priced carbon: ``grid_energy[site,hour]``: grid MWh >= facility MWh - renewable MWh.

Only where carbon has a price (``carbon_usd_per_t`` and the site's ``grid_carbon_kg_per_mwh`` in
the hour): ``grid_mwh`` is then the slack of that row, at intensity x price per MWh (the cost
term ``carbon``).  A plan's tonnes of CO2 are reported whether priced or not (the accounting
recomputes them from the plan's energy); certificates do not lower them (location-based).
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    POOL_BLOCKS, RENEWABLE_MWH, BuildContext, ConstraintFamily, CostTerm, Rows, Variable, row_index, site_max_mwh,
    site_mwh_terms,
)

CARBON = CostTerm("carbon", "tonnes of CO2 from grid energy x carbon_usd_per_t")

GRID_ENERGY = Rows(
    "grid_energy", ("site", "hour"), ">=",
    "grid_mwh + renewable_mwh - facility MWh the site draws in the hour >= 0",
)
GRID = Variable("grid_mwh", ("site", "hour"), integer=False, cost=(CARBON,), covered_by=GRID_ENERGY.name,
                doc="grid energy the site draws in the hour, MWh, where carbon is priced")


class GridCarbon(ConstraintFamily):
    name = "grid_carbon"
    doc = "grid energy where carbon is priced, at intensity x carbon_usd_per_t"
    variables = (GRID,)
    rows = (GRID_ENERGY,)
    cost_terms = (CARBON,)

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        price = d.energy.site_carbon_usd_per_mwh
        site, hour = np.nonzero(price > 0)
        # Never more than the site could draw (every usable block in use, within its cap).
        upper = site_max_mwh(d)[site, hour]
        ctx.add_variables(GRID, (site, hour), lower=0.0, upper=upper, cost=price[site, hour],
                          cost_terms={CARBON: price[site, hour]})

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        fam = ctx.block(GRID)
        site, hour = fam.coords
        row_of = row_index((len(d.site_ids), d.hours), (site, hour))
        d_site, d_hour, d_column, d_mwh = site_mwh_terms(d, ctx.terms(POOL_BLOCKS))
        renewable = ctx.terms(RENEWABLE_MWH)
        drawn = row_of[d_site, d_hour] >= 0
        used = row_of[renewable.coords] >= 0
        ctx.add_rows(
            GRID_ENERGY, (site, hour),
            rows_of=np.concatenate([np.arange(fam.size), row_of[d_site[drawn], d_hour[drawn]],
                                    row_of[renewable.coords][used]]),
            cols=np.concatenate([fam.start + np.arange(fam.size), d_column[drawn], renewable.column[used]]),
            vals=np.concatenate([np.ones(fam.size), -d_mwh[drawn], renewable.coefficient[used]]),
            lower=0.0, upper=np.inf,
        )


FAMILY = GridCarbon()
