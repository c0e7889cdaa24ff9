"""What-if scenarios: named changes to an instance (supply shocks, prices, power caps, demand).

A scenario file (YAML or JSON) is ``{scenarios: [{name, description, changes: [...]}]}``; each
change is one of

- ``{kind: availability, match: {...}, scale, from_hour, to_hour}``: scale the chips of matching
  on-demand, spot and owned pools over ``[from_hour, to_hour)`` (an outage can hit a campus),
  rounded down to whole blocks; reserved pools are contracted and keep their chips;
- ``{kind: price, match: {...}, scale}``: scale the price per chip-hour of matching pools;
- ``{kind: power_cap, site, power_cap_mw | scale}``: set or scale a site's power cap;
- ``{kind: energy_price, site, scale, from_hour, to_hour}``: scale a site's energy price over
  ``[from_hour, to_hour)`` (a spike at an owned campus);
- ``{kind: demand, workload | null, scale, from_hour, to_hour}``: scale inference demand
  (hours given) or training work (no hours) of one workload, or of all;
- ``{kind: renewable_quota, quota, share, sites}``: set a renewable quota's share (0 removes
  it), or add a quota over ``sites`` (a 40% quota on the campuses, say).

``match`` selects pools by any of ``vendor``, ``chip``, ``cloud``, ``site``, ``pool`` (all given
must hold).  Every error names the scenario and the field; a match that selects nothing is an error.

A hedge (``chipmix hedge``) reads the same file with a ``probability`` on every scenario (they sum
to 1; a scenario named ``base`` is the instance as given and takes no changes) and, optionally,
``risk: {cvar_alpha, cvar_weight}``: the objective is then (1 - w) x expected cost + w x CVaR_alpha.
A sweep ignores both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from optimizer.errors import FieldError, InputError
from optimizer.input.instruments import pool_matches
from optimizer.input.loading import instance_from_data, read_document, validate_document
from optimizer.input.schema import Id, Instance, StrictModel

Scale = Annotated[float, Field(ge=0, description="Multiplier, >= 0.")]


class PoolMatch(StrictModel):
    vendor: str | None = None
    chip: Id | None = None
    cloud: str | None = None
    site: Id | None = None
    pool: Id | None = None


class AvailabilityChange(StrictModel):
    kind: Literal["availability"]
    match: PoolMatch
    scale: Scale
    from_hour: Annotated[int, Field(ge=0)] = 0
    to_hour: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Exclusive; null = end.")


class PriceChange(StrictModel):
    kind: Literal["price"]
    match: PoolMatch
    scale: Scale


class PowerCapChange(StrictModel):
    kind: Literal["power_cap"]
    site: Id
    power_cap_mw: Annotated[float, Field(ge=0)] | None = None
    scale: Scale | None = None


class EnergyPriceChange(StrictModel):
    kind: Literal["energy_price"]
    site: Id
    scale: Scale
    from_hour: Annotated[int, Field(ge=0)] = 0
    to_hour: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Exclusive; null = end.")


class DemandChange(StrictModel):
    kind: Literal["demand"]
    workload: Id | None = Field(default=None, description="Workload id; null = every workload.")
    scale: Scale
    from_hour: Annotated[int, Field(ge=0)] = 0
    to_hour: Annotated[int, Field(ge=1)] | None = None


class RenewableQuotaChange(StrictModel):
    kind: Literal["renewable_quota"]
    quota: Id
    share: Annotated[float, Field(ge=0, le=1, description="The quota's share; 0 removes it.")]
    sites: list[Id] | None = Field(default=None, description="A new quota's sites (an existing one keeps its own).")


Change = Annotated[
    Union[AvailabilityChange, PriceChange, PowerCapChange, EnergyPriceChange, DemandChange, RenewableQuotaChange],
    Field(discriminator="kind")
]


class Scenario(StrictModel):
    name: Id
    description: str | None = None
    probability: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="A hedge's weight of the scenario; the probabilities sum to 1.")
    changes: list[Change] = Field(default_factory=list)


class Risk(StrictModel):
    """A hedge's risk aversion: minimise (1 - cvar_weight) x E[cost] + cvar_weight x CVaR."""

    cvar_alpha: Annotated[float, Field(ge=0, lt=1, description="CVaR level: the mean of the worst 1 - alpha.")] = 0.9
    cvar_weight: Annotated[float, Field(ge=0, le=1, description="Weight of CVaR; 0 = expected cost only.")] = 0.0


class ScenarioFile(StrictModel):
    scenarios: list[Scenario] = Field(min_length=1)
    risk: Risk | None = None


#: How far the probabilities' sum may be from 1 (a file written with 3 decimals of 1/3 sums to 0.999).
PROBABILITY_TOLERANCE = 1e-6


def load_scenarios(path: str | Path, instance: Instance) -> list[Scenario]:
    """Read and validate a scenario file against ``instance``; InputError names scenario and field."""
    return scenarios_from_data(read_document(path), instance, str(path))


def scenarios_from_data(data, instance: Instance, source: str = "scenarios") -> list[Scenario]:
    """Validate scenario-file data (as parsed from YAML/JSON) against ``instance``."""
    parsed = validate_document(ScenarioFile, data, source, "a mapping with a 'scenarios' list",
                               schema_command="chipmix schema --scenarios")
    errors: list[FieldError] = []
    names = [s.name for s in parsed.scenarios]
    for index, scenario in enumerate(parsed.scenarios):
        prefix = f"scenarios[{index}]({scenario.name})"
        if names.count(scenario.name) > 1:
            errors.append(FieldError(f"{prefix}.name", f"duplicate scenario name {scenario.name!r}"))
        for c, change in enumerate(scenario.changes):
            errors += _check_change(f"{prefix}.changes[{c}]", change, instance)
    if errors:
        raise InputError(source, errors)
    return parsed.scenarios


def load_hedge_scenarios(path: str | Path, instance: Instance) -> tuple[list[Scenario], Risk]:
    """A hedge's scenario file: validated as a sweep's, plus a probability on every scenario
    (summing to 1) and a ``base`` without changes; InputError naming scenario and field."""
    return hedge_scenarios_from_data(read_document(path), instance, str(path))


def hedge_scenarios_from_data(data, instance: Instance, source: str = "scenarios") -> tuple[list[Scenario], Risk]:
    scenarios = scenarios_from_data(data, instance, source)
    parsed = ScenarioFile.model_validate(data)
    errors: list[FieldError] = []
    for index, scenario in enumerate(scenarios):
        prefix = f"scenarios[{index}]({scenario.name})"
        if scenario.probability is None:
            errors.append(FieldError(f"{prefix}.probability", "missing: a hedge weighs every scenario",
                                     "give each scenario a probability; they sum to 1"))
        if scenario.name == "base" and scenario.changes:
            errors.append(FieldError(f"{prefix}.changes", "the scenario named base is the instance as given",
                                     "rename it, or leave its changes out"))
    given = [s.probability for s in scenarios if s.probability is not None]
    if len(given) == len(scenarios) and abs(sum(given) - 1.0) > PROBABILITY_TOLERANCE:
        errors.append(FieldError("scenarios[*].probability", f"the probabilities sum to {sum(given):.6g}, not 1"))
    if errors:
        raise InputError(source, errors)
    return scenarios, parsed.risk or Risk()


def _matching_pools(match: PoolMatch, instance: Instance) -> list[int]:
    # The same rule as an instrument's applies_to (every field given must hold).
    return [i for i, pool in enumerate(instance.pools) if pool_matches(match, pool, instance)]


def _check_hours(path: str, change, instance: Instance) -> list[FieldError]:
    end = change.to_hour if change.to_hour is not None else instance.hours
    if change.from_hour >= end or end > instance.hours:
        return [FieldError(f"{path}.to_hour", f"hours [{change.from_hour}, {end}) are not inside 0..{instance.hours}")]
    return []


def _check_change(path: str, change, instance: Instance) -> list[FieldError]:
    errors: list[FieldError] = []
    if isinstance(change, (AvailabilityChange, PriceChange)):
        if not _matching_pools(change.match, instance):
            given = ", ".join(f"{k}={v}" for k, v in change.match.model_dump().items() if v is not None) or "nothing"
            errors.append(FieldError(f"{path}.match", f"matches no pool of {instance.name} ({given})"))
        if isinstance(change, AvailabilityChange):
            errors += _check_hours(path, change, instance)
    elif isinstance(change, PowerCapChange):
        if change.site not in {site.id for site in instance.sites}:
            errors.append(FieldError(f"{path}.site", f"unknown site {change.site!r}"))
        if (change.power_cap_mw is None) == (change.scale is None):
            errors.append(FieldError(path, "give exactly one of power_cap_mw and scale"))
        elif change.scale is not None and change.site in {s.id for s in instance.sites}:
            site = next(s for s in instance.sites if s.id == change.site)
            if site.power_cap_mw is None:
                errors.append(FieldError(f"{path}.scale", f"site {change.site!r} has no cap to scale", "set power_cap_mw"))
    elif isinstance(change, EnergyPriceChange):
        site = next((s for s in instance.sites if s.id == change.site), None)
        if site is None:
            errors.append(FieldError(f"{path}.site", f"unknown site {change.site!r}"))
        elif not site.energy_usd_per_mwh:
            errors.append(FieldError(f"{path}.site", f"site {change.site!r} has no energy price to scale",
                                     "give the site energy_usd_per_mwh"))
        errors += _check_hours(path, change, instance)
    elif isinstance(change, DemandChange):
        if change.workload is not None and change.workload not in {w.id for w in instance.workloads}:
            errors.append(FieldError(f"{path}.workload", f"unknown workload {change.workload!r}"))
        errors += _check_hours(path, change, instance)
    elif isinstance(change, RenewableQuotaChange):
        known = {quota.id for quota in instance.renewable_quotas}
        if change.quota not in known and not change.sites:
            errors.append(FieldError(f"{path}.sites", f"{change.quota!r} is not a quota of {instance.name}",
                                     "give the new quota's sites, or name one of: " + (", ".join(sorted(known)) or "none")))
        if change.quota in known and change.sites is not None:
            errors.append(FieldError(f"{path}.sites", f"quota {change.quota!r} exists: its sites are the instance's",
                                     "leave sites out, or give the new quota another id"))
        for k, site_id in enumerate(change.sites or ()):
            if site_id not in {site.id for site in instance.sites}:
                errors.append(FieldError(f"{path}.sites[{k}]", f"unknown site {site_id!r}"))
    return errors


def _scaled(value, hours: int, start: int, end: int, scale: float, block: int | None = None):
    """``value`` (a number or an hourly list) scaled over [start, end); with ``block``, chips
    rounded down to whole blocks (the model could use no more)."""
    series = list(value) if isinstance(value, (list, tuple)) else [value] * hours
    for hour in range(start, end):
        series[hour] = int(series[hour] * scale + 1e-9) // block * block if block else series[hour] * scale
    return series


def apply_scenario(instance: Instance, scenario: Scenario) -> Instance:
    """The instance with the scenario's changes applied, fully re-validated."""
    data = instance.model_dump(mode="json", exclude_none=True)
    for change in scenario.changes:
        if isinstance(change, AvailabilityChange):
            end = change.to_hour if change.to_hour is not None else instance.hours
            for i in _matching_pools(change.match, instance):
                pool = data["pools"][i]
                if pool["pricing"] != "reserved":
                    pool["available"] = _scaled(pool["available"], instance.hours, change.from_hour, end, change.scale,
                                                pool.get("block", 1))
        elif isinstance(change, PriceChange):
            for i in _matching_pools(change.match, instance):
                data["pools"][i]["usd_per_chip_hour"] *= change.scale
        elif isinstance(change, PowerCapChange):
            site = next(s for s in data["sites"] if s["id"] == change.site)
            if change.power_cap_mw is not None:
                site["power_cap_mw"] = change.power_cap_mw
            else:
                cap = site["power_cap_mw"]
                site["power_cap_mw"] = [v * change.scale for v in cap] if isinstance(cap, list) else cap * change.scale
        elif isinstance(change, EnergyPriceChange):
            end = change.to_hour if change.to_hour is not None else instance.hours
            site = next(s for s in data["sites"] if s["id"] == change.site)
            site["energy_usd_per_mwh"] = _scaled(site["energy_usd_per_mwh"], instance.hours, change.from_hour, end,
                                                 change.scale)
        elif isinstance(change, DemandChange):
            end = change.to_hour if change.to_hour is not None else instance.hours
            for workload in data["workloads"]:
                if change.workload not in (None, workload["id"]):
                    continue
                if workload["type"] == "inference":
                    key = "demand_pflops" if workload.get("demand_pflops") is not None else "demand_tokens_per_s"
                    workload[key] = _scaled(workload[key], instance.hours, change.from_hour, end, change.scale)
                else:
                    workload["work_eflop"] *= change.scale
        elif isinstance(change, RenewableQuotaChange):
            quotas = data.setdefault("renewable_quotas", [])
            quota = next((q for q in quotas if q["id"] == change.quota), None)
            if quota is None and change.share > 0:
                quotas.append({"id": change.quota, "sites": list(change.sites or ()), "share": change.share})
            elif quota is not None and change.share > 0:
                quota["share"] = change.share
            elif quota is not None:
                quotas.remove(quota)
    return instance_from_data(data, source=f"{instance.name} under scenario {scenario.name}")


def without_routing(instance: Instance) -> Instance:
    """The instance with every routed service served by its reference model alone (no draft):
    what routing saves, and the form CP-SAT takes (it refuses routing rows)."""
    data = instance.model_dump(mode="json", exclude_none=True)
    for workload, original in zip(data["workloads"], instance.workloads):
        if workload["type"] != "inference" or not workload.get("variants"):
            continue
        first = original.variants[0]
        if original.flop_per_token is None and original.model_params_b is None:
            workload["flop_per_token"] = first.tokens_flop()  # the reference demand is measured at
        if first.efficiency is not None and first.tokens_flop() == original.tokens_flop():
            workload["efficiency"] = dict(first.efficiency)
        workload["variants"] = []
    return instance_from_data(data, source=f"{instance.name} without routing")
