"""Turn a scenario spec plus the public data into an instance file, deterministically.

``build_instance(spec_path)`` returns the instance as plain data; ``render``
returns the YAML text (the same spec and data always give the same bytes).
Every catalogue row used is cited, and every assumption of the spec is copied,
in the instance's ``description``.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from optimizer.errors import FieldError, InputError
from optimizer.library.catalog import Catalog, CatalogError
from optimizer.library.spec import InferenceSpec, InstanceSpec, PoolSpec, SpotShape
from optimizer.library.traces import (
    mean_image_steps_per_request,
    mean_llm_tokens_per_request,
    weekly_rhythm,
)
from optimizer.input.loading import instance_from_data, read_document, validate_document

_VENDORS = {"nvidia": "nvidia", "google": "google", "aws": "aws", "amd": "amd"}


def _read_spec_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The spec's fields, with ``extends: other.yaml`` resolved.

    Top-level keys of this file replace the base's, except ``assumptions``, which add to them.
    """
    data = read_document(path)
    if not isinstance(data, dict):  # checked here too: `extends` is read before validation
        raise InputError(str(path), [FieldError("", "the top level must be a mapping of fields")])
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise InputError(str(path), [FieldError("extends", "must be a spec file name")])
    base_path = (path.parent / base_name).resolve()
    if base_path in seen:
        raise InputError(str(path), [FieldError("extends", f"circular: {base_name} extends this spec")])
    base = _read_spec_data(base_path, (*seen, path.resolve()))
    merged = {**base, **data}
    if isinstance(base.get("assumptions"), list) and isinstance(data.get("assumptions"), list):
        merged["assumptions"] = base["assumptions"] + data["assumptions"]  # added to, not replaced
    return merged


def load_spec(path: str | Path) -> InstanceSpec:
    return validate_document(InstanceSpec, _read_spec_data(Path(path)), str(path))


def _spot_series(shape: SpotShape, hours: int, start: datetime) -> list[int]:
    """Most spot capacity at night, ``min_share`` at ``trough_hour`` (a cosine over the day)."""
    out = []
    for hour in range(hours):
        clock = (start.hour + hour) % 24
        phase = math.cos(2 * math.pi * (clock - shape.trough_hour) / 24)  # 1 at the trough hour
        share = 1 - (1 - shape.min_share) * (1 + phase) / 2
        out.append(int(shape.chips * share))
    return out


class _Builder:
    def __init__(self, spec: InstanceSpec, spec_path: Path):
        self.spec = spec
        self.source = str(spec_path)
        self.data_dir = spec_path.parent / spec.data_dir
        if not (self.data_dir / "accelerator_offerings.csv").is_file():
            raise InputError(self.source, [FieldError(
                "data_dir", f"{self.data_dir} holds no accelerator_offerings.csv (the public data the builder reads)",
                "set data_dir relative to the spec, or keep the spec beside the library's data/")])
        self.catalog = Catalog(self.data_dir)
        self.sites_by_id = {site.id: site for site in spec.sites}
        self.chips_by_id = {chip.id: chip for chip in spec.chips}
        self.errors: list[FieldError] = []
        self.citations: list[str] = []
        self.on_demand_price: dict[str, float] = {}  # pool id -> catalogue on-demand USD per chip-hour
        self.start = datetime.fromisoformat(spec.start.replace("Z", "+00:00")).astimezone(timezone.utc)

    def error(self, path: str, reason: str, hint: str | None = None) -> None:
        self.errors.append(FieldError(path, reason, hint))

    # -- entities ------------------------------------------------------------------------------
    def chips(self) -> list[dict[str, Any]]:
        out = []
        for index, chip in enumerate(self.spec.chips):
            path = f"chips[{index}]({chip.id})"
            try:
                sheet = self.catalog.chip(chip.accelerator)
            except CatalogError as exc:
                self.error(f"{path}.accelerator", str(exc))
                continue
            if sheet.peak_dense_bf16_tflops is None:
                self.error(f"{path}.accelerator", f"chips.csv has no dense BF16 peak for {chip.accelerator}")
                continue
            power_kw = chip.power_kw
            if power_kw is None:
                if sheet.tdp_watts is None:
                    self.error(
                        f"{path}.power_kw",
                        f"chips.csv publishes no power for {chip.accelerator}",
                        "set power_kw and add an assumption saying where the number comes from",
                    )
                    continue
                if self.spec.wall_power_per_board_watt is None:
                    self.error(
                        "wall_power_per_board_watt",
                        f"needed to turn the {chip.accelerator} board power into wall power",
                        "set it and state the reason in assumptions",
                    )
                    continue
                power_kw = round(sheet.tdp_watts * self.spec.wall_power_per_board_watt / 1000, 4)
            vendor = _VENDORS.get(sheet.vendor, "other")
            out.append(
                {
                    "id": chip.id,
                    "vendor": vendor,
                    "peak_tflops": sheet.peak_dense_bf16_tflops,
                    "power_kw": power_kw,
                    "description": f"{chip.accelerator} (chips.csv: {sheet.source.split(' ')[0]})",
                }
            )
        return out

    def sites(self) -> list[dict[str, Any]]:
        out = []
        for site in self.spec.sites:
            entry: dict[str, Any] = {"id": site.id, "cloud": site.cloud, "region": site.region}
            if site.power_cap_mw is not None:
                entry["power_cap_mw"] = site.power_cap_mw
            if site.pue != 1.0:
                entry["pue"] = site.pue
            if site.energy_usd_per_mwh:
                entry["energy_usd_per_mwh"] = site.energy_usd_per_mwh
            if site.renewable is not None:
                entry["renewable_mw"] = renewable_profile(site.renewable, self.start, self.spec.hours)
                entry["renewable_usd_per_mwh"] = site.renewable.usd_per_mwh
            if site.grid_carbon_kg_per_mwh is not None:
                entry["grid_carbon_kg_per_mwh"] = site.grid_carbon_kg_per_mwh
            if site.rec_usd_per_mwh is not None:
                entry["rec_usd_per_mwh"] = site.rec_usd_per_mwh
            out.append(entry)
        return out

    def pool(self, index: int, pool: PoolSpec) -> dict[str, Any] | None:
        path = f"pools[{index}]({pool.id})"
        sites, chips = self.sites_by_id, self.chips_by_id
        site, chip = sites.get(pool.site), chips.get(pool.chip)
        if site is None:
            self.error(f"{path}.site", f"unknown site {pool.site!r}", f"one of: {', '.join(sites)}")
        if chip is None:
            self.error(f"{path}.chip", f"unknown chip {pool.chip!r}", f"one of: {', '.join(chips)}")
        if site is None or chip is None:
            return None
        block = pool.block
        if pool.pricing == "owned":
            if pool.usd_per_chip_hour is None or block is None:
                self.error(path, "owned pools need usd_per_chip_hour and block (the catalogue has no owned prices)")
                return None
            price = pool.usd_per_chip_hour
        else:
            if pool.usd_per_chip_hour is not None:
                self.error(f"{path}.usd_per_chip_hour", "cloud pools are priced from the catalogue", "remove it")
                return None
            if pool.instance_type is None:
                self.error(f"{path}.instance_type", "required for cloud pools")
                return None
            try:
                offering = self.catalog.offering(site.cloud, site.region, pool.instance_type)
            except CatalogError as exc:
                self.error(f"{path}.instance_type", str(exc))
                return None
            if offering.accelerator != chip.accelerator:
                self.error(
                    f"{path}.instance_type",
                    f"{pool.instance_type} carries {offering.accelerator}, not {chip.accelerator}",
                )
                return None
            base = "spot" if pool.pricing == "spot" else "on_demand"
            per_chip = offering.usd_per_chip_hour(base)
            if per_chip is not None and base == "on_demand":
                self.on_demand_price[pool.id] = per_chip
            if per_chip is None:
                self.error(f"{path}.pricing", f"the catalogue has no {base} price for {offering.cite()}")
                return None
            if pool.pricing == "reserved":
                if self.spec.reserved_discount is None:
                    self.error("reserved_discount", "needed for reserved pools", "set it and state why in assumptions")
                    return None
                per_chip *= 1 - self.spec.reserved_discount
            if pool.pricing == "capacity_block":
                per_chip = 0.0  # prepaid: its offers carry the price
            price = per_chip
            block = block or offering.chips_per_instance
            self.citations.append(f"{pool.id} <- {offering.cite()} {base} ${offering.usd_per_chip_hour(base):.4f}/chip-h")
        entry: dict[str, Any] = {
            "id": pool.id,
            "site": pool.site,
            "chip": pool.chip,
            "pricing": pool.pricing,
            "usd_per_chip_hour": round(price, 6),
            "available": self.available(index, pool, block),
            "block": block,
        }
        if pool.pricing == "spot":
            if self.spec.spot_interruption_rate is None:
                self.error("spot_interruption_rate", "needed for spot pools", "set it and state why in assumptions")
                return None
            entry["interruption_rate"] = self.spec.spot_interruption_rate
        return entry

    def available(self, index: int, pool: PoolSpec, block: int) -> int | list[int]:
        """Chips per hour: whole blocks (a spot shape or a shock gives fractions of the pool; the
        model could use only whole blocks of them anyway)."""
        series: list[float] | None = None
        if isinstance(pool.available, SpotShape):
            series = [float(v) for v in _spot_series(pool.available, self.spec.hours, self.start)]
        sites = self.sites_by_id
        vendor = self.catalog.chip(self.chips_by_id[pool.chip].accelerator).vendor
        for shock in self.spec.shocks:
            matches = (
                (shock.vendor is None or shock.vendor == vendor)
                and (shock.chip is None or shock.chip == pool.chip)
                and (shock.cloud is None or shock.cloud == sites[pool.site].cloud)
                and (shock.site is None or shock.site == pool.site)
                and (shock.pool is None or shock.pool == pool.id)
            )
            # Reserved and owned chips are already contracted: a shortage hits what is still to be rented.
            if not matches or pool.pricing in ("reserved", "owned"):
                continue
            if series is None:
                series = [float(pool.available)] * self.spec.hours
            for hour in range(shock.from_hour, min(shock.to_hour, self.spec.hours)):
                series[hour] *= shock.scale
        if series is None:
            return pool.available
        return [int(math.floor(value + 1e-9)) // block * block for value in series]

    # -- workloads ------------------------------------------------------------------------------
    def inference(self, index: int, spec: InferenceSpec) -> dict[str, Any] | None:
        path = f"workloads[{index}]({spec.id})"
        if spec.kind == "llm":
            if spec.model_params_b is None:
                self.error(f"{path}.model_params_b", "required for llm workloads")
                return None
            flop_per_request = 2 * spec.model_params_b * 1e9 * self.llm_tokens
        else:
            if spec.tflop_per_step is None:
                self.error(f"{path}.tflop_per_step", "required for image workloads")
                return None
            flop_per_request = spec.tflop_per_step * 1e12 * self.image_steps
        peak_pflops = spec.peak_requests_per_s * flop_per_request / 1e15
        shape = self.rhythm.series(self.start, self.spec.hours, spec.floor_share)
        entry: dict[str, Any] = {"type": "inference", "id": spec.id}
        if spec.tokens:
            if spec.kind != "llm":
                self.error(f"{path}.tokens", "tokens are for llm workloads (an image is not a token)")
                return None
            peak_tokens = spec.peak_requests_per_s * self.llm_tokens
            entry["demand_tokens_per_s"] = [round(peak_tokens * share, 1) for share in shape]
            entry["model_params_b"] = spec.model_params_b
        else:
            entry["demand_pflops"] = [round(peak_pflops * share, 4) for share in shape]
        entry["efficiency"] = dict(spec.efficiency)
        if spec.sites is not None:
            entry["sites"] = list(spec.sites)
        if spec.unmet_usd_per_pflops_hour is not None:
            entry["unmet_usd_per_pflops_hour"] = spec.unmet_usd_per_pflops_hour
        for key in ("revenue_usd_per_mtok", "paying_share", "category"):
            if getattr(spec, key) is not None:
                entry[key] = getattr(spec, key)
        if spec.variants:
            entry["variants"] = [v.model_dump(exclude_none=True, exclude_defaults=True) | {"id": v.id}
                                 for v in spec.variants]
        what = (
            f"{spec.model_params_b:g}B-parameter LLM, {self.llm_tokens:.0f} tokens/request"
            if spec.kind == "llm"
            else f"image model, {self.image_steps:.1f} steps/request at {spec.tflop_per_step:g} TFLOP/step"
        )
        note = f"{what}; peak {spec.peak_requests_per_s:g} req/s = {peak_pflops:.2f} PFLOP/s, floor {spec.floor_share:.0%}."
        entry["description"] = f"{spec.description} {note}" if spec.description else note
        return entry

    def workloads(self) -> list[dict[str, Any]]:
        out = []
        for index, spec in enumerate(self.spec.workloads):
            if isinstance(spec, InferenceSpec):
                entry = self.inference(index, spec)
                if entry is not None:
                    out.append(entry)
                continue
            entry = {
                "type": "training",
                "id": spec.id,
                "work_eflop": round(spec.total_flop / 1e18, 6),
                "release_hour": spec.release_hour,
                "deadline_hour": spec.deadline_hour if spec.deadline_hour is not None else self.spec.hours,
                "efficiency": dict(spec.efficiency),
            }
            for key in ("sites", "max_chips", "min_chips", "restart_usd_per_chip", "gang_chips",
                        "gang_start_step_hours", "short_usd_per_eflop", "category"):
                value = getattr(spec, key)
                if value is not None:
                    entry[key] = list(value) if key == "sites" else value
            if spec.single_site:
                entry["single_site"] = True
            note = f"{spec.total_flop:.3g} FLOP run."
            entry["description"] = f"{spec.description} {note}" if spec.description else note
            out.append(entry)
        return out

    def instruments(self) -> dict[str, list[dict[str, Any]]]:
        """Offers priced as a share of their pool's catalogue price, usage commitments' rates as a
        discount on their rate pool's, contracts as given; only the lists the spec has."""
        out: dict[str, list[dict[str, Any]]] = {}
        offers = []
        for index, offer in enumerate(self.spec.capacity_blocks):
            price = self.on_demand_price.get(offer.pool)
            if price is None:
                self.error(f"capacity_blocks[{index}]({offer.id}).pool", f"no catalogue-priced pool {offer.pool!r}",
                           "name a capacity_block pool of this spec")
                continue
            entry = offer.model_dump(exclude_none=True, exclude={"price_vs_on_demand", "bought"})
            entry["usd_per_chip_hour"] = round(price * offer.price_vs_on_demand, 6)
            if offer.bought:
                entry["bought"] = [b.model_dump() for b in offer.bought]
            offers.append(entry)
            self.citations.append(f"{offer.id} <- {offer.pool} on-demand x {offer.price_vs_on_demand:g}")
        commitments = []
        for index, commitment in enumerate(self.spec.commitments):
            entry = commitment.model_dump(exclude_none=True, exclude={"rate_pool", "discount"})
            entry["applies_to"] = commitment.applies_to.model_dump(exclude_none=True)
            if commitment.kind == "spend":
                entry["discount"] = commitment.discount
            else:
                price = self.on_demand_price.get(commitment.rate_pool or "")
                if price is None:
                    self.error(f"commitments[{index}]({commitment.id}).rate_pool", "a usage commitment needs the "
                               "catalogue-priced pool its discount is on", "name one of the pools it covers")
                    continue
                entry["usd_per_chip_hour"] = round(price * (1 - commitment.discount), 6)
                self.citations.append(f"{commitment.id} <- {commitment.rate_pool} on-demand x (1 - {commitment.discount:g})")
            commitments.append(entry)
        contracts = [c.model_dump(exclude_none=True) for c in self.spec.contracts]
        for contract in contracts:
            contract["applies_to"] = {k: v for k, v in contract["applies_to"].items() if v is not None}
        for key, value in (("capacity_blocks", offers), ("commitments", commitments), ("contracts", contracts)):
            if value:
                out[key] = value
        return out

    def build(self) -> dict[str, Any]:
        self.rhythm = weekly_rhythm(self.data_dir)
        self.llm_tokens = mean_llm_tokens_per_request(self.data_dir)
        self.image_steps = mean_image_steps_per_request(self.data_dir)
        chips = self.chips()
        sites = self.sites()
        pools = [entry for i, p in enumerate(self.spec.pools) if (entry := self.pool(i, p)) is not None]
        workloads = self.workloads()
        instruments = self.instruments()
        for index, shock in enumerate(self.spec.shocks):
            if shock.to_hour <= shock.from_hour:
                self.error(f"shocks[{index}].to_hour", "must be after from_hour")
        if self.errors:
            raise InputError(self.source, self.errors)
        rhythm = self.rhythm
        derived = (
            "Demand rhythm from the Alibaba text-to-image trace 2024-11-19..30 (GPU-seconds per hour, "
            "3-hour smoothed): the quietest hour carries "
            f"{min(rhythm.hour_of_day):.1%} of the peak hour's load, Saturday {rhythm.weekday_level[5]:.0%} and "
            f"Sunday {rhythm.weekday_level[6]:.0%} of a weekday; each service adds its stated floor. "
            f"LLM requests average {self.llm_tokens:.0f} tokens (Azure conversation trace 2023-11-16) at "
            f"2 x params FLOP per token; images average {self.image_steps:.1f} denoising steps per request."
        )
        description = " ".join(
            [
                self.spec.summary,
                f"Built by `chipmix build-instance instances/specs/{self.spec.name}.yaml` from "
                "instances/data (copies of shared/data: SkyPilot catalogue snapshots, chips.csv, traces; "
                "historical list prices, not live).",
                derived,
                "Prices: " + "; ".join(self.citations) + ".",
                "Assumptions: " + " ".join(self.spec.assumptions),
            ]
            + [f"Shock: {shock.reason}" for shock in self.spec.shocks]
        )
        return {
            "name": self.spec.name,
            "hours": self.spec.hours,
            "start": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": description,
            "chips": chips,
            "sites": sites,
            "pools": pools,
            "workloads": workloads,
            **instruments,
            **({"renewable_quotas": [q.model_dump(exclude_none=True) for q in self.spec.renewable_quotas]}
               if self.spec.renewable_quotas else {}),
            **({"carbon_usd_per_t": self.spec.carbon_usd_per_t} if self.spec.carbon_usd_per_t is not None else {}),
            **({"envelope": self.spec.envelope.model_dump(exclude_none=True)} if self.spec.envelope is not None else {}),
        }


#: Wind's multi-day swing (fronts passing), one factor per day of the week from the horizon's start,
#: mean 1: an illustrative shape, stated as such in docs (no wind trace is bundled).
WIND_DAILY = (1.35, 0.85, 0.45, 0.9, 1.4, 1.05, 1.0)


def renewable_profile(spec, start, hours: int) -> list[float]:
    """Hourly MW of a site's solar and wind: solar follows the sun (sin over 06:00-18:00 local,
    zero at night) and wind is stronger at night (a +-25% daily cosine peaking at 03:00 local) with
    a daily swing (WIND_DAILY); each is scaled so that its mean over whole days is its capacity
    factor x nameplate.  Rounded to 0.001 MW, so the instance file stays short."""
    import math

    sun_mean = 2.0 / math.pi / 2.0  # mean of max(0, sin) over a day with 12 hours of daylight
    out = []
    for t in range(hours):
        local = (start.hour + t + spec.utc_offset_hours) % 24
        day = (t + start.hour) // 24
        sun = max(0.0, math.sin(math.pi * (local - 6) / 12)) if 6 <= local <= 18 else 0.0
        wind = (1 + 0.25 * math.cos(2 * math.pi * (local - 3) / 24)) * WIND_DAILY[day % 7]
        mw = spec.solar_mw * spec.solar_capacity_factor * sun / sun_mean + spec.wind_mw * spec.wind_capacity_factor * wind
        out.append(round(mw, 3))
    return out


def build_instance(spec_path: str | Path) -> dict[str, Any]:
    """Build the instance a spec describes, as plain data that passes full validation."""
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    data = _Builder(spec, spec_path).build()
    instance_from_data(data, source=f"{spec_path} (built instance)")
    return data


def render(spec_path: str | Path) -> str:
    data = build_instance(spec_path)
    # The header names the spec by file name only, so the bytes do not depend on the working directory.
    header = f"# Generated by `chipmix build-instance` from specs/{Path(spec_path).name}; edit the spec, not this file.\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
