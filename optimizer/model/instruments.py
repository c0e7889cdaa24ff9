"""Model data of the procurement instruments: capacity-block offers, commitments and contracts as
index arrays (part of :class:`~optimizer.model.data.ModelData`; no solver imported here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.input.instruments import covered_pools, start_hours, window
from optimizer.input.schema import Instance

_INT = np.int64


def _ints(values) -> np.ndarray:
    return np.asarray(list(values), dtype=_INT)


def _floats(values) -> np.ndarray:
    return np.asarray(list(values), dtype=float)


@dataclass(frozen=True)
class InstrumentData:
    """Instruments by index, in file order.  Units are in the names."""

    pool_capacity_block: np.ndarray  # [pool] bool: usable only under blocks bought

    # Capacity-block offers, and one entry per (offer, start hour) a block may be bought at.
    offer_ids: list[str]
    offer_pool: np.ndarray  # [offer] -> pool index
    offer_duration_hours: np.ndarray  # [offer]
    offer_usd_per_chip_hour: np.ndarray  # [offer]
    offer_max_blocks: np.ndarray  # [offer], inf = unlimited
    start_offer: np.ndarray  # [start] -> offer index
    start_hour: np.ndarray  # [start]
    start_bought_blocks: np.ndarray  # [start] blocks already bought (fixed and paid)

    # Commitments, and their (commitment, pool) coverage pairs.
    commitment_ids: list[str]
    commitment_spend: np.ndarray  # [commitment] bool: spend (USD/hour level) or usage (chips)
    commitment_discount: np.ndarray  # [commitment], spend only (0 for usage)
    commitment_usd_per_chip_hour: np.ndarray  # [commitment], usage only (0 for spend)
    commitment_start_hour: np.ndarray  # [commitment]
    commitment_end_hour: np.ndarray  # [commitment], exclusive
    commitment_level: np.ndarray  # [commitment], nan = chipmix chooses it
    commitment_max_level: np.ndarray  # [commitment], inf = no limit of its own
    cover_commitment: np.ndarray  # [pair] -> commitment index
    cover_pool: np.ndarray  # [pair] -> pool index

    # Take-or-pay contracts, and their (contract, pool) pairs.
    contract_ids: list[str]
    contract_min_usd: np.ndarray  # [contract]
    billed_contract: np.ndarray  # [pair] -> contract index
    billed_pool: np.ndarray  # [pair] -> pool index

    @property
    def commitment_hours(self) -> np.ndarray:
        return self.commitment_end_hour - self.commitment_start_hour

    def starts_covering(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (start entry, hour) a bought block of that start covers, start-major."""
        lengths = self.offer_duration_hours[self.start_offer]
        start = np.repeat(np.arange(len(self.start_offer)), lengths)
        offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return start, self.start_hour[start] + offset


def build_instrument_data(instance: Instance) -> InstrumentData:
    hours = instance.hours
    pool_index = {pool.id: p for p, pool in enumerate(instance.pools)}
    offers = instance.capacity_blocks
    starts = [(o, s) for o, offer in enumerate(offers) for s in start_hours(offer, hours)]
    bought = {}
    for o, offer in enumerate(offers):
        for purchase in offer.bought:
            bought[(o, purchase.start_hour)] = bought.get((o, purchase.start_hour), 0) + purchase.blocks
    commitments = instance.commitments
    cover = [(c, p) for c, commitment in enumerate(commitments) for p in covered_pools(commitment, instance)]
    billed = [(k, p) for k, contract in enumerate(instance.contracts) for p in covered_pools(contract, instance)]
    return InstrumentData(
        pool_capacity_block=np.asarray([pool.pricing == "capacity_block" for pool in instance.pools], dtype=bool),
        offer_ids=[offer.id for offer in offers],
        offer_pool=_ints(pool_index[offer.pool] for offer in offers),
        offer_duration_hours=_ints(offer.duration_hours for offer in offers),
        offer_usd_per_chip_hour=_floats(offer.usd_per_chip_hour for offer in offers),
        offer_max_blocks=_floats(np.inf if offer.max_blocks is None else offer.max_blocks for offer in offers),
        start_offer=_ints(o for o, _ in starts),
        start_hour=_ints(s for _, s in starts),
        start_bought_blocks=_ints(bought.get(key, 0) for key in starts),
        commitment_ids=[commitment.id for commitment in commitments],
        commitment_spend=np.asarray([commitment.kind == "spend" for commitment in commitments], dtype=bool),
        commitment_discount=_floats(commitment.discount or 0.0 for commitment in commitments),
        commitment_usd_per_chip_hour=_floats(commitment.usd_per_chip_hour or 0.0 for commitment in commitments),
        commitment_start_hour=_ints(window(commitment, hours)[0] for commitment in commitments),
        commitment_end_hour=_ints(window(commitment, hours)[1] for commitment in commitments),
        commitment_level=_floats(np.nan if commitment.level is None else commitment.level for commitment in commitments),
        commitment_max_level=_floats(np.inf if commitment.max_level is None else commitment.max_level
                                     for commitment in commitments),
        cover_commitment=_ints(c for c, _ in cover),
        cover_pool=_ints(p for _, p in cover),
        contract_ids=[contract.id for contract in instance.contracts],
        contract_min_usd=_floats(contract.min_usd for contract in instance.contracts),
        billed_contract=_ints(k for k, _ in billed),
        billed_pool=_ints(p for _, p in billed),
    )


def block_reachable(data: InstrumentData, n_pools: int, hours: int) -> np.ndarray:
    """[pool, hour]: the most blocks the offers could cover (inf where an unlimited offer can),
    0 for hours no offer reaches.  Only capacity_block pools' rows mean anything."""
    reach = np.zeros((n_pools, hours))
    start, hour = data.starts_covering()
    # Each offer counts once in an hour however many of its starts cover it.
    key = np.unique(data.start_offer[start] * hours + hour)
    offer, hour = key // hours, key % hours
    np.add.at(reach, (data.offer_pool[offer], hour), data.offer_max_blocks[offer])
    return reach
