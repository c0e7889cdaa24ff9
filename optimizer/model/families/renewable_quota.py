"""Renewable energy and quotas: ``renewable_use[site,hour]`` and ``renewable_quota[quota]``.

A site's facility energy in an hour splits into renewable (up to its ``renewable_mw`` supply,
priced at ``renewable_usd_per_mwh`` in place of the grid price) and grid energy.  Certificates
(``rec_usd_per_mwh``) count grid energy as renewable toward the site's quota; together with the
renewable energy used they cannot exceed what the site draws in the hour.  A quota asks that
renewable energy used plus certificates reach ``share`` of its sites' facility energy over the
horizon: one row over every hour, so it couples hours.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    ELASTIC_SLACK_COST, ENERGY, POOL_BLOCKS, RENEWABLE_MWH, BuildContext, ConstraintFamily, CostTerm, Rows,
    ShadowPrice, Shortfall, Variable, binding, group, row_index, row_worth, site_draw_kw, site_max_mwh, site_mwh_terms,
)
from optimizer.model.families.inference_demand import SLACK_TOLERANCE
from optimizer.units import hour_ranges

CERTIFICATES = CostTerm("certificates", "renewable energy certificates bought toward a quota, at rec_usd_per_mwh")

RENEWABLE_USE = Rows(
    "renewable_use", ("site", "hour"), "<=",
    "renewable_mwh + certificates_mwh <= facility MWh the site draws in the hour",
)
RENEWABLE_QUOTA = Rows(
    "renewable_quota", ("quota",), ">=",
    "sum over its sites and hours of renewable_mwh + certificates_mwh - share x facility MWh >= 0",
    cpsat="its renewable energy and certificates are continuous in two rows each (they cannot be put on a "
          "grid exactly)",
)
RENEWABLE = Variable(
    "renewable_mwh", ("site", "hour"), integer=False, decision=True, cost=(ENERGY,),
    doc="renewable energy the site uses in the hour, MWh (at most its supply), priced at renewable_usd_per_mwh "
        "in place of the grid price",
)
CERTIFICATE = Variable(
    "certificates_mwh", ("site", "hour"), integer=False, decision=True, cost=(CERTIFICATES,),
    doc="grid energy of the site in the hour counted as renewable by certificates, MWh",
)
QUOTA_SLACK = Variable("quota_slack", ("quota",), integer=False, hourly=False, covered_by=RENEWABLE_QUOTA.name,
                       doc="renewable MWh a quota lacks (diagnostic model only)")


def _split_columns(d):
    """(site, hour) of the renewable columns and of the certificate columns."""
    e = d.energy
    site, hour = np.nonzero(e.site_renewable_mwh > 0)
    quota_rec = np.nonzero((e.site_quota >= 0) & np.isfinite(e.site_rec_usd_per_mwh))[0]
    cert_site = np.repeat(quota_rec, d.hours)
    cert_hour = np.tile(np.arange(d.hours), len(quota_rec))
    return (site, hour), (cert_site, cert_hour)


class RenewableQuota(ConstraintFamily):
    name = "renewable_quota"
    doc = "renewable energy used and certificates within what each site draws; each quota's share of its sites' energy"
    variables = (RENEWABLE, CERTIFICATE)
    elastic = (QUOTA_SLACK,)
    rows = (RENEWABLE_USE, RENEWABLE_QUOTA)
    cost_terms = (CERTIFICATES,)
    couples_hours = "a quota counts its sites' energy over every hour"

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        e = d.energy
        (site, hour), (cert_site, cert_hour) = _split_columns(d)
        # The grid price is already in the blocks' cost: a renewable MWh replaces it.
        energy = e.site_renewable_usd_per_mwh[site] - d.site_energy_usd_per_kwh[site, hour] * 1000.0
        most = site_max_mwh(d)
        upper = np.minimum(e.site_renewable_mwh[site, hour], most[site, hour])
        fam = ctx.add_variables(RENEWABLE, (site, hour), lower=0.0, upper=upper, cost=energy,
                                cost_terms={ENERGY: energy})
        ctx.contribute(RENEWABLE_MWH, (site, hour), fam.start + np.arange(fam.size), np.ones(fam.size))
        price = e.site_rec_usd_per_mwh[cert_site]
        ctx.add_variables(CERTIFICATE, (cert_site, cert_hour), lower=0.0, upper=most[cert_site, cert_hour],
                          cost=price, cost_terms={CERTIFICATES: price})

    def add_elastic(self, ctx: BuildContext) -> None:
        q = np.arange(len(ctx.data.energy.quota_ids))
        ctx.add_variables(QUOTA_SLACK, (q,), lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST, elastic=True)

    def _energy_columns(self, ctx: BuildContext):
        """(site, hour, column) of every renewable and certificate column."""
        parts = [ctx.block(var) for var in (RENEWABLE, CERTIFICATE)]
        parts = [fam for fam in parts if fam is not None and fam.size]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return (np.concatenate([fam.coords[0] for fam in parts]), np.concatenate([fam.coords[1] for fam in parts]),
                np.concatenate([fam.start + np.arange(fam.size) for fam in parts]))

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        e = d.energy
        site, hour, column = self._energy_columns(ctx)
        d_site, d_hour, d_column, d_mwh = site_mwh_terms(d, ctx.terms(POOL_BLOCKS))
        # renewable_use: every site-hour with a renewable or certificate column.
        (s, t), _ = group(site, hour)
        row_of = row_index((len(d.site_ids), d.hours), (s, t))
        draws = row_of[d_site, d_hour] >= 0
        ctx.add_rows(
            RENEWABLE_USE, (s, t), rows_of=np.concatenate([row_of[site, hour], row_of[d_site[draws], d_hour[draws]]]),
            cols=np.concatenate([column, d_column[draws]]),
            vals=np.concatenate([np.ones(len(column)), -d_mwh[draws]]), lower=-np.inf, upper=0.0,
        )
        # renewable_quota: one row per quota over its sites and every hour.
        q = np.arange(len(e.quota_ids))
        quota = e.site_quota
        counted = quota[site] >= 0
        drawn = quota[d_site] >= 0
        rows = [quota[site[counted]], quota[d_site[drawn]]]
        cols = [column[counted], d_column[drawn]]
        vals = [np.ones(int(counted.sum())), -e.quota_share[quota[d_site[drawn]]] * d_mwh[drawn]]
        slack = ctx.block(QUOTA_SLACK)
        if slack is not None and slack.size:
            rows.append(slack.coords[0])
            cols.append(slack.start + np.arange(slack.size))
            vals.append(np.ones(slack.size))
        ctx.add_rows(RENEWABLE_QUOTA, (q,), rows_of=np.concatenate(rows), cols=np.concatenate(cols),
                     vals=np.concatenate(vals), lower=0.0, upper=np.inf)

    def shortfalls(self, data, model, values):
        fam = model.variables.get(QUOTA_SLACK.name)
        if fam is None:
            return []
        e = data.energy
        drawn = site_draw_kw(data, model, values) / 1000.0
        renewable = np.zeros_like(drawn)
        for var in (RENEWABLE, CERTIFICATE):
            block = model.variables.get(var.name)
            if block is not None and block.size:
                np.add.at(renewable, block.coords, values[block.slice])
        out = []
        for k in np.nonzero(values[fam.slice] > SLACK_TOLERANCE)[0]:
            q = int(fam.coords[0][k])
            sites = np.nonzero(e.site_quota == q)[0]
            hours = sorted(np.nonzero((drawn[sites] > renewable[sites] + 1e-9).any(axis=0))[0].tolist())
            path = f"renewable_quotas[{q}]({e.quota_ids[q]}).share"
            names = ", ".join(data.site_ids[s] for s in sites)
            amount = float(values[fam.start + k])
            when = hour_ranges(hours)
            out.append(Shortfall(
                e.quota_ids[q], "quota", hours, amount, path,
                f"{path}: the quota's sites ({names}) cannot use or certify {e.quota_share[q]:g} of their energy "
                f"beside the hard demand: {amount:.6g} MWh short (the least-short plan draws grid energy in "
                f"hour{'s' if len(hours) != 1 else ''} {when or 'none'}); add renewable_mw or rec_usd_per_mwh, "
                "or lower the share",
            ))
        return out

    def full(self, data, model, values, pool_hours):
        """A quota whose row is tight is full where demand at its sites falls short."""
        fam = model.constraints.get(RENEWABLE_QUOTA.name)
        if fam is None or not fam.size:
            return []
        activity = model.matrix[fam.start:fam.start + fam.size] @ values
        out = []
        for k in np.nonzero(activity <= 1e-6)[0]:
            q = int(fam.coords[0][k])
            sites = set(np.nonzero(data.energy.site_quota == q)[0].tolist())
            hours = {t for p, t in pool_hours if int(data.pool_site[p]) in sites}
            if hours:
                out.append(binding("site", min(sites), self.name, data.energy.quota_ids[q], hours))
        return out

    def shadow_prices(self, data, model, worth):
        """USD per MWh: one more MWh the quota asks to be renewable."""
        fam, value = row_worth(model, RENEWABLE_QUOTA.name, worth)
        if fam is None:
            return []
        return [ShadowPrice(self.name, data.energy.quota_ids[q], None, float(v), "USD/MWh")
                for q, v in zip(fam.coords[0], value)]


FAMILY = RenewableQuota()
