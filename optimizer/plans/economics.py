"""A plan in the three currencies planners and finance read: tokens, margin and the envelope
(summary.json ``economics``, routing.csv).  The rules are stated in docs/formulation.md,
"Economics", and the checker recomputes every figure in its own code.

Cost attribution (the same in every output): a workload pays (a) the usage, at the pool's rate,
and the energy, at the site's price, of its own chips; (b) its share, by chip-hours, of the fees
of the reserved, capacity-block and owned pools it used (reservations, blocks bought, fixed
cost); (c) its share, pro rata to (a) + (b), of every other spend: commitment fees less the usage
they paid for, contract shortfalls, certificates, the renewable energy's price difference,
carbon, and the fees of pools no workload used.  The attributed costs add up to the plan's spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimizer.model.data import ModelData
from optimizer.model.economics import CATEGORIES, MTOK_PER_PFLOPS_HOUR_FLOP, routing_shares
from optimizer.units import EFLOP_PER_TFLOPS_HOUR

ROUTING_COLUMNS = ["hour", "workload", "variant", "share"]


@dataclass(frozen=True)
class Routing:
    """[variant, hour] share of its service's tokens (0 where the service served none)."""

    share: np.ndarray

    @staticmethod
    def none(data: ModelData) -> Routing:
        return Routing(np.zeros((len(data.economics.variant_ids), data.hours)))


def routing_from_values(data: ModelData, variant: np.ndarray, hour: np.ndarray, routed: np.ndarray) -> Routing:
    """Shares from the solver's routed PFLOP/s per (variant, hour)."""
    return Routing(routing_shares(data.economics, len(data.workload_ids), data.hours, variant, hour, routed))


def routing_table(data: ModelData, routing: Routing) -> pd.DataFrame:
    """routing.csv: a row per variant and hour its service served tokens in (shares exact: repr)."""
    e = data.economics
    v, t = np.nonzero(routing.share > 0)
    order = np.lexsort((v, e.variant_workload[v], t))
    v, t = v[order], t[order]
    return pd.DataFrame({
        "hour": t.astype(np.int64),
        "workload": [data.workload_ids[e.variant_workload[k]] for k in v],
        "variant": [e.variant_names[k] for k in v],
        "share": routing.share[v, t],
    }, columns=ROUTING_COLUMNS)


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def economics_summary(data: ModelData, *, workload: np.ndarray, pool: np.ndarray, chips: np.ndarray,
                      rate_tflops: np.ndarray, own_usd: np.ndarray, kwh: np.ndarray, served_pflops: np.ndarray,
                      cost_usd: dict[str, float], spend_keys: tuple[str, ...], pool_fees_usd: np.ndarray) -> dict[str, Any]:
    """summary.json's ``economics`` block.  ``workload, pool, chips, rate_tflops, own_usd, kwh``: per
    allocation of the plan (gang spans included), its chips' usage and energy in USD and its
    facility kWh; ``served_pflops`` [workload, hour] reference PFLOP/s served; ``pool_fees_usd``
    [pool] reservation, block and fixed fees."""
    e = data.economics
    n_w = len(data.workload_ids)
    own = np.bincount(workload, weights=own_usd, minlength=n_w)
    chip_hours = np.zeros((n_w, len(data.pool_ids)))
    np.add.at(chip_hours, (workload, pool), chips)
    used_by = chip_hours.sum(axis=0)
    fees = np.where(used_by > 0, pool_fees_usd, 0.0)
    share_of_pool = np.divide(chip_hours, used_by, out=np.zeros_like(chip_hours), where=used_by > 0)
    direct = own + share_of_pool @ fees
    spend = float(sum(cost_usd.get(key, 0.0) for key in spend_keys))
    base = float(direct.sum())
    rest = spend - base
    attributed = direct + (direct / base * rest if base > 0 else np.full(n_w, rest / n_w))
    kwh_by_workload = np.bincount(workload, weights=kwh, minlength=n_w)
    compute = np.bincount(workload, weights=chips * rate_tflops * EFLOP_PER_TFLOPS_HOUR, minlength=n_w)

    services: dict[str, Any] = {}
    revenue = paying_cost = 0.0
    tokens = token_cost = token_kwh = 0.0
    for w in np.nonzero(np.isfinite(e.workload_tokens_flop))[0]:
        mtok = float(served_pflops[w].sum() * MTOK_PER_PFLOPS_HOUR_FLOP / e.workload_tokens_flop[w])
        earned = float(served_pflops[w].sum() * e.revenue_usd_per_pflops_hour[w])
        paying = e.revenue_usd_per_pflops_hour[w] > 0
        paying_share = float(e.workload_paying_share[w])
        revenue += earned
        paying_cost += float(attributed[w]) * paying_share if paying else 0.0
        tokens, token_cost, token_kwh = tokens + mtok, token_cost + float(attributed[w]), token_kwh + float(kwh_by_workload[w])
        services[data.workload_ids[w]] = {
            "mtok": mtok, "cost_usd": float(attributed[w]), "usd_per_mtok": _ratio(attributed[w], mtok),
            "revenue_usd": earned, "kwh": float(kwh_by_workload[w]),
            "tokens_per_kwh": _ratio(mtok * 1e6, kwh_by_workload[w]), "tokens_per_usd": _ratio(mtok * 1e6, attributed[w]),
        }
    research = CATEGORIES.index("research")
    non_research = float(attributed[e.workload_category != research].sum())
    out: dict[str, Any] = {
        "mtok": tokens,
        "usd_per_mtok": _ratio(token_cost, tokens),
        "tokens_per_kwh": _ratio(tokens * 1e6, token_kwh),
        "tokens_per_usd": _ratio(tokens * 1e6, token_cost),
        "revenue_usd": revenue,
        "compute_margin": _ratio(revenue - paying_cost, revenue),
        "pnl_ex_research_usd": revenue - non_research,
        "pnl_full_usd": revenue - spend,
        "eflop_by_category": {c: float(compute[e.workload_category == k].sum()) for k, c in enumerate(CATEGORIES)},
        "cost_usd_by_workload": {data.workload_ids[w]: float(attributed[w]) for w in range(n_w)},
        "services": services,
    }
    if e.has_budget:
        out["budget_usd"] = e.budget_usd
    return out

