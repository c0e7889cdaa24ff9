"""One rule per constraint family, named as the family (docs/formulation.md).

``READERS`` turn the plan's rows into facts (and report malformed rows); ``RULES`` then check
each family's limits on those facts, in this order (the order of the violations listed)."""

from __future__ import annotations

from optimizer.plans.checker.purchases import read_coverage, read_purchases
from optimizer.plans.checker.rules import (
    allocation, block_capacity, commitment_cover, contract_minimum, envelope, gang, grid_carbon, inference_demand,
    owned_fixed, pool_capacity, renewable_quota, reserved_capacity, routing, single_site, site_power,
    training_max_chips, training_min_chips, training_restart, training_work,
)

#: (plan table, reader) in reading order: reservations first (reserved capacity reads them).
READERS = (("reservations", reserved_capacity.read), ("allocations", allocation.read),
           ("purchases", read_purchases), ("coverage", read_coverage), ("energy", renewable_quota.read),
           ("routing", routing.read))
RULES = (
    pool_capacity.check,
    reserved_capacity.check,
    site_power.check,
    training_max_chips.check,
    training_min_chips.check,
    training_restart.check,
    single_site.check,
    gang.check,
    routing.check,  # before inference_demand: it says what a routed service served
    inference_demand.check,
    training_work.check,
    block_capacity.check,
    commitment_cover.check,
    owned_fixed.check,
    renewable_quota.check,
    grid_carbon.check,
    contract_minimum.check,  # after commitment_cover: it counts the usage commitments paid for
    envelope.check,  # last: the budget counts every cost
)
