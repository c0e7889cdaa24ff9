"""What a plan buys (capacity blocks, commitment levels, contract shortfalls) and which usage its
commitments pay for: the tables purchases.csv and coverage.csv, and the cost terms they make,
recomputed from the plan's whole decisions (part of the accounting layer)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.model.data import ModelData

PURCHASE_COLUMNS = ["instrument", "kind", "start_hour", "quantity", "unit", "usd"]
COVERAGE_COLUMNS = ["hour", "pool", "commitment", "chips"]


@dataclass(frozen=True)
class Bought:
    """A plan's instrument decisions, by index (data.instruments)."""

    start_blocks: np.ndarray  # [start] whole blocks bought
    levels: np.ndarray  # [commitment] chips (usage) or USD/hour (spend)
    cover_commitment: np.ndarray  # coverage entries: commitment, pool, hour, chips
    cover_pool: np.ndarray
    cover_hour: np.ndarray
    cover_chips: np.ndarray

    @staticmethod
    def none(data: ModelData) -> Bought:
        """What a plan that buys nothing holds: the blocks and levels bought already."""
        i = data.instruments
        levels = np.nan_to_num(i.commitment_level, nan=0.0)
        empty = np.zeros(0, dtype=np.int64)
        return Bought(i.start_bought_blocks.copy(), levels, empty, empty, empty, np.zeros(0))


def applied_coverage(data: ModelData, levels: np.ndarray, chips_in_use: np.ndarray,
                     start_blocks: np.ndarray | None = None) -> Bought:
    """The commitments at ``levels`` applied to a plan's chips in use ([pool, hour]) as a bill
    applies them: commitment by commitment in file order, each hour of its window, its pools at the
    highest rate first, until its level is used (a usage commitment covers whole chips).  For plans
    that choose no coverage of their own (greedy, the buy-to-the-average baseline)."""
    i = data.instruments
    left = chips_in_use.astype(float).copy()
    parts: list[tuple[int, int, int, float]] = []
    for c in range(len(i.commitment_ids)):
        pools = i.cover_pool[i.cover_commitment == c]
        pools = pools[np.argsort(-data.pool_usd_per_chip_hour[pools], kind="stable")]
        for t in range(int(i.commitment_start_hour[c]), int(i.commitment_end_hour[c])):
            room = float(levels[c])
            for p in pools:
                if room <= 0:
                    break
                if i.commitment_spend[c]:
                    per_chip = (1 - i.commitment_discount[c]) * data.pool_usd_per_chip_hour[p]
                    chips = min(left[p, t], room / per_chip) if per_chip > 0 else left[p, t]
                    room -= chips * per_chip
                else:
                    chips = float(min(left[p, t], np.floor(room + 1e-9)))
                    room -= chips
                if chips > 0:
                    left[p, t] -= chips
                    parts.append((c, int(p), t, chips))
    columns = list(zip(*parts)) if parts else [[], [], [], []]
    blocks = i.start_bought_blocks.copy() if start_blocks is None else start_blocks
    return Bought(blocks, np.asarray(levels, dtype=float), np.asarray(columns[0], dtype=np.int64),
                  np.asarray(columns[1], dtype=np.int64), np.asarray(columns[2], dtype=np.int64),
                  np.asarray(columns[3], dtype=float))


def block_fees(data: ModelData, bought: Bought) -> np.ndarray:
    """[start] USD of the blocks bought at each start: chips x duration x rate."""
    i = data.instruments
    return (bought.start_blocks * data.pool_block[i.offer_pool[i.start_offer]]
            * i.offer_duration_hours[i.start_offer] * i.offer_usd_per_chip_hour[i.start_offer])


def commitment_fees(data: ModelData, bought: Bought) -> np.ndarray:
    """[commitment] USD of each level over its window."""
    i = data.instruments
    rate = np.where(i.commitment_spend, 1.0, i.commitment_usd_per_chip_hour)
    return bought.levels * rate * i.commitment_hours


def covered_usd_by_pool(data: ModelData, bought: Bought) -> np.ndarray:
    """[pool] usage the commitments pay for, at the pools' rates."""
    out = np.zeros(len(data.pool_ids))
    np.add.at(out, bought.cover_pool, bought.cover_chips * data.pool_usd_per_chip_hour[bought.cover_pool])
    return out


def contract_shortfalls(data: ModelData, bought: Bought, usage_usd_by_pool: np.ndarray,
                        reserved_chips: np.ndarray) -> np.ndarray:
    """[contract] what each take-or-pay minimum exceeds its pools' bill by.  A pool bills its usage
    at its rate (``usage_usd_by_pool``, before coverage) less what commitments paid for, its
    reserved fee and its block fees."""
    i = data.instruments
    billed = (usage_usd_by_pool - covered_usd_by_pool(data, bought)
              + reserved_chips * data.pool_usd_per_chip_hour * data.hours)
    np.add.at(billed, i.offer_pool[i.start_offer], block_fees(data, bought))
    per_contract = np.zeros(len(i.contract_ids))
    np.add.at(per_contract, i.billed_contract, billed[i.billed_pool])
    return np.maximum(i.contract_min_usd - per_contract, 0.0)


def purchase_table(data: ModelData, bought: Bought, shortfalls: np.ndarray) -> pd.DataFrame:
    """purchases.csv: a row per block purchase (start with blocks), per commitment, per contract."""
    i = data.instruments
    rows = []
    fees = block_fees(data, bought)
    for k in np.nonzero(bought.start_blocks > 0)[0]:
        offer = i.start_offer[k]
        rows.append((i.offer_ids[offer], "capacity_block", int(i.start_hour[k]),
                     int(bought.start_blocks[k] * data.pool_block[i.offer_pool[offer]]), "chips", float(fees[k])))
    for c, (fee, level) in enumerate(zip(commitment_fees(data, bought), bought.levels)):
        spend = bool(i.commitment_spend[c])
        rows.append((i.commitment_ids[c], "spend" if spend else "usage", int(i.commitment_start_hour[c]),
                     float(level) if spend else int(round(level)), "usd_per_hour" if spend else "chips", float(fee)))
    for k, short in enumerate(shortfalls):
        rows.append((i.contract_ids[k], "contract", 0, float(short), "usd", float(short)))
    # Chips stay whole numbers beside USD/hour levels in one column (object, not float64).
    columns = list(zip(*rows)) if rows else [[] for _ in PURCHASE_COLUMNS]
    return pd.DataFrame({name: pd.Series(list(values), dtype=object if name == "quantity" else None)
                         for name, values in zip(PURCHASE_COLUMNS, columns)}, columns=PURCHASE_COLUMNS)


def coverage_table(data: ModelData, bought: Bought) -> pd.DataFrame:
    """coverage.csv: chips each commitment paid for, per hour and pool (non-zero only)."""
    i = data.instruments
    keep = bought.cover_chips > 0
    spend = i.commitment_spend[bought.cover_commitment[keep]]
    chips = bought.cover_chips[keep]
    frame = pd.DataFrame({
        "hour": bought.cover_hour[keep],
        "pool": np.asarray(data.pool_ids, dtype=object)[bought.cover_pool[keep]],
        "commitment": np.asarray(i.commitment_ids, dtype=object)[bought.cover_commitment[keep]],
        "chips": [float(x) if s else int(round(x)) for x, s in zip(chips, spend)],
        "_c": bought.cover_commitment[keep], "_p": bought.cover_pool[keep],
    })
    return (frame.sort_values(["hour", "_p", "_c"], kind="stable").drop(columns=["_c", "_p"])
            .reset_index(drop=True)[COVERAGE_COLUMNS])


UTILISATION_COLUMNS = ["commitment", "kind", "hour", "level", "used", "unused", "utilisation"]


def commitment_utilisation(instance, purchases: pd.DataFrame, coverage: pd.DataFrame) -> pd.DataFrame:
    """Each commitment's use in every hour of its window (FinOps FOCUS's CommitmentDiscountStatus
    Used / Unused): ``level`` and ``used`` in its unit (spend: USD/hour at the discounted rate;
    usage: chips), ``unused`` = level - used, and their ratio (None at level 0)."""
    rates = {pool.id: pool.usd_per_chip_hour for pool in instance.pools}
    levels = {row.instrument: float(row.quantity) for row in purchases.itertuples() if row.kind in ("spend", "usage")}
    rows = []
    for commitment in instance.commitments:
        start = commitment.start_hour
        end = commitment.end_hour if commitment.end_hour is not None else instance.hours
        mine = coverage[coverage.commitment == commitment.id]
        if commitment.kind == "spend":
            weight = mine.pool.map(rates).astype(float) * (1 - commitment.discount)
            used_by_hour = (mine.chips.astype(float) * weight).groupby(mine.hour).sum()
        else:
            used_by_hour = mine.chips.astype(float).groupby(mine.hour).sum()
        level = levels.get(commitment.id, 0.0)
        for hour in range(start, end):
            used = float(used_by_hour.get(hour, 0.0))
            rows.append((commitment.id, commitment.kind, hour, level, used, max(level - used, 0.0),
                         used / level if level > 0 else None))
    return pd.DataFrame(rows, columns=UTILISATION_COLUMNS)
