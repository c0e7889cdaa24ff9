"""``contract_minimum[contract]``: what the contract's pools bill over the horizon (usage at the
pool's rate on chips no commitment covers, reserved fees, capacity-block fees; not energy, not
commitment fees), and the shortfall below min_usd that is paid anyway, as purchases.csv states it."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, close
from optimizer.plans.checker.rules.commitment_cover import applies

#: Pricing of the pools a contract counts (owned chips bill nothing).
BILLED_PRICING = ("on_demand", "spot", "reserved", "capacity_block")


def billed_usd(facts: Facts, pool) -> float:
    """What one pool bills over the horizon, from the plan's own rows."""
    if pool.pricing == "reserved":
        usd = facts.reserved.get(pool.id, 0) * pool.usd_per_chip_hour * facts.hours
    else:
        usd = sum(count * pool.usd_per_chip_hour for (pool_id, _), count in facts.pool_hour_chips.items()
                  if pool_id == pool.id)
    for offer in facts.instance.capacity_blocks:
        if offer.pool == pool.id:
            usd += sum(entry[2] * offer.duration_hours * offer.usd_per_chip_hour
                       for (instrument, _), entry in facts.block_purchases.items() if instrument == offer.id)
    return usd - facts.covered_usd.get(pool.id, 0.0)


def check(facts: Facts) -> None:
    for contract in facts.instance.contracts:
        pools = [pool for pool in facts.instance.pools
                 if pool.pricing in BILLED_PRICING and applies(facts, contract.applies_to, pool)]
        billed = sum(billed_usd(facts, pool) for pool in pools)
        short = max(contract.min_usd - billed, 0.0)
        entry = facts.purchases.get(contract.id)
        name = f"contract_minimum[{contract.id}]"
        if entry is None:
            facts.violations.append(f"{name}: no purchases.csv row (every contract has one, its shortfall 0 if none)")
        elif not close(entry[3], short, 1e-6) or not close(entry[2], short, 1e-6):
            facts.violations.append(f"{name}: shortfall {entry[3]!r} USD, but the pools billed {billed:.6f} of "
                                    f"{contract.min_usd:g}, short {short:.6f}")
        facts.costs["contract_shortfall"] += short
