"""A plan's energy: facility energy per site and hour, its renewable / grid split, certificates,
tonnes of CO2 and the quotas' shares (``energy.csv`` and the summary's ``energy`` block).

A solved plan's split is the solver's (``renewable_mwh`` and ``certificates_mwh`` are decisions);
a plan without one (greedy's) gets :func:`cheapest_split`, the least-cost split of its energy,
which is exact: with the chips fixed, each quota is a fractional knapsack over its site-hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.model.data import ModelData

ENERGY_COLUMNS = ["site", "hour", "facility_mwh", "renewable_mwh", "certificates_mwh", "grid_mwh", "carbon_t"]


@dataclass(frozen=True)
class EnergySplit:
    """[site, hour] MWh of renewable energy used and of grid energy counted by certificates."""

    renewable_mwh: np.ndarray
    certificates_mwh: np.ndarray


def facility_mwh(data: ModelData, pool: np.ndarray, hour: np.ndarray, chips: np.ndarray) -> np.ndarray:
    """[site, hour] facility energy of chips in use (chips x power x PUE; an hour at P kW is P/1000 MWh)."""
    out = np.zeros((len(data.site_ids), data.hours))
    np.add.at(out, (data.pool_site[pool], hour), chips * data.pool_chip_power_kw[pool] / 1000.0)
    return out


def _grid_saving_usd_per_mwh(data: ModelData) -> np.ndarray:
    """[site, hour] what one MWh of renewable energy costs more than the grid's (negative: saves)."""
    e = data.energy
    return (e.site_renewable_usd_per_mwh[:, None] - data.site_energy_usd_per_kwh * 1000.0
            - e.site_carbon_usd_per_mwh)


def cheapest_split(data: ModelData, facility: np.ndarray) -> EnergySplit:
    """The least-cost split of ``facility`` [site, hour] MWh: renewable energy wherever it is
    cheaper than the grid (carbon included), then, for each quota still short, the cheapest of the
    remaining renewable energy and the certificates, MWh by MWh (ties: file order of sites, then
    hours).  A quota that cannot be met stays short (the checker says so)."""
    e = data.energy
    supply = np.minimum(e.site_renewable_mwh, facility)
    extra = _grid_saving_usd_per_mwh(data)
    renewable = np.where(extra < 0, supply, 0.0)
    certificates = np.zeros_like(facility)
    for q, share in enumerate(e.quota_share):
        sites = np.nonzero(e.site_quota == q)[0]
        need = share * facility[sites].sum() - renewable[sites].sum()
        if need <= 0:
            continue
        options = []  # (usd per MWh, site, hour, kind, MWh)
        rec = e.site_rec_usd_per_mwh
        for s in sites:
            for t in range(data.hours):
                room_renewable = supply[s, t] - renewable[s, t]
                if room_renewable > 0:
                    options.append((float(extra[s, t]), int(s), t, 0, float(room_renewable)))
                if np.isfinite(rec[s]) and facility[s, t] > 0:
                    options.append((float(rec[s]), int(s), t, 1, float(facility[s, t])))
        for price, s, t, kind, mwh in sorted(options):
            if need <= 0:
                break
            room = facility[s, t] - renewable[s, t] - certificates[s, t]  # renewable + certificates <= facility
            take = min(mwh, room, need) if kind == 1 else min(mwh, supply[s, t] - renewable[s, t], room, need)
            if take <= 0:
                continue
            (certificates if kind == 1 else renewable)[s, t] += take
            need -= take
    return EnergySplit(renewable, certificates)


def energy_table(data: ModelData, facility: np.ndarray, split: EnergySplit) -> pd.DataFrame:
    """energy.csv: one row per site and hour the plan draws energy in."""
    site, hour = np.nonzero(facility > 0)
    renewable = np.minimum(split.renewable_mwh[site, hour], facility[site, hour])
    grid = facility[site, hour] - renewable
    carbon_kg = data.energy.site_grid_carbon_kg_per_mwh[site, hour]
    return pd.DataFrame({
        "site": np.asarray(data.site_ids, dtype=object)[site], "hour": hour, "facility_mwh": facility[site, hour],
        "renewable_mwh": renewable, "certificates_mwh": split.certificates_mwh[site, hour], "grid_mwh": grid,
        "carbon_t": np.where(np.isnan(carbon_kg), np.nan, grid * np.nan_to_num(carbon_kg) / 1000.0),
    })


def energy_costs(data: ModelData, table: pd.DataFrame) -> dict[str, float]:
    """What the split changes in the cost breakdown: ``energy_delta`` (renewable energy at its
    price instead of the grid's, to add to the grid-priced energy of every chip), ``certificates``
    and ``carbon``."""
    e = data.energy
    site = pd.Index(data.site_ids).get_indexer(table["site"])
    hour = table["hour"].to_numpy(dtype=np.int64)
    renewable = table["renewable_mwh"].to_numpy(dtype=float)
    delta = renewable * (e.site_renewable_usd_per_mwh[site] - data.site_energy_usd_per_kwh[site, hour] * 1000.0)
    certificates = table["certificates_mwh"].to_numpy(dtype=float) * np.nan_to_num(e.site_rec_usd_per_mwh[site])
    carbon = np.nan_to_num(table["carbon_t"].to_numpy(dtype=float)) * 1000.0 * e.carbon_usd_per_kg
    return {"energy_delta": float(delta.sum()), "certificates": float(certificates.sum()), "carbon": float(carbon.sum())}


def energy_summary(data: ModelData, table: pd.DataFrame) -> dict:
    """The summary's ``energy`` block: totals, tonnes of CO2 per site (sites whose intensity is
    not stated are listed apart), and each quota's renewable share."""
    e = data.energy
    stated = ~np.isnan(e.site_grid_carbon_kg_per_mwh).all(axis=1)  # [site]: an intensity in some hour
    carbon = table.groupby("site", sort=False)["carbon_t"].sum()
    carbon_by_site = {site: float(carbon[site]) for site, known in zip(data.site_ids, stated)
                      if known and site in carbon.index}
    unstated = [site for site, known in zip(data.site_ids, stated) if not known]
    quotas = {}
    for q, quota_id in enumerate(e.quota_ids):
        sites = [data.site_ids[s] for s in np.nonzero(e.site_quota == q)[0]]
        part = table[table["site"].isin(sites)]
        drawn = float(part["facility_mwh"].sum())
        counted = float(part["renewable_mwh"].sum() + part["certificates_mwh"].sum())
        quotas[quota_id] = {"share": float(e.quota_share[q]), "facility_mwh": drawn, "renewable_mwh": counted,
                            "achieved_share": counted / drawn if drawn > 0 else None}
    return {
        "facility_mwh": float(table["facility_mwh"].sum()),
        "renewable_mwh": float(table["renewable_mwh"].sum()),
        "certificates_mwh": float(table["certificates_mwh"].sum()),
        "grid_mwh": float(table["grid_mwh"].sum()),
        "carbon_t": float(np.nansum(table["carbon_t"].to_numpy(dtype=float))),
        "carbon_t_by_site": carbon_by_site,
        "sites_without_carbon_intensity": unstated,
        "quotas": quotas,
    }


def split_from_values(data: ModelData, renewable: tuple, certificates: tuple) -> EnergySplit:
    """The split a solver chose: each is (site coords, hour coords, MWh) of its columns (never below 0)."""
    out = []
    for site, hour, mwh in (renewable, certificates):
        grid = np.zeros((len(data.site_ids), data.hours))
        np.add.at(grid, (np.asarray(site, dtype=np.int64), np.asarray(hour, dtype=np.int64)), np.maximum(mwh, 0.0))
        out.append(grid)
    return EnergySplit(*out)
