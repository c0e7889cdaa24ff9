"""The industry's rule of thumb as a baseline plan: "route each hour's demand to the lowest
$/FLOP device available".

1. Inference, hour by hour (hard workloads first, then by unmet price, highest first): fill each
   workload's demand from its eligible pools in order of USD per useful PFLOP/s-hour (chip price
   plus energy), in whole blocks, within pool capacity and site power.  A soft workload gets a
   block only if the block costs less than leaving that demand unmet.
2. Training, run by run (hard first, then by deadline): place the work in the cheapest
   (pool, hour) slots left in its window, in order of USD per useful EFLOP, within capacity,
   power and ``max_chips``; an hour left below the run's ``min_chips`` is topped up from that
   hour's cheapest slots, or given back when it cannot be.  A single-site run tries every eligible site and keeps the cheapest
   that finishes (or the one that delivers most).  A priced run only buys slots cheaper than its
   shortfall price.  A gang run takes the cheapest (pool, start) whose whole span still has its
   chips and power, if that costs less than its shortfall (or it is hard).
3. Greedy rents by the hour and never commits: reserved and capacity-block pools are not used,
   and it buys no commitment (a level bought already is paid, and pays for the usage it covers,
   as the bill would apply it).

The plan is accounted by the same code as a solved plan, so it can be written and checked.  If
greedy leaves hard demand unserved, its status is ``infeasible`` and the frames say how much.

:func:`buy_to_average_plan` is the procurement rule of thumb on top: the greedy plan, with each
commitment not bought yet set to the mean hourly usage greedy makes of its pools over its
window (usage: whole chips, rounded down; spend: USD/hour at the discounted rate), applied to
that usage as the bill would.  What it pays above the solved plan is what the rule of thumb
leaves on the table.
"""

from __future__ import annotations

import math
import time

import numpy as np

from optimizer.model.data import ModelData, build_model_data
from optimizer.plans.accounting import account_plan
from optimizer.plans.economics import Routing
from optimizer.plans.instruments import Bought, applied_coverage
from optimizer.plans.plan import Plan
from optimizer.solvers.result import SolveStatus
from optimizer.input.schema import Instance
from optimizer.units import EFLOP_PER_TFLOPS_HOUR


class _State:
    def __init__(self, data: ModelData):
        bought_only = data.pool_reserved | data.instruments.pool_capacity_block  # nothing to rent by the hour
        self.blocks_left = np.where(bought_only[:, None], 0, data.pool_available_blocks).astype(np.int64)
        self.power_left_kw = data.site_power_cap_kw.copy()
        self.chips = np.zeros(data.n_alloc, dtype=np.int64)
        self.gang_started = np.zeros(len(data.gang_workload), dtype=bool)

    def copy(self) -> "_State":
        other = object.__new__(_State)
        other.blocks_left = self.blocks_left.copy()
        other.power_left_kw = self.power_left_kw.copy()
        other.chips = self.chips.copy()
        other.gang_started = self.gang_started.copy()
        return other


def _room_in_blocks(data: ModelData, state: _State, k: int, kw_per_block: np.ndarray) -> int:
    p, t = data.alloc_pool[k], data.alloc_hour[k]
    room = min(int(state.blocks_left[p, t]), int(data.alloc_max_blocks[k]) - int(state.chips[k] // data.pool_block[p]))
    power = state.power_left_kw[data.pool_site[p], t]
    if math.isfinite(power):
        room = min(room, int(math.floor(power / kw_per_block[p] + 1e-9)))
    return max(room, 0)


def _take(data: ModelData, state: _State, k: int, blocks: int, kw_per_block: np.ndarray) -> None:
    p, t = data.alloc_pool[k], data.alloc_hour[k]
    state.blocks_left[p, t] -= blocks
    state.power_left_kw[data.pool_site[p], t] -= blocks * kw_per_block[p]
    state.chips[k] += blocks * data.pool_block[p]


def _serve_inference(data: ModelData, state: _State, usd_per_chip_hour: np.ndarray, kw_per_block: np.ndarray) -> Routing:
    rate_pflops = data.alloc_rate_tflops / 1000.0
    usd_per_pflops_hour = usd_per_chip_hour / rate_pflops
    inference = [w for w in range(len(data.workload_ids)) if data.workload_is_inference[w]]
    # Hard first (nan price), then the most expensive to leave unmet.
    inference.sort(key=lambda w: (not np.isnan(data.unmet_usd_per_pflops_hour[w]), -np.nan_to_num(data.unmet_usd_per_pflops_hour[w])))
    by_workload_hour: dict[tuple[int, int, int], list[int]] = {}
    for k in range(data.n_alloc):
        key = (int(data.alloc_workload[k]), int(data.alloc_variant[k]), int(data.alloc_hour[k]))
        by_workload_hour.setdefault(key, []).append(k)
    routing = greedy_routing(data)
    e = data.economics
    for t in range(data.hours):
        for w in inference:
            variants = e.variant_index(w)
            # A routed service: each variant serves its fixed share of the demand at its FLOP per token.
            parts = [(int(v), routing.share[v, t] * e.variant_ratio[v]) for v in variants] or [(-1, 1.0)]
            for v, scale in parts:
                need = float(data.inference_demand_pflops[w, t]) * scale
                penalty = data.unmet_usd_per_pflops_hour[w] / (e.variant_ratio[v] if v >= 0 else 1.0)
                for k in sorted(by_workload_hour.get((w, v, t), []), key=lambda k: (usd_per_pflops_hour[k], k)):
                    if need <= 1e-9:
                        break
                    p = data.alloc_pool[k]
                    pflops_per_block = rate_pflops[k] * data.pool_block[p]
                    wanted = math.ceil(need / pflops_per_block - 1e-9)
                    blocks = min(wanted, _room_in_blocks(data, state, k, kw_per_block))
                    if not np.isnan(penalty):
                        # Buy only blocks that cost less than the demand they serve would cost unmet.
                        block_cost = usd_per_chip_hour[k] * data.pool_block[p]
                        while blocks > 0 and block_cost > penalty * min(need - (blocks - 1) * pflops_per_block, pflops_per_block):
                            blocks -= 1
                    if blocks > 0:
                        _take(data, state, k, blocks, kw_per_block)
                        need -= blocks * pflops_per_block
    return routing


def greedy_routing(data: ModelData) -> Routing:
    """Greedy's fixed routing: every variant its min_share, the rest to the variants with the
    least FLOP per token first, each up to its max_share (the same shares in every hour with demand)."""
    e = data.economics
    share = np.zeros((len(e.variant_ids), data.hours))
    for w in np.unique(e.variant_workload):
        variants = e.variant_index(int(w))
        mine = e.variant_min_share[variants].copy()
        left = 1.0 - mine.sum()
        for k in np.argsort(e.variant_ratio[variants], kind="stable"):
            add = min(left, e.variant_max_share[variants[k]] - mine[k])
            mine[k] += add
            left -= add
        hours = data.inference_demand_pflops[w] > 0
        share[np.ix_(variants, np.nonzero(hours)[0])] = mine[:, None]
    return Routing(share)


def _place_training(data: ModelData, state: _State, w: int, slots: np.ndarray, usd_per_eflop: np.ndarray, kw_per_block: np.ndarray) -> float:
    """Fill run ``w`` from ``slots`` (cheapest first); return the EFLOP delivered."""
    eflop_per_chip = data.alloc_rate_tflops * EFLOP_PER_TFLOPS_HOUR
    max_chips = data.training_max_chips[w]
    chips_in_hour: dict[int, int] = {}
    for k in np.nonzero(data.alloc_workload == w)[0]:
        chips_in_hour[int(data.alloc_hour[k])] = chips_in_hour.get(int(data.alloc_hour[k]), 0) + int(state.chips[k])
    remaining = float(data.training_work_eflop[w]) - float(np.sum(state.chips[data.alloc_workload == w] * eflop_per_chip[data.alloc_workload == w]))
    price = data.short_usd_per_eflop[w]
    for k in slots:
        if remaining <= 1e-9:
            break
        if not np.isnan(price) and usd_per_eflop[k] >= price:
            break  # slots are sorted: every later one costs more than the shortfall
        p, t = data.alloc_pool[k], int(data.alloc_hour[k])
        block = int(data.pool_block[p])
        room = _room_in_blocks(data, state, k, kw_per_block)
        if np.isfinite(max_chips):
            room = min(room, (int(max_chips) - chips_in_hour.get(t, 0)) // block)
        blocks = min(room, math.ceil(remaining / (eflop_per_chip[k] * block) - 1e-9))
        if blocks > 0:
            _take(data, state, k, blocks, kw_per_block)
            chips_in_hour[t] = chips_in_hour.get(t, 0) + blocks * block
            remaining -= blocks * block * eflop_per_chip[k]
    return float(data.training_work_eflop[w]) - max(remaining, 0.0)


def _give_back(data: ModelData, state: _State, k: int, kw_per_block: np.ndarray) -> None:
    p, t = data.alloc_pool[k], data.alloc_hour[k]
    blocks = int(state.chips[k] // data.pool_block[p])
    state.blocks_left[p, t] += blocks
    state.power_left_kw[data.pool_site[p], t] += blocks * kw_per_block[p]
    state.chips[k] = 0


def _hold_min_chips(data: ModelData, state: _State, w: int, slots: np.ndarray, kw_per_block: np.ndarray) -> None:
    """An hour where run ``w`` holds fewer than its min_chips: top it up from that hour's cheapest
    slots, or, where the hour cannot reach min_chips, give its chips back (the work moves to
    the shortfall)."""
    least = int(data.training_min_chips[w])
    if not least:
        return
    for t in np.unique(data.alloc_hour[slots]):
        here = slots[data.alloc_hour[slots] == t]
        held = int(state.chips[here].sum())
        if held == 0 or held >= least:
            continue
        trial = state.copy()
        for k in here:  # cheapest first
            block = int(data.pool_block[data.alloc_pool[k]])
            room = min(_room_in_blocks(data, trial, k, kw_per_block),
                       (int(min(data.training_max_chips[w], 1e12)) - held) // block)
            blocks = min(room, math.ceil((least - held) / block))
            if blocks > 0:
                _take(data, trial, k, blocks, kw_per_block)
                held += blocks * block
            if held >= least:
                break
        if held >= least:
            state.__dict__.update(trial.__dict__)
        else:
            for k in here:
                _give_back(data, state, k, kw_per_block)


def _place_gang(data: ModelData, state: _State, w: int, kw_per_block: np.ndarray) -> None:
    """Start gang run ``w`` at its cheapest option that still fits (rented pools only)."""
    best: tuple[float, int] | None = None
    for o in np.nonzero(data.gang_workload == w)[0]:
        p = int(data.gang_pool[o])
        if data.pool_reserved[p]:
            continue
        span = np.arange(data.gang_start[o], data.gang_start[o] + data.gang_duration[o])
        site = data.pool_site[p]
        need_kw = data.gang_blocks[o] * kw_per_block[p]
        if np.any(state.blocks_left[p, span] < data.gang_blocks[o]) or np.any(state.power_left_kw[site, span] < need_kw - 1e-9):
            continue
        energy = data.pool_chip_power_kw[p] * data.site_energy_usd_per_kwh[site, span]
        cost = float(data.gang_chips[w] * np.sum(data.pool_usd_per_chip_hour[p] + energy))
        if best is None or (cost, int(o)) < best:
            best = (cost, int(o))
    price = data.short_usd_per_eflop[w]
    if best is None or (not np.isnan(price) and best[0] >= price * data.training_work_eflop[w]):
        return
    o = best[1]
    p = int(data.gang_pool[o])
    span = np.arange(data.gang_start[o], data.gang_start[o] + data.gang_duration[o])
    state.blocks_left[p, span] -= data.gang_blocks[o]
    state.power_left_kw[data.pool_site[p], span] -= data.gang_blocks[o] * kw_per_block[p]
    state.gang_started[o] = True


def _place_trainings(data: ModelData, state: _State, usd_per_chip_hour: np.ndarray, kw_per_block: np.ndarray) -> _State:
    usd_per_eflop = usd_per_chip_hour / (data.alloc_rate_tflops * EFLOP_PER_TFLOPS_HOUR)
    runs = [w for w in range(len(data.workload_ids)) if not data.workload_is_inference[w]]
    deadline = np.zeros(len(data.workload_ids))
    for w in runs:
        hours = data.alloc_hour[data.alloc_workload == w]
        ends = (data.gang_start + data.gang_duration)[data.gang_workload == w]
        deadline[w] = hours.max() if len(hours) else (ends.max() if len(ends) else 0)
    runs.sort(key=lambda w: (not np.isnan(data.short_usd_per_eflop[w]), deadline[w], w))
    for w in runs:
        if data.workload_is_gang[w]:
            _place_gang(data, state, w, kw_per_block)
            continue
        mine = np.nonzero(data.alloc_workload == w)[0]
        order = mine[np.lexsort((mine, usd_per_eflop[mine]))]
        if not data.training_single_site[w]:
            _place_training(data, state, w, order, usd_per_eflop, kw_per_block)
            _hold_min_chips(data, state, w, order, kw_per_block)
            continue
        best: tuple[tuple[float, float], _State] | None = None
        for site in np.unique(data.pool_site[data.alloc_pool[order]]):
            trial = state.copy()
            in_site = order[data.pool_site[data.alloc_pool[order]] == site]
            _place_training(data, trial, w, in_site, usd_per_eflop, kw_per_block)
            _hold_min_chips(data, trial, w, in_site, kw_per_block)
            delivered = float(np.sum(trial.chips[in_site] * data.alloc_rate_tflops[in_site])) * EFLOP_PER_TFLOPS_HOUR
            short = max(float(data.training_work_eflop[w]) - delivered, 0.0)
            spent = float(np.sum((trial.chips - state.chips)[in_site] * usd_per_chip_hour[in_site]))
            penalty = short * np.nan_to_num(data.short_usd_per_eflop[w], nan=1e12)
            key = (spent + penalty, float(site))
            if best is None or key < best[0]:
                best = (key, trial)
        if best is not None:
            state = best[1]
    return state


def greedy_plan(instance: Instance) -> Plan:
    """The greedy baseline plan (see the module docstring), accounted like a solved plan."""
    return _greedy(instance, buy_to_average=False)


def buy_to_average_plan(instance: Instance) -> Plan:
    """Greedy's allocations with every open commitment bought at greedy's mean usage of its pools."""
    return _greedy(instance, buy_to_average=True)


def _average_levels(data: ModelData, in_use: np.ndarray) -> np.ndarray:
    """Each commitment's level: as bought, or the mean over its window of its pools' usage in
    ``in_use`` ([pool, hour] chips): whole chips rounded down, or discounted USD/hour."""
    i = data.instruments
    levels = Bought.none(data).levels.copy()
    for c in np.nonzero(np.isnan(i.commitment_level))[0]:
        pools = i.cover_pool[i.cover_commitment == c]
        window = slice(int(i.commitment_start_hour[c]), int(i.commitment_end_hour[c]))
        if i.commitment_spend[c]:
            usd = (1 - i.commitment_discount[c]) * data.pool_usd_per_chip_hour[pools, None] * in_use[pools, window]
            level = float(usd.sum(axis=0).mean())
        else:
            level = float(np.floor(in_use[pools, window].sum(axis=0).mean() + 1e-9))
        levels[c] = min(level, i.commitment_max_level[c])
    return levels


def _greedy(instance: Instance, buy_to_average: bool) -> Plan:
    started = time.perf_counter()
    data = build_model_data(instance)
    pool = data.alloc_pool
    energy_usd_per_kwh = data.site_energy_usd_per_kwh[data.pool_site[pool], data.alloc_hour]
    usd_per_chip_hour = data.pool_usd_per_chip_hour[pool] + data.pool_chip_power_kw[pool] * energy_usd_per_kwh
    kw_per_block = data.pool_block * data.pool_chip_power_kw
    state = _State(data)
    routing = _serve_inference(data, state, usd_per_chip_hour, kw_per_block)
    state = _place_trainings(data, state, usd_per_chip_hour, kw_per_block)

    plan = Plan(
        instance=instance.name,
        instance_sha256=instance.sha256(),
        engine="greedy",
        status=SolveStatus.FEASIBLE,
        solve_seconds=time.perf_counter() - started,
        objective_usd=None,
        bound_usd=None,  # greedy proves nothing
        gap=None,
        details={"method": "greedy: lowest USD per useful FLOP first, hour by hour; no reservations"
                           + ("; commitments bought at greedy's mean usage" if buy_to_average else "")},
    )
    bought = None  # greedy: only what was bought already, applied as the bill would
    if buy_to_average:
        plan.engine = "buy-to-average"
        option, span_hour = data.gang_spans(np.nonzero(state.gang_started)[0])
        in_use = np.zeros((len(data.pool_ids), data.hours))
        np.add.at(in_use, (data.alloc_pool, data.alloc_hour), state.chips)
        np.add.at(in_use, (data.gang_pool[option], span_hour), data.gang_chips[data.gang_workload[option]])
        bought = applied_coverage(data, _average_levels(data, in_use), in_use)
    account_plan(plan, data, state.chips, np.zeros(len(data.pool_ids), dtype=np.int64), gang_started=state.gang_started,
                 bought=bought, routing=routing)
    plan.objective_usd = plan.cost_usd["total"]
    hard_unmet = plan.unmet[plan.unmet.workload.isin([data.workload_ids[w] for w in np.nonzero(data.hard_inference)[0]])]
    hard_short = plan.shortfall[
        plan.shortfall.workload.isin([data.workload_ids[w] for w in np.nonzero(data.hard_training)[0]])
        & (plan.shortfall.short_eflop > 0)
    ]
    if len(hard_unmet) or len(hard_short):
        plan.status = SolveStatus.INFEASIBLE  # greedy could not serve the hard demand; frames say how much
    return plan
