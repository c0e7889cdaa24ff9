"""What-if scenarios: named changes to an instance (supply shocks, prices, power caps, demand).

A scenario file (YAML or JSON) is ``{scenarios: [{name, description, changes: [...]}]}``; each
change is one of

- ``{kind: availability, match: {...}, scale, from_hour, to_hour}``: scale the chips of matching
  on-demand, spot and owned pools over ``[from_hour, to_hour)`` (an outage can hit a campus);
  reserved pools are contracted and keep their chips;
- ``{kind: price, match: {...}, scale}``: scale the price per chip-hour of matching pools;
- ``{kind: power_cap, site, power_cap_mw | scale}``: set or scale a site's power cap;
- ``{kind: demand, workload | null, scale, from_hour, to_hour}``: scale inference demand
  (hours given) or training work (no hours) of one workload, or of all.

``match`` selects pools by any of ``vendor``, ``chip``, ``cloud``, ``site``, ``pool`` (all given
must hold).  Every error names the scenario and the field; a match that selects nothing is an error.
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


class DemandChange(StrictModel):
    kind: Literal["demand"]
    workload: Id | None = Field(default=None, description="Workload id; null = every workload.")
    scale: Scale
    from_hour: Annotated[int, Field(ge=0)] = 0
    to_hour: Annotated[int, Field(ge=1)] | None = None


Change = Annotated[
    Union[AvailabilityChange, PriceChange, PowerCapChange, DemandChange], Field(discriminator="kind")
]


class Scenario(StrictModel):
    name: Id
    description: str | None = None
    changes: list[Change] = Field(default_factory=list)


class ScenarioFile(StrictModel):
    scenarios: list[Scenario] = Field(min_length=1)


def load_scenarios(path: str | Path, instance: Instance) -> list[Scenario]:
    """Read and validate a scenario file against ``instance``; InputError names scenario and field."""
    return scenarios_from_data(read_document(path), instance, str(path))


def scenarios_from_data(data, instance: Instance, source: str = "scenarios") -> list[Scenario]:
    """Validate scenario-file data (as parsed from YAML/JSON) against ``instance``."""
    parsed = validate_document(ScenarioFile, data, source, "a mapping with a 'scenarios' list")
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
    elif isinstance(change, DemandChange):
        if change.workload is not None and change.workload not in {w.id for w in instance.workloads}:
            errors.append(FieldError(f"{path}.workload", f"unknown workload {change.workload!r}"))
        errors += _check_hours(path, change, instance)
    return errors


def _scaled(value, hours: int, start: int, end: int, scale: float, whole: bool):
    series = list(value) if isinstance(value, (list, tuple)) else [value] * hours
    for hour in range(start, end):
        series[hour] = int(series[hour] * scale) if whole else series[hour] * scale
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
                    pool["available"] = _scaled(pool["available"], instance.hours, change.from_hour, end, change.scale, True)
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
        elif isinstance(change, DemandChange):
            end = change.to_hour if change.to_hour is not None else instance.hours
            for workload in data["workloads"]:
                if change.workload not in (None, workload["id"]):
                    continue
                if workload["type"] == "inference":
                    workload["demand_pflops"] = _scaled(
                        workload["demand_pflops"], instance.hours, change.from_hour, end, change.scale, False
                    )
                else:
                    workload["work_eflop"] *= change.scale
    return instance_from_data(data, source=f"{instance.name} under scenario {scenario.name}")
