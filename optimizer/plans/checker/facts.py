"""What the checker's rules share: the instance by id, the plan's valid allocations summed up,
the costs recomputed so far, and the violations found.  Plain dicts and loops, no numpy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from optimizer.input.schema import Instance

#: Absolute slack on physical limits (chips are exact integers; power and FLOP are floats).
ABS_TOL = 1e-6
#: Relative slack on the same, and on reported cost terms.
REL_TOL = 1e-7


def exceeds(value: float, limit: float) -> bool:
    return value > limit + ABS_TOL + REL_TOL * abs(limit)


def close(a: float, b: float, rel: float = REL_TOL) -> bool:
    return abs(a - b) <= ABS_TOL + rel * max(abs(a), abs(b))


def at(value, hour: int) -> float:
    """An hourly field's value in ``hour`` (a scalar holds in every hour)."""
    return value[hour] if isinstance(value, tuple) else value


def whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass
class Facts:
    instance: Instance
    violations: list[str]
    allocation_rows: list[dict[str, str]] = field(default_factory=list)
    reserved: dict[str, int] = field(default_factory=dict)  # pool id -> chips held
    pool_hour_chips: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    site_hour_kw: dict[tuple[str, int], float] = field(default_factory=lambda: defaultdict(float))
    workload_hour_chips: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    delivered_pflops: dict[tuple[str, int], float] = field(default_factory=lambda: defaultdict(float))
    delivered_eflop: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    sites_used: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    costs: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # cost key -> USD
    #: purchases.csv rows as (kind, start_hour, quantity, usd, where): block purchases by (offer,
    #: start_hour), commitment levels and contract shortfalls by the instrument's id
    block_purchases: dict[tuple[str, int], tuple] = field(default_factory=dict)
    purchases: dict[str, tuple] = field(default_factory=dict)
    coverage: dict[tuple[str, str, int], float] = field(default_factory=dict)  # (commitment, pool, hour) -> chips
    covered_usd: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # pool -> usage a commitment paid
    #: energy.csv by (site, hour): (facility, renewable, certificates, grid, carbon_t or None) MWh / t
    energy: dict[tuple[str, int], tuple] = field(default_factory=dict)
    energy_read: bool = False  # energy.csv was read (its rows are in ``energy``)
    carbon_t: dict[str, float] = field(default_factory=dict)  # site id -> tonnes of CO2 recomputed
    #: quota id -> (facility MWh of its sites, renewable + certified MWh), from energy.csv
    quota_mwh: dict[str, tuple[float, float]] = field(default_factory=dict)
    unmet_pflops_hours: float = 0.0
    short_eflop: float = 0.0
    #: routed services: (workload, variant, hour) -> PFLOP/s of chips running the variant
    variant_pflops: dict[tuple[str, str, int], float] = field(default_factory=lambda: defaultdict(float))
    #: routing.csv: (workload, hour) -> {variant: share}
    shares: dict[tuple[str, int], dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    compute_eflop: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # workload -> chips' EFLOP
    kwh: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # workload -> facility kWh
    own_usd: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # workload -> its chips' usage + energy
    #: pool -> its reservation, block and fixed fees, as the rules that price them recomputed them
    pool_fees_usd: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: (workload, pool) -> chip-hours (a pool's fees are shared by them)
    pool_chip_hours: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        instance = self.instance
        self.hours = instance.hours
        self.chips = {chip.id: chip for chip in instance.chips}
        self.sites = {site.id: site for site in instance.sites}
        self.pools = {pool.id: pool for pool in instance.pools}
        self.workloads = {workload.id: workload for workload in instance.workloads}

    def efficiency(self, workload, variant: str) -> dict[str, float] | None:
        """The chip efficiencies of what the chips run: the workload, or one of its variants (None:
        no such variant)."""
        if not variant:
            return workload.efficiency
        for v in getattr(workload, "variants", ()):
            if v.id == variant:
                return v.efficiency if v.efficiency is not None else workload.efficiency
        return None

    def rate_tflops(self, workload, pool, variant: str = "") -> float:
        """Useful TFLOP/s of one chip of ``pool`` for ``workload`` (running ``variant``)."""
        efficiency = self.efficiency(workload, variant)
        return self.chips[pool.chip].peak_tflops * efficiency[pool.chip] * (1 - pool.interruption_rate)

    @staticmethod
    def flop_per_token(entry) -> float | None:
        """A service's or a variant's FLOP per token as it states it (2 x params where it gives those)."""
        if entry.flop_per_token is not None:
            return entry.flop_per_token
        if entry.model_params_b is not None:
            return 2e9 * entry.model_params_b
        return None

    def reference_flop(self, workload) -> float | None:
        """The FLOP per token a service's PFLOP/s are measured at: its own, else its first variant's."""
        own = self.flop_per_token(workload)
        if own is None and workload.variants:
            return self.flop_per_token(workload.variants[0])
        return own

    def demand_pflops(self, workload, hour: int) -> float:
        if workload.demand_pflops is not None:
            return at(workload.demand_pflops, hour)
        return at(workload.demand_tokens_per_s, hour) * self.reference_flop(workload) / 1e15

    def paying_usd_per_pflops_hour(self, workload) -> float:
        """Paying revenue one reference PFLOP/s-hour served earns (0 without a price)."""
        if workload.revenue_usd_per_mtok is None:
            return 0.0
        mtok = 1e15 * 3600 / self.reference_flop(workload) / 1e6
        return workload.revenue_usd_per_mtok * workload.paying_share * mtok

    def unmet_price(self, workload) -> float | None:
        """USD per PFLOP/s-hour a service's unserved demand costs (None: hard).  Within a budget,
        a priced service's unserved tokens cost their paying revenue."""
        envelope = self.instance.envelope
        if envelope is not None and envelope.budget_usd is not None and workload.revenue_usd_per_mtok is not None:
            return self.paying_usd_per_pflops_hour(workload)
        return workload.unmet_usd_per_pflops_hour
