"""``grid_energy[site,hour]``: each energy.csv row's tonnes of CO2 are its grid energy x the
site's intensity (empty where the site states none); priced at carbon_usd_per_t (the cost term
``carbon``)."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, at, close


def check(facts: Facts) -> None:
    price = facts.instance.carbon_usd_per_t or 0.0
    for (site_id, hour), (_, _, _, grid, carbon) in sorted(facts.energy.items()):
        intensity = facts.sites[site_id].grid_carbon_kg_per_mwh
        name = f"grid_energy[{site_id},{hour}]"
        if intensity is None:
            if carbon is not None:
                facts.violations.append(f"{name}: carbon_t {carbon!r}, but the site states no grid_carbon_kg_per_mwh")
            continue
        tonnes = grid * at(intensity, hour) / 1000
        if carbon is None or not close(carbon, tonnes):
            facts.violations.append(f"{name}: carbon_t {carbon!r}, grid {grid:.6g} MWh x {at(intensity, hour):g} kg/MWh "
                                    f"is {tonnes:.9g} t")
        facts.costs["carbon"] += tonnes * price
        facts.carbon_t[site_id] = facts.carbon_t.get(site_id, 0.0) + tonnes
