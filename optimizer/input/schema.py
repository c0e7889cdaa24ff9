"""Instance file schema: what a planner writes, validated field by field.

Every model is strict (no silent type coercion: ``"8"`` is not a chip count and
``64.0`` is not an integer), frozen and closed (``extra="forbid"``: a misspelt
key is an error, never ignored).  Units are part of the field names.  Checks
that need more than one entity (ids that must resolve, hourly lists that must
have ``hours`` entries) live in :mod:`optimizer.input.validate`, so that every error
can name the exact field path.
"""

from __future__ import annotations

import hashlib
import json
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
#: Limits on magnitudes.  Every number must be finite (no Infinity or NaN), and none may be so
#: large that it means a typo or an attack rather than a plan: a price of 1e308 would make costs
#: overflow to inf (and NaN), and 1e308 chips overflows the integer arrays of the model.  The
#: limits are far above any real fleet and are stated in the JSON Schema (``maximum``).
MAX_USD = 1e9  # any price or penalty per unit, USD
MAX_PEAK_TFLOPS = 1e6  # one chip
MAX_CHIP_POWER_KW = 100.0  # one chip, host share included
MAX_SITE_POWER_MW = 1e5  # 100 GW
MAX_PUE = 5.0
MAX_CHIPS = 100_000_000  # in one pool, block, run or gang
MAX_PFLOPS = 1e9  # one service's demand in one hour
MAX_EFLOP = 1e12  # one training run's work
MAX_CARBON_KG_PER_MWH = 5_000.0  # lignite is about 1,100
MAX_TOKENS_PER_S = 1e12  # one service in one hour
MAX_FLOP_PER_TOKEN = 1e16  # a 5-quadrillion-parameter model
MAX_MODEL_PARAMS_B = 5e6
#: Longest horizon: ten years of hours.  (The model's size is bounded too: see validate.py.)
MAX_HOURS = 87_840

NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Efficiency = Annotated[float, Field(gt=0, le=1)]
Usd = Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]


def _is_number(value: object) -> bool:
    # bool is an int subclass; True is not a number of chips or a price.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _hourly_non_negative(limit: float):
    """A number in [0, limit], or a list of them (one per hour: length is checked in validate.py)."""

    def check(value: object) -> float | tuple[float, ...]:
        if _is_number(value):
            if not 0 <= value <= limit:  # also false for NaN
                raise ValueError(f"must be a finite number in [0, {limit:g}], got {value!r}")
            return float(value)
        if isinstance(value, (list, tuple)):
            for hour, entry in enumerate(value):
                if not _is_number(entry) or not 0 <= entry <= limit:
                    raise ValueError(f"entry {hour} must be a finite number in [0, {limit:g}], got {entry!r}")
            return tuple(float(entry) for entry in value)
        raise ValueError(f"must be a number >= 0 or a list of one per hour, got {type(value).__name__}")

    return check


def _hourly_chips(value: object) -> int | tuple[int, ...]:
    """A whole number of chips in [0, MAX_CHIPS], or a list of them (one per hour)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"chips cannot be negative, got {value}")
        if value > MAX_CHIPS:
            raise ValueError(f"{value} chips is more than {MAX_CHIPS:,} (the most chipmix plans in one pool)")
        return value
    if isinstance(value, (list, tuple)):
        for hour, entry in enumerate(value):
            if not isinstance(entry, int) or isinstance(entry, bool):
                raise ValueError(f"entry {hour} must be a whole number of chips, got {entry!r}")
            if entry < 0:
                raise ValueError(f"entry {hour}: chips cannot be negative, got {entry}")
            if entry > MAX_CHIPS:
                raise ValueError(f"entry {hour}: {entry} chips is more than {MAX_CHIPS:,}")
        return tuple(value)
    raise ValueError(
        f"must be a whole number of chips or a list of one per hour, got {value!r}"
    )


def _hourly_to_plain(value: float | int | tuple) -> float | int | list:
    return list(value) if isinstance(value, tuple) else value


_CHIPS_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_CHIPS}


def _hourly(limit: float):
    """A value per hour, each in [0, limit]: one number for every hour, or a list of exactly
    ``hours`` numbers."""
    number = {"type": "number", "minimum": 0, "maximum": limit}
    return Annotated[
        Union[float, tuple[float, ...]],
        PlainValidator(_hourly_non_negative(limit)),
        PlainSerializer(_hourly_to_plain),
        WithJsonSchema({"anyOf": [number, {"type": "array", "items": number}]}),
    ]


HourlyPowerMw = _hourly(MAX_SITE_POWER_MW)
HourlyUsdPerMwh = _hourly(MAX_USD)
HourlyPflops = _hourly(MAX_PFLOPS)
HourlyKgPerMwh = _hourly(MAX_CARBON_KG_PER_MWH)
HourlyTokensPerS = _hourly(MAX_TOKENS_PER_S)
HourlyChips = Annotated[
    Union[int, tuple[int, ...]],
    PlainValidator(_hourly_chips),
    PlainSerializer(_hourly_to_plain),
    WithJsonSchema({"anyOf": [_CHIPS_SCHEMA, {"type": "array", "items": _CHIPS_SCHEMA}]}),
]
Chips = Annotated[int, Field(ge=1, le=MAX_CHIPS)]

Vendor = Literal["nvidia", "google", "aws", "amd", "other"]
#: What compute is for, in the envelope (serving customers, model development, the lab's own use).
Category = Literal["inference", "research", "internal"]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
FlopPerToken = Annotated[float, Field(gt=0, le=MAX_FLOP_PER_TOKEN, allow_inf_nan=False)]
ModelParamsB = Annotated[float, Field(gt=0, le=MAX_MODEL_PARAMS_B, allow_inf_nan=False)]
Pricing = Literal["owned", "on_demand", "spot", "reserved", "capacity_block"]


class StrictModel(BaseModel):
    """Base of every schema model: strict types, immutable, unknown keys rejected."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Chip(StrictModel):
    """An accelerator type (H100, TPU v5p, Trainium2, ...)."""

    id: Id
    vendor: Vendor = Field(description="Chip vendor: nvidia | google | aws | amd | other.")
    peak_tflops: Annotated[PositiveFloat, Field(le=MAX_PEAK_TFLOPS)] = Field(description="Dense BF16 peak of one chip, TFLOP/s.")
    power_kw: Annotated[PositiveFloat, Field(le=MAX_CHIP_POWER_KW)] = Field(
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
    power_cap_mw: HourlyPowerMw | None = Field(
        default=None,
        description="Most power the site may draw, MW: a number, an hourly list, or null (uncapped).",
    )
    pue: Annotated[float, Field(ge=1, le=MAX_PUE, allow_inf_nan=False)] = Field(
        default=1.0, description="Power usage effectiveness: facility power / IT power, >= 1."
    )
    energy_usd_per_mwh: HourlyUsdPerMwh = Field(
        default=0.0,
        description="Energy price, USD per MWh drawn (number or hourly list); 0 where the chip price includes power.",
    )
    renewable_mw: HourlyPowerMw | None = Field(
        default=None,
        description=("Renewable supply the site may use in each hour, MW (on-site or contracted; number or hourly "
                     "list); what the site draws beyond it comes from the grid. null: none."),
    )
    renewable_usd_per_mwh: Usd = Field(
        default=0.0, description="Price of the renewable energy used, USD per MWh (in place of energy_usd_per_mwh).")
    grid_carbon_kg_per_mwh: HourlyKgPerMwh | None = Field(
        default=None, description="Carbon intensity of grid energy, kg CO2 per MWh (number or hourly list); null: not stated.")
    rec_usd_per_mwh: Usd | None = Field(
        default=None,
        description="Price of renewable energy certificates, USD per MWh of grid energy they count as renewable "
                    "toward a quota; null: none can be bought.")
    description: str | None = None


#: Site fields that an instance written before them leaves out: absent and default are one
#: instance, so their defaults stay out of the fingerprint (Instance.sha256).
SITE_ENERGY_DEFAULTS = {"renewable_mw": None, "renewable_usd_per_mwh": 0.0, "grid_carbon_kg_per_mwh": None,
                        "rec_usd_per_mwh": None}


class Pool(StrictModel):
    """A block of one chip type at one site under one pricing tier."""

    id: Id
    site: Id = Field(description="Id of the site the chips are in.")
    chip: Id = Field(description="Id of the chip type.")
    pricing: Pricing = Field(description="owned | on_demand | spot | reserved | capacity_block (usable only "
                                         "under blocks bought from a capacity_blocks offer).")
    usd_per_chip_hour: Usd = Field(
        description="Price of one chip for one hour, USD (reserved: paid for every hour of the horizon)."
    )
    available: HourlyChips = Field(
        description=(
            "Chips usable in each hour (integer or hourly list); for reserved pools the most "
            "that can be reserved (a single integer)."
        )
    )
    block: Chips = Field(
        default=1, description="Chips are used and reserved in multiples of this (e.g. 8 GPUs per instance)."
    )
    interruption_rate: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.0, description="Fraction of compute lost to interruptions; spot delivers (1 - rate)."
    )
    fixed_usd_per_chip_hour: Usd | None = Field(
        default=None,
        description=(
            "Owned pools only: amortised capital and hosting, USD per chip-hour, paid for every "
            "available chip in every hour whether it is used or not (cost term `fixed`)."
        ),
    )
    description: str | None = None


def _stated_flop_per_token(flop_per_token: float | None, model_params_b: float | None) -> float | None:
    """FLOP per token as a service or a variant states it: flop_per_token, or 2 x params (None: neither)."""
    if flop_per_token is not None:
        return flop_per_token
    return None if model_params_b is None else 2e9 * model_params_b


class Variant(StrictModel):
    """One model a routed service's tokens may go to (a flagship, a draft): its FLOP per token,
    its efficiency per chip, and bounds on its share of the service's tokens in each hour."""

    id: Id
    flop_per_token: FlopPerToken | None = Field(default=None, description="FLOP to produce one token.")
    model_params_b: ModelParamsB | None = Field(
        default=None, description="Parameters, billions: 2 x params FLOP per token (in place of flop_per_token).")
    efficiency: dict[Id, Efficiency] | None = Field(
        default=None, description="Chip id -> achieved fraction of peak for this model; null: the service's.")
    min_share: Share = Field(default=0.0, description="Least share of the service's tokens served in an hour.")
    max_share: Share = Field(default=1.0, description="Largest share of the service's tokens served in an hour.")
    description: str | None = None

    def tokens_flop(self) -> float:
        """FLOP per token (flop_per_token, or 2 x params)."""
        return _stated_flop_per_token(self.flop_per_token, self.model_params_b)


class InferenceWorkload(StrictModel):
    """A serving workload: useful PFLOP/s (or tokens per second) needed in every hour."""

    type: Literal["inference"]
    id: Id
    demand_pflops: HourlyPflops | None = Field(
        default=None, description="Useful PFLOP/s needed in each hour (number or hourly list); or demand_tokens_per_s."
    )
    demand_tokens_per_s: HourlyTokensPerS | None = Field(
        default=None,
        description="Tokens per second needed in each hour (number or hourly list), in place of demand_pflops: "
                    "PFLOP/s = tokens/s x flop_per_token / 1e15.")
    efficiency: dict[Id, Efficiency] = Field(
        min_length=1,
        description="Chip id -> achieved fraction of peak in (0, 1]; chips not listed cannot run it.",
    )
    sites: list[Id] | None = Field(
        default=None, description="Allow-list of site ids; null means every site."
    )
    unmet_usd_per_pflops_hour: Usd | None = Field(
        default=None,
        description="Penalty per PFLOP/s-hour left unserved, USD; null means the demand is hard.",
    )
    category: Category = Field(default="inference", description="inference | research | internal (the envelope's).")
    flop_per_token: FlopPerToken | None = Field(
        default=None, description="FLOP to produce one token: what turns tokens into PFLOP/s (a routed service: "
                                  "its demand's reference; null: its first variant's).")
    model_params_b: ModelParamsB | None = Field(
        default=None, description="Parameters, billions: 2 x params FLOP per token (in place of flop_per_token).")
    revenue_usd_per_mtok: Usd | None = Field(
        default=None, description="Revenue per million tokens served to paying users, USD.")
    paying_share: Share = Field(default=1.0, description="Share of the service's tokens that pay.")
    variants: list[Variant] = Field(
        default_factory=list,
        description="Models the service's tokens may be routed to; the optimizer picks each one's share per hour.")
    description: str | None = None

    def tokens_flop(self) -> float | None:
        """FLOP per token that demand is measured at: the service's own, else its first variant's
        (None: the service speaks PFLOP/s only)."""
        own = _stated_flop_per_token(self.flop_per_token, self.model_params_b)
        if own is None and self.variants:
            return self.variants[0].tokens_flop()
        return own

    def models(self) -> list[tuple[Variant | None, dict[str, float]]]:
        """What the service's chips can run: (None, its efficiency) for a plain service; for a
        routed one each variant and its efficiency (the service's where it gives none)."""
        if not self.variants:
            return [(None, self.efficiency)]
        return [(v, v.efficiency if v.efficiency is not None else self.efficiency) for v in self.variants]

    def pflops_demand(self) -> float | tuple[float, ...]:
        """Demand in PFLOP/s (at tokens_flop for a token-denominated service), a number or one per hour."""
        if self.demand_pflops is not None:
            return self.demand_pflops
        scale = self.tokens_flop() / 1e15
        value = self.demand_tokens_per_s
        return tuple(v * scale for v in value) if isinstance(value, tuple) else value * scale


class TrainingWorkload(StrictModel):
    """A training run: useful EFLOP to deliver between its release hour and deadline."""

    type: Literal["training"]
    id: Id
    work_eflop: Annotated[PositiveFloat, Field(le=MAX_EFLOP)] = Field(description="Useful work to deliver, EFLOP (1e18 FLOP).")
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
    max_chips: Chips | None = Field(
        default=None, description="Most chips the run may hold in any hour."
    )
    min_chips: Chips | None = Field(
        default=None,
        description="A run that holds chips in an hour holds at least this many (0 or >= min_chips).",
    )
    restart_usd_per_chip: Usd | None = Field(
        default=None,
        description=(
            "Paid for each chip added to the run from one hour to the next (a resize or restart "
            "reloads a checkpoint onto the new chips); hour 0 is not priced (the chips held before "
            "the horizon are not known).  Cost term `restarts`."
        ),
    )
    single_site: bool = Field(
        default=False, description="If true, every chip of the run, over the whole run, is in one site."
    )
    gang_chips: Chips | None = Field(
        default=None,
        description=(
            "Gang-scheduled run: exactly this many chips of one pool for one contiguous span of "
            "ceil(work_eflop / (gang_chips x useful TFLOP/s per chip x 0.0036)) hours, never "
            "preempted or resized; it runs whole or not at all.  A multiple of the block of "
            "every pool the run may use.  Null: the run takes any chips in any hours."
        ),
    )
    gang_start_step_hours: Annotated[int, Field(ge=1, le=MAX_HOURS)] | None = Field(
        default=None,
        description=(
            "Gang runs only: the span may start only every this many hours from release_hour (24: a "
            "daily scheduling window); null means any hour.  Fewer starts make a long horizon tractable."
        ),
    )
    short_usd_per_eflop: Usd | None = Field(
        default=None,
        description="Penalty per EFLOP not delivered by the deadline, USD; null means the work must be finished.",
    )
    category: Category = Field(default="research", description="inference | research | internal (the envelope's).")
    description: str | None = None


#: Workload fields that an instance written before them leaves out (absent and default are one
#: instance, so their defaults stay out of the fingerprint: Instance.sha256).
WORKLOAD_ECONOMICS_DEFAULTS = {
    "inference": {"demand_pflops": None, "demand_tokens_per_s": None, "category": "inference", "flop_per_token": None,
                  "model_params_b": None, "revenue_usd_per_mtok": None, "paying_share": 1.0, "variants": []},
    "training": {"category": "research"},
}

Workload = Annotated[Union[InferenceWorkload, TrainingWorkload], Field(discriminator="type")]


# --- procurement instruments (docs/formulation.md, "Procurement") -------------------------------

IdOrIds = Union[Id, list[Id]]


class AppliesTo(StrictModel):
    """Which pools an instrument covers: every pool that matches each given field (a value or a
    list of values); fields left out match anything."""

    vendor: Union[Vendor, list[Vendor]] | None = None
    chip: IdOrIds | None = None
    cloud: Union[Annotated[str, Field(min_length=1)], list[Annotated[str, Field(min_length=1)]]] | None = None
    site: IdOrIds | None = None
    pool: IdOrIds | None = None


class BoughtBlocks(StrictModel):
    """Capacity blocks already bought: fixed, and paid whether used or not."""

    start_hour: NonNegativeInt
    blocks: Annotated[int, Field(ge=1, le=MAX_CHIPS)]


class CapacityBlockOffer(StrictModel):
    """A capacity-block offer (the AWS EC2 Capacity Blocks for ML shape): blocks of the pool's
    ``block`` chips for ``duration_hours``, starting in [earliest_start_hour, latest_start_hour]
    every ``start_step_hours``, prepaid at ``usd_per_chip_hour`` for every chip-hour of the block."""

    id: Id
    pool: Id = Field(description="A pool with pricing capacity_block.")
    duration_hours: Annotated[int, Field(ge=1, le=MAX_HOURS)]
    earliest_start_hour: NonNegativeInt = Field(default=0, description="Lead time: the first hour a block may start.")
    latest_start_hour: NonNegativeInt | None = Field(
        default=None, description="Last hour a block may start; null means hours - duration_hours.")
    start_step_hours: Annotated[int, Field(ge=1, le=MAX_HOURS)] = Field(
        default=1, description="Blocks start every this many hours from earliest_start_hour (24: daily).")
    usd_per_chip_hour: Usd = Field(description="Paid for every chip-hour of a block bought, used or not.")
    max_blocks: Annotated[int, Field(ge=0, le=MAX_CHIPS)] | None = Field(
        default=None, description="Most blocks of this offer bought over the horizon; null means unlimited.")
    bought: list[BoughtBlocks] = Field(default_factory=list, description="Blocks already bought.")
    description: str | None = None


class Commitment(StrictModel):
    """A spend commitment (Savings Plans, flexible CUDs: a USD/hour level; covered usage costs
    (1 - discount) x the pool's rate) or a usage commitment (reserved instances, resource CUDs:
    ``level`` chips at ``usd_per_chip_hour``).  The level is paid every hour of the window, used
    or not."""

    id: Id
    kind: Literal["spend", "usage"]
    applies_to: AppliesTo = Field(description="The on_demand pools it covers.")
    discount: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = Field(
        default=None, description="spend: covered usage costs (1 - discount) x the pool's usd_per_chip_hour.")
    usd_per_chip_hour: Usd | None = Field(default=None, description="usage: the committed rate per chip-hour.")
    start_hour: NonNegativeInt = 0
    end_hour: NonNegativeInt | None = Field(default=None, description="Exclusive end of the window; null means hours.")
    level: Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)] | None = Field(
        default=None,
        description="null: chipmix chooses it; a number: already bought (spend: USD/hour; usage: whole chips).")
    max_level: Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)] | None = Field(
        default=None, description="Largest level chipmix may choose; null means no limit beyond the pools' chips.")
    description: str | None = None


class Contract(StrictModel):
    """A take-or-pay minimum with a provider: what the matching pools bill over the horizon below
    ``min_usd`` is paid anyway."""

    id: Id
    applies_to: AppliesTo
    min_usd: Annotated[float, Field(gt=0, le=MAX_USD * 1000, allow_inf_nan=False)]
    description: str | None = None


class RenewableQuota(StrictModel):
    """A share of the listed sites' facility energy over the horizon that must be renewable:
    renewable energy used + certificates bought >= share x facility energy."""

    id: Id
    sites: list[Id] = Field(min_length=1, description="Sites whose energy the quota counts together.")
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        description="Least renewable share of the sites' facility energy, in (0, 1].")
    description: str | None = None


class CategoryFloor(StrictModel):
    """The least compute a category gets, never cut: EFLOP over the horizon, or a share of all
    compute delivered."""

    eflop: Annotated[float, Field(gt=0, le=MAX_EFLOP, allow_inf_nan=False)] | None = None
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None


class Envelope(StrictModel):
    """One compute budget over the horizon, split between serving, research and internal use."""

    budget_usd: Annotated[float, Field(gt=0, le=MAX_USD * 1000, allow_inf_nan=False)] | None = Field(
        default=None,
        description="Most the plan may spend over the horizon (every spend cost term), USD. With a budget, "
                    "unserved tokens of a service with revenue_usd_per_mtok cost the paying revenue they lose.")
    floors: dict[Category, CategoryFloor] = Field(
        default_factory=dict, description="Category -> its floor (eflop, or share of delivered compute).")
    description: str | None = None


class Instance(StrictModel):
    """A planning problem: chips, sites, pools of chips and the workloads to serve."""

    name: Annotated[str, Field(min_length=1)]
    hours: Annotated[int, Field(ge=1, le=MAX_HOURS)] = Field(description="Horizon length H; hours are 0..H-1 (at most ten years).")
    start: Annotated[datetime, Field(strict=False)] | None = Field(
        default=None, description="ISO time of hour 0 (informational)."
    )
    description: str | None = None
    chips: list[Chip] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1)
    pools: list[Pool] = Field(min_length=1)
    workloads: list[Workload] = Field(min_length=1)
    capacity_blocks: list[CapacityBlockOffer] = Field(default_factory=list)
    commitments: list[Commitment] = Field(default_factory=list)
    contracts: list[Contract] = Field(default_factory=list)
    renewable_quotas: list[RenewableQuota] = Field(default_factory=list)
    carbon_usd_per_t: Usd | None = Field(
        default=None, description="Price put on each tonne of CO2 from grid energy (a cost term); null: not priced.")
    envelope: Envelope | None = Field(default=None, description="A compute budget and category floors; null: none.")

    def priced_by_budget(self, workload: InferenceWorkload) -> bool:
        """Whether a service's unserved demand costs its paying revenue: within a budget
        (envelope.budget_usd), a service with revenue_usd_per_mtok is priced so, not hard."""
        return (self.envelope is not None and self.envelope.budget_usd is not None
                and workload.revenue_usd_per_mtok is not None)

    def sha256(self) -> str:
        """The instance's fingerprint: sha256 of its canonical form (every field, defaults
        filled in, keys sorted), so two files that mean the same instance have the same one.
        A plan's summary.json carries it, and the checker refuses a plan made for another."""
        data = self.model_dump(mode="json")
        for key in OPTIONAL_LISTS:  # absent and empty are one instance (fingerprints from before them hold)
            if not data[key]:
                del data[key]
        for key in ("carbon_usd_per_t", "envelope"):
            if data[key] is None:
                del data[key]
        for workload in data["workloads"]:
            for key, default in WORKLOAD_ECONOMICS_DEFAULTS[workload["type"]].items():
                if workload[key] == default:
                    del workload[key]
        for site in data["sites"]:
            for key, default in SITE_ENERGY_DEFAULTS.items():
                if site[key] == default:
                    del site[key]
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


#: The instance's optional lists (procurement instruments, renewable quotas).
OPTIONAL_LISTS = ("capacity_blocks", "commitments", "contracts", "renewable_quotas")
