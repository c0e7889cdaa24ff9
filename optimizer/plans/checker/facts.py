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

    def __post_init__(self) -> None:
        instance = self.instance
        self.hours = instance.hours
        self.chips = {chip.id: chip for chip in instance.chips}
        self.sites = {site.id: site for site in instance.sites}
        self.pools = {pool.id: pool for pool in instance.pools}
        self.workloads = {workload.id: workload for workload in instance.workloads}

    def rate_tflops(self, workload, pool) -> float:
        """Useful TFLOP/s of one chip of ``pool`` for ``workload``."""
        return self.chips[pool.chip].peak_tflops * workload.efficiency[pool.chip] * (1 - pool.interruption_rate)
