"""The constraint families, in the order they are built (their columns, then their rows, in this
order: the order fixes the model's column and row numbering, so it is part of the determinism).

Adding a family: docs/architecture.md has the recipe.
"""

from __future__ import annotations

from optimizer.model.families import (
    allocation, block_capacity, commitment_cover, contract_minimum, envelope, gang, grid_carbon, inference_demand,
    owned_fixed, pool_capacity, renewable_quota, reserved_capacity, routing, single_site, site_power,
    training_max_chips, training_min_chips, training_restart, training_work,
)
from optimizer.model.families.base import BASE_COST_TERMS, ConstraintFamily, CostTerm

#: Every family, in build order.
FAMILIES: tuple[ConstraintFamily, ...] = (
    allocation.FAMILY,
    pool_capacity.FAMILY,
    reserved_capacity.FAMILY,
    site_power.FAMILY,
    routing.FAMILY,  # before inference_demand: a routed service's served tokens are its terms
    inference_demand.FAMILY,
    training_work.FAMILY,
    training_max_chips.FAMILY,
    training_min_chips.FAMILY,
    training_restart.FAMILY,
    single_site.FAMILY,
    gang.FAMILY,
    block_capacity.FAMILY,
    commitment_cover.FAMILY,
    owned_fixed.FAMILY,
    renewable_quota.FAMILY,
    grid_carbon.FAMILY,  # after renewable_quota: it reads the renewable energy used
    contract_minimum.FAMILY,  # it reads what every other family bills
    envelope.FAMILY,  # last: its budget counts every column's spend
)


class RegistryError(ValueError):
    """The families' declarations contradict each other (a bug in a family module)."""


def cost_terms(families: tuple[ConstraintFamily, ...] = FAMILIES) -> tuple[CostTerm, ...]:
    """The cost breakdown's terms: the base terms, then each family's new ones in registry order."""
    out = list(BASE_COST_TERMS)
    for family in families:
        out += [term for term in family.cost_terms if term not in out]
    return tuple(out)


def check_registry(families: tuple[ConstraintFamily, ...] = FAMILIES) -> None:
    """What the rest of chipmix relies on, checked on the declarations themselves:

    - family, variable and row names are unique (they are the name grammar of LP files,
      reports and the checker);
    - every cost term a variable feeds is a base term or one its family brings;
    - every continuous variable is either slack that sits in exactly one ``>=`` row family, which
      it names (``covered_by``): CP-SAT's scaling, the decomposition's repair of continuous columns
      and the diagnosis all read such a column as "what that demand row lacks"; or a declared
      ``decision`` (coverage, a spend level), never settled, which CP-SAT takes on a grid.
    """
    names: dict[str, str] = {}
    rows = {}
    known_terms = set(cost_terms(families))
    for family in families:
        for thing in (family.name,) + tuple(v.name for v in family.variables + family.elastic) + tuple(
                r.name for r in family.rows):
            if thing in names and not (thing == family.name and names[thing] == family.name):
                raise RegistryError(f"{thing!r} is declared twice ({names[thing]} and {family.name})")
            names[thing] = family.name
        for row in family.rows:
            rows[row.name] = row
            if row.sense not in ("<=", ">=", "="):
                raise RegistryError(f"{family.name}: row family {row.name} has sense {row.sense!r}")
    for family in families:
        for var in family.variables + family.elastic:
            unknown = [term.key for term in var.cost if term not in known_terms]
            if unknown:
                raise RegistryError(f"{family.name}: {var.name} feeds undeclared cost terms {unknown}")
            if var.integer:
                continue
            if var.decision:
                if var.covered_by is not None:
                    raise RegistryError(f"{family.name}: {var.name} is a decision, and slack of {var.covered_by}: "
                                        "one or the other")
                continue
            row = rows.get(var.covered_by or "")
            if row is None or row.sense != ">=":
                raise RegistryError(
                    f"{family.name}: continuous variable {var.name} must name the one '>=' row family it sits in "
                    f"(covered_by), got {var.covered_by!r}")


check_registry()
