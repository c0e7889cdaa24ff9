"""Model data of the energy a site draws: renewable supply, grid carbon, certificates and the
renewable quotas, as index arrays (part of :class:`~optimizer.model.data.ModelData`; read by the
``renewable_quota`` family, the accounting and greedy; no solver imported here).

Units: energy in MWh (an hour at P MW is P MWh), prices per MWh, carbon in kg per MWh."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.input.schema import Instance
from optimizer.units import hourly_array


@dataclass(frozen=True)
class EnergyData:
    """Per site (file order) and per quota (file order)."""

    site_renewable_mwh: np.ndarray  # [site, hour] renewable supply the site may use (0: none)
    site_renewable_usd_per_mwh: np.ndarray  # [site]
    site_grid_carbon_kg_per_mwh: np.ndarray  # [site, hour], nan where not stated
    site_rec_usd_per_mwh: np.ndarray  # [site], nan where no certificates can be bought
    carbon_usd_per_kg: float  # 0 when carbon is not priced
    quota_ids: list[str]
    quota_share: np.ndarray  # [quota]
    site_quota: np.ndarray  # [site] -> quota index, -1 for a site in no quota

    @property
    def site_carbon_usd_per_mwh(self) -> np.ndarray:
        """[site, hour] the carbon price of one MWh of grid energy (0 where intensity is not stated)."""
        return np.nan_to_num(self.site_grid_carbon_kg_per_mwh) * self.carbon_usd_per_kg


def build_energy_data(instance: Instance) -> EnergyData:
    hours = instance.hours
    site_index = {site.id: s for s, site in enumerate(instance.sites)}
    site_quota = np.full(len(instance.sites), -1, dtype=np.int64)
    for q, quota in enumerate(instance.renewable_quotas):
        site_quota[[site_index[site_id] for site_id in quota.sites]] = q
    return EnergyData(
        site_renewable_mwh=np.vstack([hourly_array(s.renewable_mw, hours, 0.0) for s in instance.sites]),
        site_renewable_usd_per_mwh=np.array([s.renewable_usd_per_mwh for s in instance.sites], dtype=float),
        site_grid_carbon_kg_per_mwh=np.vstack([hourly_array(s.grid_carbon_kg_per_mwh, hours, np.nan)
                                               for s in instance.sites]),
        site_rec_usd_per_mwh=np.array([np.nan if s.rec_usd_per_mwh is None else s.rec_usd_per_mwh
                                       for s in instance.sites], dtype=float),
        carbon_usd_per_kg=(instance.carbon_usd_per_t or 0.0) / 1000.0,
        quota_ids=[quota.id for quota in instance.renewable_quotas],
        quota_share=np.array([quota.share for quota in instance.renewable_quotas], dtype=float),
        site_quota=site_quota,
    )
