"""``renewable_use[site,hour]`` and ``renewable_quota[quota]``: energy.csv states every site-hour
the plan draws energy in, with the facility energy the allocations draw; renewable energy within
the site's supply; renewable energy and certificates within what it draws (certificates only
where a quota can count them); grid = facility - renewable.  Each quota's renewable energy and
certificates reach its share of its sites' energy.  Prices renewable energy (in place of the
grid's) and certificates."""

from __future__ import annotations

import math

from optimizer.plans.checker.facts import Facts, at, close, exceeds, whole

_FIELDS = ("facility_mwh", "renewable_mwh", "certificates_mwh", "grid_mwh")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read(facts: Facts, rows: list[dict[str, str]]) -> None:
    facts.energy_read = True
    for row in rows:
        where = f"energy.csv line {row['_line']}"
        hour, site = whole(row["hour"]), facts.sites.get(row["site"])
        values = [_number(row[name]) for name in _FIELDS]
        carbon = None if row["carbon_t"] == "" else _number(row["carbon_t"])
        problems = []
        if site is None:
            problems.append(f"unknown site {row['site']!r}")
        if hour is None or not 0 <= hour < facts.hours:
            problems.append(f"hour {row['hour']!r} is not in 0..{facts.hours - 1}")
        problems += [f"{name} must be a number >= 0, got {row[name]!r}"
                     for name, value in zip(_FIELDS, values) if value is None or value < 0]
        if row["carbon_t"] != "" and (carbon is None or carbon < 0):
            problems.append(f"carbon_t must be a number >= 0 or empty, got {row['carbon_t']!r}")
        if not problems and (site.id, hour) in facts.energy:
            problems.append(f"site {site.id!r} hour {hour} listed twice")
        if problems:
            facts.violations.append(f"{where}: " + "; ".join(problems))
            continue
        facts.energy[(site.id, hour)] = (*values, carbon)


def check(facts: Facts) -> None:
    if not facts.energy_read:
        return
    violations, quota_of = facts.violations, {}
    for quota in facts.instance.renewable_quotas:
        for site_id in quota.sites:
            quota_of[site_id] = quota
    for key in sorted(set(facts.site_hour_kw) - set(facts.energy)):
        if facts.site_hour_kw[key] > 0:
            violations.append(f"energy.csv: no row for site {key[0]!r} hour {key[1]}, where the plan draws "
                              f"{facts.site_hour_kw[key] / 1000:.6g} MWh")
    counted: dict[str, float] = {}
    drawn: dict[str, float] = {}
    for (site_id, hour), (facility, renewable, certificates, grid, _) in sorted(facts.energy.items()):
        site = facts.sites[site_id]
        name = f"renewable_use[{site_id},{hour}]"
        draws = facts.site_hour_kw.get((site_id, hour), 0.0) / 1000
        if not close(facility, draws):
            violations.append(f"energy.csv: {site_id} hour {hour}: facility_mwh {facility!r}, the allocations draw "
                              f"{draws:.9g} MWh")
        supply = 0.0 if site.renewable_mw is None else at(site.renewable_mw, hour)
        if exceeds(renewable, supply):
            violations.append(f"{name}: uses {renewable:.6g} MWh renewable, the site's supply is {supply:.6g} MWh")
        if exceeds(renewable + certificates, draws):
            violations.append(f"{name}: renewable {renewable:.6g} + certificates {certificates:.6g} MWh exceed "
                              f"the {draws:.6g} MWh it draws")
        if certificates > 0 and (site_id not in quota_of or site.rec_usd_per_mwh is None):
            violations.append(f"{name}: {certificates:.6g} MWh of certificates at a site no quota can count them "
                              "for (it needs a quota and rec_usd_per_mwh)")
        if not close(grid, facility - renewable):
            violations.append(f"energy.csv: {site_id} hour {hour}: grid_mwh {grid!r}, facility - renewable is "
                              f"{facility - renewable:.9g}")
        facts.costs["energy"] += renewable * (site.renewable_usd_per_mwh - at(site.energy_usd_per_mwh, hour))
        facts.costs["certificates"] += certificates * (site.rec_usd_per_mwh or 0.0)
        if site_id in quota_of:
            counted[quota_of[site_id].id] = counted.get(quota_of[site_id].id, 0.0) + renewable + certificates
            drawn[quota_of[site_id].id] = drawn.get(quota_of[site_id].id, 0.0) + facility
    for quota in facts.instance.renewable_quotas:
        facts.quota_mwh[quota.id] = (drawn.get(quota.id, 0.0), counted.get(quota.id, 0.0))
        need = quota.share * drawn.get(quota.id, 0.0)
        if exceeds(need, counted.get(quota.id, 0.0)):
            violations.append(f"renewable_quota[{quota.id}]: {counted.get(quota.id, 0.0):.6g} MWh renewable and "
                              f"certified, the quota needs {quota.share:g} x {drawn.get(quota.id, 0.0):.6g} = "
                              f"{need:.6g} MWh")
