"""Model data: the instance as index arrays, ready to be turned into any model.

No solver is imported here.  Entities are numbered in file order; hourly
values become ``(entity, hour)`` arrays; the eligible allocations become the
triple arrays ``alloc_workload, alloc_pool, alloc_hour`` (sorted by workload, variant,
pool, hour) (a routed service's once per variant, ``alloc_variant``), each with its per-chip
rate and upper bound in blocks.  Gang-scheduled
training runs get no hourly allocations: their choices are the eligible
``(workload, pool, start hour)`` options in the ``gang_*`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.input.schema import InferenceWorkload, Instance
from optimizer.model.economics import EconomicsData, build_economics_data
from optimizer.model.energy import EnergyData, build_energy_data
from optimizer.model.instruments import InstrumentData, block_reachable, build_instrument_data
from optimizer.units import gang_duration_hours, hourly_array

__all__ = ["ModelData", "build_model_data"]


@dataclass(frozen=True)
class ModelData:
    """Index arrays of one instance.  Units are in the names; blocks are pool blocks."""

    name: str
    hours: int
    chip_ids: list[str]
    site_ids: list[str]
    pool_ids: list[str]
    workload_ids: list[str]

    chip_vendor: list[str]
    chip_peak_tflops: np.ndarray  # [chip]
    chip_power_kw: np.ndarray  # [chip]

    site_cloud: list[str]
    site_pue: np.ndarray  # [site]
    site_power_cap_kw: np.ndarray  # [site, hour], inf where uncapped
    site_energy_usd_per_kwh: np.ndarray  # [site, hour]

    pool_site: np.ndarray  # [pool] -> site index
    pool_chip: np.ndarray  # [pool] -> chip index
    pool_block: np.ndarray  # [pool] chips per block
    pool_usd_per_chip_hour: np.ndarray  # [pool]
    pool_reserved: np.ndarray  # [pool] bool
    pool_available_blocks: np.ndarray  # [pool, hour] whole blocks usable (reserved: most reservable)
    pool_interruption_rate: np.ndarray  # [pool]

    workload_is_inference: np.ndarray  # [workload] bool
    inference_demand_pflops: np.ndarray  # [workload, hour], 0 for training workloads
    unmet_usd_per_pflops_hour: np.ndarray  # [workload], nan = hard (or not inference)
    training_work_eflop: np.ndarray  # [workload], 0 for inference workloads
    short_usd_per_eflop: np.ndarray  # [workload], nan = hard (or not training)
    training_max_chips: np.ndarray  # [workload], inf = no limit
    training_single_site: np.ndarray  # [workload] bool
    training_min_chips: np.ndarray  # [workload], 0 = no minimum
    restart_usd_per_chip: np.ndarray  # [workload], 0 = resizing is free
    #: [pool] what an owned pool's fixed_usd_per_chip_hour costs over the horizon, paid whether
    #: its chips are used or not: a constant of every plan, 0 for other pools
    pool_fixed_usd: np.ndarray

    # Eligible allocations (workload, pool, hour), sorted.
    alloc_workload: np.ndarray
    alloc_pool: np.ndarray
    alloc_hour: np.ndarray
    alloc_rate_tflops: np.ndarray  # useful TFLOP/s of one chip of that pool for that workload
    alloc_max_blocks: np.ndarray  # upper bound of the allocation in blocks
    alloc_variant: np.ndarray  # routed services: the variant the chips run (economics.variant_ids), -1 otherwise

    # Gang-scheduled runs: one entry per eligible (workload, pool, start hour).
    gang_chips: np.ndarray  # [workload], 0 = not a gang run
    gang_workload: np.ndarray
    gang_pool: np.ndarray
    gang_start: np.ndarray  # first hour of the span
    gang_duration: np.ndarray  # hours of the span, D[w,p]
    gang_blocks: np.ndarray  # gang_chips / block of the pool
    gang_rate_tflops: np.ndarray  # useful TFLOP/s of one chip of the pool for the run

    #: Capacity-block offers, commitments and contracts (model/instruments.py).
    instruments: InstrumentData = None  # type: ignore[assignment]  (always set by build_model_data)
    #: Renewable supply, grid carbon, certificates and quotas (model/energy.py).
    energy: EnergyData = None  # type: ignore[assignment]  (always set by build_model_data)
    #: Categories, tokens, revenue, routing variants and the envelope (model/economics.py).
    economics: EconomicsData = None  # type: ignore[assignment]  (always set by build_model_data)

    @property
    def n_alloc(self) -> int:
        return len(self.alloc_workload)

    @property
    def pool_chip_power_kw(self) -> np.ndarray:
        """Facility power of one chip of each pool in use (chip power x site PUE), kW."""
        return self.chip_power_kw[self.pool_chip] * self.site_pue[self.pool_site]

    @property
    def workload_is_gang(self) -> np.ndarray:
        return self.gang_chips > 0

    def gang_spans(self, options: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For gang options (indices), every (option, hour) of their spans, option-major."""
        options = np.asarray(options, dtype=np.int64)
        lengths = self.gang_duration[options]
        option = np.repeat(options, lengths)
        offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return option, self.gang_start[option] + offset

    @property
    def hard_inference(self) -> np.ndarray:
        return self.workload_is_inference & np.isnan(self.unmet_usd_per_pflops_hour)

    @property
    def hard_training(self) -> np.ndarray:
        return ~self.workload_is_inference & np.isnan(self.short_usd_per_eflop)


def build_model_data(instance: Instance) -> ModelData:
    """Number the entities of a validated instance and list its eligible allocations."""
    hours = instance.hours
    chip_index = {chip.id: i for i, chip in enumerate(instance.chips)}
    site_index = {site.id: i for i, site in enumerate(instance.sites)}

    chip_peak = np.array([chip.peak_tflops for chip in instance.chips])
    chip_power = np.array([chip.power_kw for chip in instance.chips])

    site_cap_kw = np.vstack(
        [hourly_array(site.power_cap_mw, hours, missing=np.inf) * 1000.0 for site in instance.sites]
    )
    site_energy = np.vstack([hourly_array(site.energy_usd_per_mwh, hours) / 1000.0 for site in instance.sites])

    pools = instance.pools
    pool_site = np.array([site_index[pool.site] for pool in pools], dtype=np.int64)
    pool_chip = np.array([chip_index[pool.chip] for pool in pools], dtype=np.int64)
    pool_block = np.array([pool.block for pool in pools], dtype=np.int64)
    pool_available_chips = np.vstack([hourly_array(pool.available, hours) for pool in pools]).astype(np.int64)
    pool_available_blocks = pool_available_chips // pool_block[:, None]
    instruments = build_instrument_data(instance)
    # A capacity_block pool's chips are usable only where its offers' blocks could cover them.
    is_block_pool = instruments.pool_capacity_block
    if is_block_pool.any():
        reach = block_reachable(instruments, len(pools), hours)
        pool_available_blocks = np.where(is_block_pool[:, None], np.minimum(pool_available_blocks, reach),
                                         pool_available_blocks).astype(np.int64)
    pool_interruption = np.array([pool.interruption_rate for pool in pools])

    workloads = instance.workloads
    economics = build_economics_data(instance)
    n_workloads = len(workloads)
    is_inference = np.array([isinstance(w, InferenceWorkload) for w in workloads])
    demand = np.zeros((n_workloads, hours))
    unmet_price = np.full(n_workloads, np.nan)
    work = np.zeros(n_workloads)
    short_price = np.full(n_workloads, np.nan)
    max_chips = np.full(n_workloads, np.inf)
    single_site = np.zeros(n_workloads, dtype=bool)
    min_chips = np.zeros(n_workloads, dtype=np.int64)
    restart_price = np.zeros(n_workloads)
    gang_chips = np.zeros(n_workloads, dtype=np.int64)
    # Hours in which each workload may hold chips: a training run's window; an
    # inference service's hours with demand (chips there could only add cost).
    active_hours: list[np.ndarray] = []
    for w, workload in enumerate(workloads):
        if isinstance(workload, InferenceWorkload):
            demand[w] = hourly_array(workload.pflops_demand(), hours)
            if workload.unmet_usd_per_pflops_hour is not None:
                unmet_price[w] = workload.unmet_usd_per_pflops_hour
            if instance.priced_by_budget(workload):
                # Within a budget, a token not served loses the paying revenue it would have earned.
                unmet_price[w] = economics.revenue_usd_per_pflops_hour[w]
            active_hours.append(np.nonzero(demand[w] > 0)[0])
        else:
            work[w] = workload.work_eflop
            if workload.short_usd_per_eflop is not None:
                short_price[w] = workload.short_usd_per_eflop
            if workload.max_chips is not None:
                max_chips[w] = workload.max_chips
            single_site[w] = workload.single_site
            min_chips[w] = workload.min_chips or 0
            restart_price[w] = workload.restart_usd_per_chip or 0.0
            gang_chips[w] = workload.gang_chips or 0
            deadline = workload.deadline_hour if workload.deadline_hour is not None else hours
            active_hours.append(np.arange(workload.release_hour, deadline))

    pool_reserved = np.array([pool.pricing == "reserved" for pool in pools])
    kw_per_chip = chip_power[pool_chip] * np.array([site.pue for site in instance.sites])[pool_site]
    parts: list[tuple[np.ndarray, ...]] = []
    gang_parts: list[tuple[np.ndarray, ...]] = []
    variant_of = {(int(w), name): v for v, (w, name) in enumerate(zip(economics.variant_workload, economics.variant_names))}
    for w, workload in enumerate(workloads):
        allowed_sites = None if workload.sites is None else set(workload.sites)
        hours_active = active_hours[w]
        models = workload.models() if isinstance(workload, InferenceWorkload) else [(None, workload.efficiency)]
        for variant, efficiency in models:
            v = -1 if variant is None else variant_of[(w, variant.id)]
            for p, pool in enumerate(pools):
                if pool.chip not in efficiency:
                    continue
                if allowed_sites is not None and pool.site not in allowed_sites:
                    continue
                if gang_chips[w]:
                    rate = chip_peak[pool_chip[p]] * efficiency[pool.chip] * (1 - pool.interruption_rate)
                    starts, duration = _gang_starts(
                        int(gang_chips[w]), rate, float(work[w]), hours_active, pool_available_blocks[p],
                        pool.block, bool(pool_reserved[p]), site_cap_kw[pool_site[p]], kw_per_chip[p],
                    )
                    # Starts only on the run's scheduling grid: release_hour + k x gang_start_step_hours.
                    starts = starts[(starts - workload.release_hour) % (workload.gang_start_step_hours or 1) == 0]
                    if len(starts):
                        n = len(starts)
                        gang_parts.append(
                            (np.full(n, w), np.full(n, p), starts, np.full(n, duration),
                             np.full(n, gang_chips[w] // pool.block), np.full(n, rate))
                        )
                    continue
                bound = pool_available_blocks[p, hours_active]
                if np.isfinite(max_chips[w]):
                    bound = np.minimum(bound, int(max_chips[w]) // pool.block)
                keep = bound > 0
                if not keep.any():
                    continue
                rate = chip_peak[pool_chip[p]] * efficiency[pool.chip] * (1 - pool.interruption_rate)
                count = int(keep.sum())
                parts.append(
                    (
                        np.full(count, w, dtype=np.int64),
                        np.full(count, p, dtype=np.int64),
                        hours_active[keep].astype(np.int64),
                        np.full(count, rate),
                        bound[keep].astype(np.int64),
                        np.full(count, v, dtype=np.int64),
                    )
                )
    if parts:
        alloc = [np.concatenate(column) for column in zip(*parts)]
    else:
        alloc = [np.zeros(0, dtype=np.int64)] * 3 + [np.zeros(0)] + [np.zeros(0, dtype=np.int64)] * 2
    if gang_parts:
        gang = [np.concatenate(column) for column in zip(*gang_parts)]
        gang = [column.astype(np.int64) for column in gang[:5]] + [gang[5].astype(float)]
    else:
        gang = [np.zeros(0, dtype=np.int64)] * 5 + [np.zeros(0)]

    return ModelData(
        name=instance.name,
        hours=hours,
        chip_ids=[chip.id for chip in instance.chips],
        site_ids=[site.id for site in instance.sites],
        pool_ids=[pool.id for pool in pools],
        workload_ids=[workload.id for workload in workloads],
        chip_vendor=[chip.vendor for chip in instance.chips],
        chip_peak_tflops=chip_peak,
        chip_power_kw=chip_power,
        site_cloud=[site.cloud for site in instance.sites],
        site_pue=np.array([site.pue for site in instance.sites]),
        site_power_cap_kw=site_cap_kw,
        site_energy_usd_per_kwh=site_energy,
        pool_site=pool_site,
        pool_chip=pool_chip,
        pool_block=pool_block,
        pool_usd_per_chip_hour=np.array([pool.usd_per_chip_hour for pool in pools]),
        pool_reserved=pool_reserved,
        pool_available_blocks=pool_available_blocks,
        pool_interruption_rate=pool_interruption,
        workload_is_inference=is_inference,
        inference_demand_pflops=demand,
        unmet_usd_per_pflops_hour=unmet_price,
        training_work_eflop=work,
        short_usd_per_eflop=short_price,
        training_max_chips=max_chips,
        training_single_site=single_site,
        training_min_chips=min_chips,
        restart_usd_per_chip=restart_price,
        pool_fixed_usd=np.array([(pool.fixed_usd_per_chip_hour or 0.0) * float(np.sum(hourly_array(pool.available, hours)))
                                 for pool in pools]),
        alloc_workload=alloc[0],
        alloc_pool=alloc[1],
        alloc_hour=alloc[2],
        alloc_rate_tflops=alloc[3],
        alloc_max_blocks=alloc[4],
        alloc_variant=alloc[5],
        gang_chips=gang_chips,
        gang_workload=gang[0],
        gang_pool=gang[1],
        gang_start=gang[2],
        gang_duration=gang[3],
        gang_blocks=gang[4],
        gang_rate_tflops=gang[5],
        instruments=instruments,
        energy=build_energy_data(instance),
        economics=economics,
    )


def _gang_starts(
    chips: int,
    rate_tflops: float,
    work_eflop: float,
    window: np.ndarray,
    available_blocks: np.ndarray,
    block: int,
    reserved: bool,
    site_cap_kw: np.ndarray,
    kw_per_chip: float,
) -> tuple[np.ndarray, int]:
    """Start hours s at which the run fits in the pool: s + D inside the window, and in every hour
    of the span the pool has the run's blocks (reserved: can reserve them) and the site's cap
    could power its chips alone.  Returns (starts, D)."""
    duration = gang_duration_hours(work_eflop, chips, rate_tflops)
    if len(window) < duration:
        return np.zeros(0, dtype=np.int64), duration
    first, last = int(window[0]), int(window[-1]) + 1  # a training window is contiguous
    blocks = chips // block
    hours = np.arange(first, last)
    if reserved:
        fits = np.full(len(hours), available_blocks[0] >= blocks)
    else:
        fits = available_blocks[hours] >= blocks
    fits &= chips * kw_per_chip <= site_cap_kw[hours] * (1 + 1e-12)
    misses = np.concatenate([[0], np.cumsum(~fits)])
    starts = np.arange(0, len(hours) - duration + 1)
    ok = misses[starts + duration] - misses[starts] == 0
    return (hours[starts[ok]]).astype(np.int64), duration
