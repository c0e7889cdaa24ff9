"""Instance file schema: what a planner writes, validated field by field.

Every model is strict (no silent type coercion: ``"8"`` is not a chip count and
``64.0`` is not an integer), frozen and closed (``extra="forbid"``: a misspelt
key is an error, never ignored).  Units are part of the field names.  Checks
that need more than one entity (ids that must resolve, hourly lists that must
have ``hours`` entries) live in :mod:`optimizer.input.validate`, so that every error
can name the exact field path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        # No commas, brackets or spaces: ids appear inside constraint names
        # such as ``pool_capacity[aws-h100,12]`` and in CSV cells.
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$",
        description="Identifier: letters, digits and _ . : / - (no spaces, commas or brackets).",
    ),
]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Efficiency = Annotated[float, Field(gt=0, le=1)]



def _is_number(value: object) -> bool:
    # bool is an int subclass; True is not a number of chips or a price.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _hourly_non_negative(value: object) -> float | tuple[float, ...]:
    """A number >= 0, or a list of them (one per hour: length is checked in validate.py)."""
    if _is_number(value):
        if value != value or value < 0 or value == float("inf"):
            raise ValueError(f"must be a finite number >= 0, got {value!r}")
        return float(value)
    if isinstance(value, (list, tuple)):
        for hour, entry in enumerate(value):
            if not _is_number(entry) or entry != entry or entry < 0 or entry == float("inf"):
                raise ValueError(f"entry {hour} must be a finite number >= 0, got {entry!r}")
        return tuple(float(entry) for entry in value)
    raise ValueError(f"must be a number >= 0 or a list of one per hour, got {type(value).__name__}")


def _hourly_chips(value: object) -> int | tuple[int, ...]:
    """A whole number of chips >= 0, or a list of them (one per hour)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"chips cannot be negative, got {value}")
        return value
    if isinstance(value, (list, tuple)):
        for hour, entry in enumerate(value):
            if not isinstance(entry, int) or isinstance(entry, bool):
                raise ValueError(f"entry {hour} must be a whole number of chips, got {entry!r}")
            if entry < 0:
                raise ValueError(f"entry {hour}: chips cannot be negative, got {entry}")
        return tuple(value)
    raise ValueError(
        f"must be a whole number of chips or a list of one per hour, got {value!r}"
    )


def _hourly_to_plain(value: float | int | tuple) -> float | int | list:
    return list(value) if isinstance(value, tuple) else value


_NUMBER_SCHEMA = {"type": "number", "minimum": 0}
_CHIPS_SCHEMA = {"type": "integer", "minimum": 0}

#: A value per hour: one number for every hour, or a list of exactly ``hours`` numbers.
HourlyNonNegative = Annotated[
    Union[float, tuple[float, ...]],
    PlainValidator(_hourly_non_negative),
    PlainSerializer(_hourly_to_plain),
    WithJsonSchema({"anyOf": [_NUMBER_SCHEMA, {"type": "array", "items": _NUMBER_SCHEMA}]}),
]
HourlyChips = Annotated[
    Union[int, tuple[int, ...]],
    PlainValidator(_hourly_chips),
    PlainSerializer(_hourly_to_plain),
    WithJsonSchema({"anyOf": [_CHIPS_SCHEMA, {"type": "array", "items": _CHIPS_SCHEMA}]}),
]

Vendor = Literal["nvidia", "google", "aws", "amd", "other"]
Pricing = Literal["owned", "on_demand", "spot", "reserved"]


class StrictModel(BaseModel):
    """Base of every schema model: strict types, immutable, unknown keys rejected."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Chip(StrictModel):
    """An accelerator type (H100, TPU v5p, Trainium2, ...)."""

    id: Id
    vendor: Vendor = Field(description="Chip vendor: nvidia | google | aws | amd | other.")
    peak_tflops: PositiveFloat = Field(description="Dense BF16 peak of one chip, TFLOP/s.")
    power_kw: PositiveFloat = Field(
        description="Wall power of one chip in use, host share included, kW."
    )
    description: str | None = None


class Site(StrictModel):
    """A place chips run: a cloud region or an owned campus."""

    id: Id
    cloud: Annotated[str, Field(min_length=1)] = Field(
        description="Provider: aws, gcp, azure, oci, coreweave, fluidstack, owned, ..."
    )
    region: Annotated[str, Field(min_length=1)] = Field(description="Provider region or campus name.")
    power_cap_mw: HourlyNonNegative | None = Field(
        default=None,
        description="Most power the site may draw, MW: a number, an hourly list, or null (uncapped).",
    )
    pue: Annotated[float, Field(ge=1)] = Field(
        default=1.0, description="Power usage effectiveness: facility power / IT power, >= 1."
    )
    energy_usd_per_mwh: HourlyNonNegative = Field(
        default=0.0,
        description="Energy price, USD per MWh drawn (number or hourly list); 0 where the chip price includes power.",
    )
    description: str | None = None


class Pool(StrictModel):
    """A block of one chip type at one site under one pricing tier."""

    id: Id
    site: Id = Field(description="Id of the site the chips are in.")
    chip: Id = Field(description="Id of the chip type.")
    pricing: Pricing = Field(description="owned | on_demand | spot | reserved.")
    usd_per_chip_hour: NonNegativeFloat = Field(
        description="Price of one chip for one hour, USD (reserved: paid for every hour of the horizon)."
    )
    available: HourlyChips = Field(
        description=(
            "Chips usable in each hour (integer or hourly list); for reserved pools the most "
            "that can be reserved (a single integer)."
        )
    )
    block: Annotated[int, Field(ge=1)] = Field(
        default=1, description="Chips are used and reserved in multiples of this (e.g. 8 GPUs per instance)."
    )
    interruption_rate: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.0, description="Fraction of compute lost to interruptions; spot delivers (1 - rate)."
    )
    description: str | None = None


class InferenceWorkload(StrictModel):
    """A serving workload: useful PFLOP/s needed in every hour."""

    type: Literal["inference"]
    id: Id
    demand_pflops: HourlyNonNegative = Field(
        description="Useful PFLOP/s needed in each hour (number or hourly list)."
    )
    efficiency: dict[Id, Efficiency] = Field(
        min_length=1,
        description="Chip id -> achieved fraction of peak in (0, 1]; chips not listed cannot run it.",
    )
    sites: list[Id] | None = Field(
        default=None, description="Allow-list of site ids; null means every site."
    )
    unmet_usd_per_pflops_hour: NonNegativeFloat | None = Field(
        default=None,
        description="Penalty per PFLOP/s-hour left unserved, USD; null means the demand is hard.",
    )
    description: str | None = None


class TrainingWorkload(StrictModel):
    """A training run: useful EFLOP to deliver between its release hour and deadline."""

    type: Literal["training"]
    id: Id
    work_eflop: PositiveFloat = Field(description="Useful work to deliver, EFLOP (1e18 FLOP).")
    release_hour: NonNegativeInt = Field(default=0, description="First hour the run may use chips.")
    deadline_hour: NonNegativeInt | None = Field(
        default=None, description="Exclusive last hour (work is done in [release, deadline)); null means hours."
    )
    efficiency: dict[Id, Efficiency] = Field(
        min_length=1,
        description="Chip id -> achieved fraction of peak in (0, 1]; chips not listed cannot run it.",
    )
    sites: list[Id] | None = Field(
        default=None, description="Allow-list of site ids; null means every site."
    )
    max_chips: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Most chips the run may hold in any hour."
    )
    single_site: bool = Field(
        default=False, description="If true, every chip of the run, over the whole run, is in one site."
    )
    gang_chips: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description=(
            "Gang-scheduled run: exactly this many chips of one pool for one contiguous span of "
            "ceil(work_eflop / (gang_chips x useful TFLOP/s per chip x 0.0036)) hours, never "
            "preempted or resized; it runs whole or not at all.  A multiple of the block of "
            "every pool the run may use.  Null: the run takes any chips in any hours."
        ),
    )
    short_usd_per_eflop: NonNegativeFloat | None = Field(
        default=None,
        description="Penalty per EFLOP not delivered by the deadline, USD; null means the work must be finished.",
    )
    description: str | None = None


Workload = Annotated[Union[InferenceWorkload, TrainingWorkload], Field(discriminator="type")]


class Instance(StrictModel):
    """A planning problem: chips, sites, pools of chips and the workloads to serve."""

    name: Annotated[str, Field(min_length=1)]
    hours: Annotated[int, Field(ge=1)] = Field(description="Horizon length H; hours are 0..H-1.")
    start: Annotated[datetime, Field(strict=False)] | None = Field(
        default=None, description="ISO time of hour 0 (informational)."
    )
    description: str | None = None
    chips: list[Chip] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1)
    pools: list[Pool] = Field(min_length=1)
    workloads: list[Workload] = Field(min_length=1)
