"""Model data of the economics fields: workload categories, FLOP per token, revenue, routing
variants and the envelope, as index arrays (part of :class:`~optimizer.model.data.ModelData`;
read by the ``routing`` and ``envelope`` families and the accounting; no solver imported here).

A routed service's demand row is measured in PFLOP/s at its reference FLOP per token (its own, or
its first variant's): a variant that needs r times that FLOP per token needs r PFLOP/s of chips
for each reference PFLOP/s of demand it serves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.input.schema import InferenceWorkload, Instance

CATEGORIES = ("inference", "research", "internal")
#: Shares below this are no routing at all (solver noise).
SHARE_NOISE = 1e-12
#: Mtok in one PFLOP/s-hour at F FLOP per token: 1e15 x 3600 / F tokens.
MTOK_PER_PFLOPS_HOUR_FLOP = 3.6e18 / 1e6


@dataclass(frozen=True)
class EconomicsData:
    workload_category: np.ndarray  # [workload] index into CATEGORIES
    workload_tokens_flop: np.ndarray  # [workload] FLOP per token demand is measured at; nan: PFLOP/s only
    #: [workload] paying revenue per reference PFLOP/s-hour served (revenue x paying_share x Mtok per
    #: PFLOP/s-hour); 0 without a price
    revenue_usd_per_pflops_hour: np.ndarray
    workload_paying_share: np.ndarray  # [workload] share of its tokens that pay (1 for a workload without tokens)
    variant_ids: list[str]  # "service/variant" (model names: blocks[chat/draft,pool,hour])
    variant_names: list[str]  # the variant's own id ("draft"), as plan files write it
    variant_workload: np.ndarray  # [variant] -> workload
    variant_ratio: np.ndarray  # [variant] its FLOP per token / the service's reference
    variant_min_share: np.ndarray
    variant_max_share: np.ndarray
    budget_usd: float  # nan: no budget
    floor_category: np.ndarray  # [floor] index into CATEGORIES
    floor_eflop: np.ndarray  # [floor] nan where the floor is a share
    floor_share: np.ndarray  # [floor] nan where the floor is EFLOP

    @property
    def has_budget(self) -> bool:
        return bool(np.isfinite(self.budget_usd))

    @property
    def category_ids(self) -> list[str]:
        return list(CATEGORIES)

    def variant_index(self, workload: int) -> np.ndarray:
        return np.nonzero(self.variant_workload == workload)[0]


def build_economics_data(instance: Instance) -> EconomicsData:
    workloads = instance.workloads
    category = np.array([CATEGORIES.index(w.category) for w in workloads], dtype=np.int64)
    tokens_flop = np.full(len(workloads), np.nan)
    revenue = np.zeros(len(workloads))
    paying = np.ones(len(workloads))
    ids, names, owner, ratio, low, high = [], [], [], [], [], []
    for k, w in enumerate(workloads):
        if not isinstance(w, InferenceWorkload) or w.tokens_flop() is None:
            continue
        tokens_flop[k] = w.tokens_flop()
        paying[k] = w.paying_share
        if w.revenue_usd_per_mtok is not None:
            revenue[k] = w.revenue_usd_per_mtok * w.paying_share * MTOK_PER_PFLOPS_HOUR_FLOP / tokens_flop[k]
        for variant in w.variants:
            ids.append(f"{w.id}/{variant.id}")
            names.append(variant.id)
            owner.append(k)
            ratio.append(variant.tokens_flop() / tokens_flop[k])
            low.append(variant.min_share)
            high.append(variant.max_share)
    envelope = instance.envelope
    floors = list(envelope.floors.items()) if envelope is not None else []
    return EconomicsData(
        workload_category=category,
        workload_tokens_flop=tokens_flop,
        revenue_usd_per_pflops_hour=revenue,
        workload_paying_share=paying,
        variant_ids=ids,
        variant_names=names,
        variant_workload=np.array(owner, dtype=np.int64),
        variant_ratio=np.array(ratio, dtype=float),
        variant_min_share=np.array(low, dtype=float),
        variant_max_share=np.array(high, dtype=float),
        budget_usd=float(envelope.budget_usd) if envelope is not None and envelope.budget_usd is not None else np.nan,
        floor_category=np.array([CATEGORIES.index(c) for c, _ in floors], dtype=np.int64),
        floor_eflop=np.array([f.eflop if f.eflop is not None else np.nan for _, f in floors], dtype=float),
        floor_share=np.array([f.share if f.share is not None else np.nan for _, f in floors], dtype=float),
    )


def routing_shares(e: EconomicsData, n_workloads: int, hours: int, variant: np.ndarray, hour: np.ndarray,
                   routed: np.ndarray) -> np.ndarray:
    """[variant, hour] each variant's share of its service's routed total (0 where the service
    routed nothing), from routed PFLOP/s per (variant, hour); shares below SHARE_NOISE are none."""
    served = np.zeros((len(e.variant_ids), hours))
    served[variant, hour] = np.maximum(routed, 0.0)
    total = np.zeros((n_workloads, hours))
    np.add.at(total, e.variant_workload, served)
    service_total = total[e.variant_workload]
    share = np.divide(served, service_total, out=np.zeros_like(served), where=service_total > 0)
    return np.where(share > SHARE_NOISE, share, 0.0)


def routed_served(e: EconomicsData, share: np.ndarray, variant_pflops: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """[workload, hour] reference PFLOP/s a routed service serves at ``share`` ([variant, hour]):
    what its variants' chips (``variant_pflops``) cover, within ``demand``: min over the variants
    with a share of chips / (share x ratio); 0 where no variant has a share.  The routing family
    settles a solver's plan with it and the accounting counts the plan's tokens with it."""
    need = share * e.variant_ratio[:, None]
    reach = np.divide(variant_pflops, need, out=np.full_like(need, np.inf), where=need > 0)
    most = np.full(demand.shape, np.inf)
    np.minimum.at(most, e.variant_workload, reach)
    has_share = np.zeros(demand.shape, dtype=bool)
    np.logical_or.at(has_share, e.variant_workload, share > 0)
    return np.where(has_share, np.minimum(most, demand), 0.0)
