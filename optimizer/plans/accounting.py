"""The one accounting layer: cost terms, delivered compute and USD per EFLOP, defined once.

Used by every plan chipmix makes (a solved plan, greedy's, the lock-in table, the report), so
they all count the same way.  Every number of a plan is recomputed here from whole chips, never
taken from a solver's objective.  (The independent checker states the same rules again in its
own code, on purpose: it shares nothing with this module.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from optimizer.input.schema import Instance
from optimizer.model.data import ModelData
from optimizer.model.families import cost_terms
from optimizer.model.economics import routed_served
from optimizer.plans.economics import Routing, economics_summary, routing_table
from optimizer.plans.energy import EnergySplit, cheapest_split, energy_costs, energy_summary, energy_table, facility_mwh
from optimizer.plans.instruments import (
    Bought, applied_coverage, block_fees, commitment_fees, contract_shortfalls, covered_usd_by_pool, coverage_table, purchase_table,
)
from optimizer.units import EFLOP_PER_PFLOPS_HOUR, EFLOP_PER_TFLOPS_HOUR

if TYPE_CHECKING:
    from optimizer.plans.plan import Plan

#: The cost breakdown's keys, in order: every family's cost term, then their sum.
COST_TERMS = cost_terms()
COST_KEYS: tuple[str, ...] = tuple(term.key for term in COST_TERMS) + ("total",)
#: Terms that are money paid for compute (the rest price what was not served).
SPEND_KEYS: tuple[str, ...] = tuple(term.key for term in COST_TERMS if term.spend)

#: Demand or work missed by no more than this is served (the checker's slack, stated again here:
#: the checker shares no code with the solve path).
SERVED_SLACK_ABS, SERVED_SLACK_REL = 1e-6, 1e-7


def total_demand(instance: Instance) -> tuple[float, float]:
    """(inference demand in PFLOP/s-hours, training work in EFLOP) of the instance."""
    pflops_hours = 0.0
    for workload in instance.workloads:
        if workload.type == "inference":
            values = workload.pflops_demand()
            pflops_hours += sum(values) if isinstance(values, tuple) else values * instance.hours
    return pflops_hours, float(sum(w.work_eflop for w in instance.workloads if w.type == "training"))


def delivered_eflop(instance: Instance, unmet_pflops_hours: float, short_eflop: float) -> float:
    """EFLOP a plan delivers: inference demand served (PFLOP/s-hours x 3.6) plus training work done."""
    pflops_hours, work_eflop = total_demand(instance)
    return (pflops_hours - unmet_pflops_hours) * EFLOP_PER_PFLOPS_HOUR + work_eflop - short_eflop


def spend_usd(cost_usd: dict[str, float]) -> float:
    """What a plan pays for compute: every spend term (usage, reservations, energy), no penalties."""
    return sum(cost_usd.get(key, 0.0) for key in SPEND_KEYS)


def usd_per_delivered_eflop(cost_usd: dict[str, float], delivered: float) -> float | None:
    return spend_usd(cost_usd) / delivered if delivered > 0 else None


def unit_economics(instance: Instance, cost_usd: dict[str, float], unmet_pflops_hours: float,
                   short_eflop: float) -> dict[str, Any]:
    """delivered_eflop and usd_per_delivered_eflop of a plan, as the lock-in table and report show them."""
    delivered = delivered_eflop(instance, unmet_pflops_hours, short_eflop)
    return {"delivered_eflop": delivered, "usd_per_delivered_eflop": usd_per_delivered_eflop(cost_usd, delivered)}


def restart_usd(data: ModelData, workload: np.ndarray, hour: np.ndarray, chips: np.ndarray) -> float:
    """Chips added to each run from one hour to the next (hours >= 1), at its restart_usd_per_chip."""
    held = np.zeros((len(data.workload_ids), data.hours))
    np.add.at(held, (workload, hour), chips)
    added = np.maximum(np.diff(held, axis=1), 0.0)
    return float(np.sum(added * data.restart_usd_per_chip[:, None]))


def account_plan(
    plan: Plan,
    data: ModelData,
    chips: np.ndarray,
    reserved_chips: np.ndarray,
    gang_started: np.ndarray | None = None,
    model_costs: dict[str, float] | None = None,
    bought: Bought | None = None,
    energy_split: EnergySplit | None = None,
    routing: Routing | None = None,
) -> None:
    """Fill the plan's frames, costs and unmet demand from whole chips per eligible allocation.

    ``chips`` is aligned with ``data.alloc_*``; ``reserved_chips`` with ``data.pool_ids``;
    ``gang_started`` (bool) with ``data.gang_*``: a started gang run holds its chips in every
    hour of its span; ``bought`` is what the plan buys of the instruments and the usage its
    commitments pay for (None: nothing beyond what was bought already, applied to the plan's
    usage as a bill would).  Every number is recomputed from these, never taken from a solver's
    objective.
    """
    if gang_started is None:
        gang_started = np.zeros(len(data.gang_workload), dtype=bool)
    routing = routing if routing is not None else Routing.none(data)
    option, span_hour = data.gang_spans(np.nonzero(gang_started)[0])
    pool = np.concatenate([data.alloc_pool, data.gang_pool[option]])
    hour = np.concatenate([data.alloc_hour, span_hour])
    workload = np.concatenate([data.alloc_workload, data.gang_workload[option]])
    variant = np.concatenate([data.alloc_variant, np.full(len(option), -1, dtype=np.int64)])
    rate_tflops = np.concatenate([data.alloc_rate_tflops, data.gang_rate_tflops[option]])
    chips = np.concatenate([chips, data.gang_chips[data.gang_workload[option]]]).astype(np.int64)
    used = chips > 0
    if bought is None:
        in_use = np.zeros((len(data.pool_ids), data.hours))
        np.add.at(in_use, (pool, hour), chips)
        bought = applied_coverage(data, Bought.none(data).levels, in_use)
    plan.allocations = pd.DataFrame(
        {
            "hour": hour[used],
            "workload": np.asarray(data.workload_ids, dtype=object)[workload[used]],
            "pool": np.asarray(data.pool_ids, dtype=object)[pool[used]],
            "chips": chips[used],
            "variant": [data.economics.variant_names[v] if v >= 0 else "" for v in variant[used]],
            "_w": workload[used],
            "_v": variant[used],
            "_p": pool[used],
        }
    ).sort_values(["hour", "_w", "_v", "_p"], kind="stable").drop(columns=["_w", "_v", "_p"]).reset_index(drop=True)
    (reserved_pools,) = np.nonzero(data.pool_reserved)
    plan.reservations = pd.DataFrame(
        {"pool": [data.pool_ids[p] for p in reserved_pools], "chips": reserved_chips[reserved_pools]}
    )

    # Delivered compute, from the rounded plan.
    delivered_pflops = np.zeros((len(data.workload_ids), data.hours))
    plain = variant < 0
    np.add.at(delivered_pflops, (workload[plain], hour[plain]), chips[plain] * rate_tflops[plain] / 1000.0)
    # A routed service serves what its variants' chips cover at the plan's shares.
    variant_pflops = np.zeros((len(data.economics.variant_ids), data.hours))
    np.add.at(variant_pflops, (variant[~plain], hour[~plain]), chips[~plain] * rate_tflops[~plain] / 1000.0)
    routed = np.zeros(len(data.workload_ids), dtype=bool)
    routed[data.economics.variant_workload] = True
    served_routed = routed_served(data.economics, routing.share, variant_pflops, data.inference_demand_pflops)
    delivered_pflops = np.where(routed[:, None], served_routed, delivered_pflops)
    plan.routing = routing_table(data, routing)
    unmet = np.where(
        data.workload_is_inference[:, None],
        np.maximum(data.inference_demand_pflops - delivered_pflops, 0.0),
        0.0,
    )
    # A gap within the rows' slack (1e-6 + 1e-7 of the demand, as the checker allows) is served:
    # counting it as unmet would price float noise, and the checker would not recompute it.
    unmet[unmet <= SERVED_SLACK_ABS + SERVED_SLACK_REL * data.inference_demand_pflops] = 0.0
    work_done_eflop = np.zeros(len(data.workload_ids))
    np.add.at(work_done_eflop, workload, chips * rate_tflops * EFLOP_PER_TFLOPS_HOUR)
    short = np.where(data.workload_is_inference, 0.0, np.maximum(data.training_work_eflop - work_done_eflop, 0.0))
    short[short <= SERVED_SLACK_ABS + SERVED_SLACK_REL * data.training_work_eflop] = 0.0

    w_unmet, t_unmet = np.nonzero(unmet)
    plan.unmet = pd.DataFrame(
        {
            "workload": [data.workload_ids[w] for w in w_unmet],
            "hour": t_unmet,
            "unmet_pflops": unmet[w_unmet, t_unmet],
        }
    )
    (training,) = np.nonzero(~data.workload_is_inference)
    plan.shortfall = pd.DataFrame(
        {"workload": [data.workload_ids[w] for w in training], "short_eflop": short[training]}
    )

    usage_price = np.where(data.pool_reserved[pool], 0.0, data.pool_usd_per_chip_hour[pool])
    usage_row = chips * usage_price
    usage_by_pool = np.bincount(pool, weights=usage_row, minlength=len(data.pool_ids))
    covered = covered_usd_by_pool(data, bought)
    usage = float(np.sum(usage_row) - covered.sum())  # commitments pay for the covered chips
    shortfalls = contract_shortfalls(data, bought, usage_by_pool, reserved_chips)
    plan.purchases = purchase_table(data, bought, shortfalls)
    plan.coverage = coverage_table(data, bought)
    reserved = float(np.sum(reserved_chips * data.pool_usd_per_chip_hour) * data.hours)
    kwh_row = chips * data.pool_chip_power_kw[pool]  # facility kWh of each allocation's hour
    energy_row = kwh_row * data.site_energy_usd_per_kwh[data.pool_site[pool], hour]
    energy = float(np.sum(energy_row))
    facility = facility_mwh(data, pool, hour, chips)
    plan.energy = energy_table(data, facility, energy_split or cheapest_split(data, facility))
    plan.energy_summary = energy_summary(data, plan.energy)
    split_costs = energy_costs(data, plan.energy)
    energy += split_costs["energy_delta"]
    blocks_usd = block_fees(data, bought)  # per start: the blocks term, and the fees of their pools
    penalty = float(
        np.sum(unmet.sum(axis=1) * np.nan_to_num(data.unmet_usd_per_pflops_hour))
        + np.sum(short * np.nan_to_num(data.short_usd_per_eflop))
    )
    # A family's own cost term (beyond these) is priced by its declared cost terms at the plan's
    # whole-number decisions; a plan with no model values (greedy) buys none of it.
    base = {"usage": usage, "reserved": reserved, "energy": energy, "penalty": penalty,
            "blocks": float(blocks_usd.sum()), "commitments": float(commitment_fees(data, bought).sum()),
            "contract_shortfall": float(shortfalls.sum()), "restarts": restart_usd(data, workload, hour, chips),
            "fixed": float(data.pool_fixed_usd.sum()), "certificates": split_costs["certificates"],
            "carbon": split_costs["carbon"]}
    costs = {term.key: base[term.key] if term.key in base else float((model_costs or {}).get(term.key, 0.0))
             for term in COST_TERMS}
    costs["total"] = sum(costs.values())  # added in COST_TERMS order, the base terms first
    plan.cost_usd = costs
    plan.unmet_pflops_hours = float(unmet.sum())
    i = data.instruments
    pool_fees = reserved_chips * data.pool_usd_per_chip_hour * data.hours + data.pool_fixed_usd
    np.add.at(pool_fees, i.offer_pool[i.start_offer], blocks_usd)
    served = np.where(data.workload_is_inference[:, None], data.inference_demand_pflops - unmet, 0.0)
    plan.economics = economics_summary(data, workload=workload, pool=pool, chips=chips, rate_tflops=rate_tflops,
                                       own_usd=usage_row + energy_row, kwh=kwh_row, served_pflops=served,
                                       cost_usd=costs, spend_keys=SPEND_KEYS, pool_fees_usd=pool_fees)
    plan.short_eflop = float(short.sum())
