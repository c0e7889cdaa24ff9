"""``site_power[site,hour]``: facility power of the chips in use at a capped site <= its cap."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    POOL_BLOCKS, BuildContext, ConstraintFamily, Rows, ShadowPrice, binding, group, row_worth, site_draw_kw,
    site_max_draw_kw,
)

SITE_POWER = Rows(
    "site_power", ("site", "hour"), "<=",
    "sum of blocks in use x block x power_kw x pue <= 1000 x power_cap_mw",
)


class SitePower(ConstraintFamily):
    name = "site_power"
    doc = SITE_POWER.doc
    rows = (SITE_POWER,)

    def add_rows(self, ctx: BuildContext) -> None:
        """Only capped sites, and only hours where the site's pools at full availability could
        draw more than the cap (other rows can never bind)."""
        d = ctx.data
        kw_per_block = d.pool_block * d.pool_chip_power_kw
        terms = ctx.terms(POOL_BLOCKS)
        pool, hour = terms.coords
        site = d.pool_site[pool]
        cap_kw = d.site_power_cap_kw[site, hour]
        binding_ = np.isfinite(cap_kw) & (site_max_draw_kw(d)[site, hour] > cap_kw * (1 + 1e-12))
        k = np.nonzero(binding_)[0]
        (s, t), row = group(site[k], hour[k])
        ctx.add_rows(
            SITE_POWER, (s, t), rows_of=row, cols=terms.column[k],
            vals=terms.coefficient[k] * kw_per_block[pool[k]], lower=-np.inf, upper=d.site_power_cap_kw[s, t],
        )

    def full(self, data, model, values, pool_hours):
        """A capped site is full in an hour when one more block of a pool short demand could use
        would not fit under its cap."""
        draw = site_draw_kw(data, model, values)
        kw_per_block = data.pool_block * data.pool_chip_power_kw
        hours_of: dict[int, set[int]] = {}
        for p, t in pool_hours:
            s = int(data.pool_site[p])
            cap = data.site_power_cap_kw[s, t]
            if np.isfinite(cap) and draw[s, t] + kw_per_block[p] > cap * (1 + 1e-9):
                hours_of.setdefault(s, set()).add(t)
        return [binding("site", s, self.name, data.site_ids[s], hours) for s, hours in sorted(hours_of.items())]

    def shadow_prices(self, data, model, worth):
        """USD per MW of cap for one hour (rows are in kW)."""
        fam, value = row_worth(model, SITE_POWER.name, worth)
        if fam is None:
            return []
        return [ShadowPrice(self.name, data.site_ids[s], int(t), float(v) * 1000.0, "USD/MWh")
                for s, t, v in zip(*fam.coords, value)]


FAMILY = SitePower()
