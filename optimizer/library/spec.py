"""Scenario spec: the small file a planner writes to get an instance built from public data.

A spec names catalogue rows instead of typing prices, and trace-derived demand
instead of typing 168 numbers.  Wherever the data has a gap (no published
power for TPUs and Trainium, no reserved price, an owned campus's cost), the
spec must give the number *and* an assumption saying why: the builder refuses
to fill a gap silently and copies every assumption into the instance's
``description``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from optimizer.input.schema import (
    AppliesTo, BoughtBlocks, Category, Contract, Efficiency, Envelope, Id, NonNegativeFloat, PositiveFloat, Pricing,
    RenewableQuota, StrictModel, Variant,
)

Fraction = Annotated[float, Field(ge=0, le=1)]


class ChipSpec(StrictModel):
    """A chip of the instance, taken from chips.csv."""

    id: Id
    accelerator: str = Field(description="Row of chips.csv (e.g. H100, TPU-v5p, Trainium2).")
    power_kw: PositiveFloat | None = Field(
        default=None,
        description=(
            "Wall power per chip in use, kW.  Null: chips.csv tdp_watts x the spec's "
            "wall_power_per_board_watt; required where chips.csv has no power."
        ),
    )


class RenewableSpec(StrictModel):
    """A site's contracted solar and wind, as nameplate MW and mean capacity factors; the builder
    gives each its hourly shape (library/build.py: renewable_profile)."""

    solar_mw: NonNegativeFloat = 0.0
    wind_mw: NonNegativeFloat = 0.0
    solar_capacity_factor: Fraction = Field(description="Mean output / nameplate over the horizon's season.")
    wind_capacity_factor: Fraction = Field(description="Mean output / nameplate over the horizon's season.")
    utc_offset_hours: Annotated[int, Field(ge=-12, le=14)] = Field(description="Local time - UTC (solar noon).")
    usd_per_mwh: NonNegativeFloat = Field(description="Contract (PPA) price of the energy used.")


class SiteSpec(StrictModel):
    """A cloud region (priced from the catalogue) or an owned campus."""

    id: Id
    cloud: str = Field(description="Catalogue cloud (aws, gcp, azure, fluidstack, ...) or 'owned'.")
    region: str = Field(description="Catalogue region name, or the campus name for owned sites.")
    power_cap_mw: NonNegativeFloat | None = None
    pue: Annotated[float, Field(ge=1)] = 1.0
    energy_usd_per_mwh: NonNegativeFloat = 0.0
    renewable: RenewableSpec | None = None
    grid_carbon_kg_per_mwh: NonNegativeFloat | None = None
    rec_usd_per_mwh: NonNegativeFloat | None = None


class SpotShape(StrictModel):
    """Spot capacity that swings daily: most at night, ``min_share`` of ``chips`` at the daily low."""

    chips: Annotated[int, Field(ge=0)]
    shape: Literal["spot_diurnal"] = "spot_diurnal"
    min_share: Fraction = 0.25
    trough_hour: Annotated[int, Field(ge=0, le=23)] = 15


class PoolSpec(StrictModel):
    """A pool: a catalogue row (cloud and region from its site) under one pricing tier."""

    id: Id
    site: Id
    chip: Id
    pricing: Pricing
    instance_type: str | None = Field(
        default=None, description="Catalogue instance type; prices and block size come from it (not for owned)."
    )
    usd_per_chip_hour: NonNegativeFloat | None = Field(
        default=None, description="Only for owned pools (amortised cost), which the catalogue cannot price."
    )
    block: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Chips per block; default: chips per catalogue instance."
    )
    available: Union[Annotated[int, Field(ge=0)], SpotShape]


class InferenceSpec(StrictModel):
    """A serving workload whose hourly demand follows the trace rhythm."""

    type: Literal["inference"]
    id: Id
    kind: Literal["llm", "image"]
    peak_requests_per_s: PositiveFloat = Field(description="Requests per second in the busiest hour.")
    model_params_b: PositiveFloat | None = Field(
        default=None, description="llm: parameters, billions (FLOP per token = 2 x params)."
    )
    tflop_per_step: PositiveFloat | None = Field(
        default=None, description="image: TFLOP per denoising step of one image."
    )
    floor_share: Fraction = Field(
        default=0.3, description="Load never falls below this share of the peak (a service's base load)."
    )
    efficiency: dict[Id, Efficiency] = Field(min_length=1)
    sites: list[Id] | None = None
    unmet_usd_per_pflops_hour: NonNegativeFloat | None = None
    tokens: bool = Field(default=False, description="llm: state demand in tokens per second (demand_tokens_per_s).")
    revenue_usd_per_mtok: NonNegativeFloat | None = None
    paying_share: Fraction | None = None
    variants: list[Variant] = Field(default_factory=list, description="Routing variants, copied as written.")
    category: Category | None = None
    description: str | None = None


class TrainingSpec(StrictModel):
    """A training run sized in total FLOP (1e22..1e25 for the runs in the library)."""

    type: Literal["training"]
    id: Id
    total_flop: PositiveFloat
    release_hour: Annotated[int, Field(ge=0)] = 0
    deadline_hour: Annotated[int, Field(ge=0)] | None = None
    efficiency: dict[Id, Efficiency] = Field(min_length=1)
    sites: list[Id] | None = None
    max_chips: Annotated[int, Field(ge=1)] | None = None
    min_chips: Annotated[int, Field(ge=1)] | None = None
    restart_usd_per_chip: NonNegativeFloat | None = None
    gang_chips: Annotated[int, Field(ge=1)] | None = None
    gang_start_step_hours: Annotated[int, Field(ge=1)] | None = None
    single_site: bool = False
    short_usd_per_eflop: NonNegativeFloat | None = None
    category: Category | None = None
    description: str | None = None


WorkloadSpec = Annotated[Union[InferenceSpec, TrainingSpec], Field(discriminator="type")]


class BlockOfferSpec(StrictModel):
    """A capacity-block offer on a ``capacity_block`` pool, priced as a share of the pool's
    catalogue on-demand price (the catalogue has no block prices): state the share's source in
    assumptions."""

    id: Id
    pool: Id
    duration_hours: Annotated[int, Field(ge=1)]
    earliest_start_hour: Annotated[int, Field(ge=0)] = 0
    latest_start_hour: Annotated[int, Field(ge=0)] | None = None
    start_step_hours: Annotated[int, Field(ge=1)] = 24
    price_vs_on_demand: Annotated[float, Field(gt=0, le=2)] = Field(
        description="Block usd_per_chip_hour = the pool's catalogue on-demand price x this.")
    max_blocks: Annotated[int, Field(ge=0)] | None = None
    bought: list[BoughtBlocks] = Field(default_factory=list)
    description: str | None = None


class CommitmentSpec(StrictModel):
    """A commitment as the instance has it, except that a usage commitment's rate is a discount
    on the catalogue on-demand price of ``rate_pool`` (one of the pools it covers)."""

    id: Id
    kind: Literal["spend", "usage"]
    applies_to: AppliesTo
    discount: Annotated[float, Field(ge=0, lt=1)] = Field(
        description="spend: the instance's discount; usage: the committed rate is rate_pool's price x (1 - discount).")
    rate_pool: Id | None = Field(default=None, description="usage: the pool whose on-demand price the discount is on.")
    start_hour: Annotated[int, Field(ge=0)] = 0
    end_hour: Annotated[int, Field(ge=0)] | None = None
    level: NonNegativeFloat | None = None
    max_level: NonNegativeFloat | None = None
    description: str | None = None


class AvailabilityShock(StrictModel):
    """Scale the chips available in matching rented pools over ``[from_hour, to_hour)``.

    Every field given must match (vendor, chip id, cloud, site id, pool id).  Reserved and owned
    pools are never scaled: their chips are already contracted, a shortage hits what is still to rent.
    """

    vendor: str | None = None
    chip: Id | None = None
    cloud: str | None = None
    site: Id | None = None
    pool: Id | None = None
    from_hour: Annotated[int, Field(ge=0)]
    to_hour: Annotated[int, Field(ge=1)]
    scale: Annotated[float, Field(ge=0)]
    reason: str = Field(min_length=1)


class InstanceSpec(StrictModel):
    """Everything the builder needs; see instances/specs/ for examples."""

    name: Id
    summary: str = Field(min_length=1, description="First sentence of the instance description.")
    hours: Annotated[int, Field(ge=1)]
    start: str = Field(description="ISO date-time of hour 0, UTC (sets the weekday rhythm).")
    data_dir: str = Field(default="../data", description="Data folder, relative to the spec file.")
    wall_power_per_board_watt: Annotated[float, Field(ge=1)] | None = Field(
        default=None, description="Wall power / board TDP (host, network, cooling share inside the rack)."
    )
    reserved_discount: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        default=None, description="Reserved price = on-demand x (1 - discount); required if any pool is reserved."
    )
    spot_interruption_rate: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        default=None, description="Compute share spot pools lose to preemption; required if any pool is spot."
    )
    assumptions: list[str] = Field(
        min_length=1, description="Every assumption the numbers rest on, with its reason."
    )
    chips: list[ChipSpec] = Field(min_length=1)
    sites: list[SiteSpec] = Field(min_length=1)
    pools: list[PoolSpec] = Field(min_length=1)
    workloads: list[WorkloadSpec] = Field(min_length=1)
    shocks: list[AvailabilityShock] = Field(default_factory=list)
    capacity_blocks: list[BlockOfferSpec] = Field(default_factory=list)
    commitments: list[CommitmentSpec] = Field(default_factory=list)
    contracts: list[Contract] = Field(default_factory=list)
    renewable_quotas: list[RenewableQuota] = Field(default_factory=list)
    carbon_usd_per_t: NonNegativeFloat | None = None
    envelope: Envelope | None = None
