"""What a constraint family declares, and the context families are built in.

A family (one module in this package) declares, once, everything the rest of chipmix needs to
know about it:

- its **variables** (:class:`Variable`: name, dims, domain, which cost terms its costs feed,
  whether each column belongs to one hour, and for a continuous one the ``>=`` row family it
  sits in) and its **elastic slack** (variables that exist only in the diagnostic model);
- its **rows** (:class:`Rows`: name as in docs/formulation.md, dims, sense);
- how it **couples hours** (``couples_hours``: empty for a family whose rows each sit in one
  hour; otherwise what it ties together), and how the decomposition fixes its horizon-wide
  decisions from the LP (:meth:`ConstraintFamily.fix_from_lp`);
- its **diagnosis**: which shortfalls its elastic slack means
  (:meth:`ConstraintFamily.shortfalls`) and which of its rows are full where demand falls short
  (:meth:`ConstraintFamily.full`);
- its **CP-SAT extras** (:meth:`ConstraintFamily.cumulatives`).

Families meet in *expressions* (:class:`Expression`): labelled sums that several families add
terms to and others read, such as the blocks of each pool in use in each hour (allocations and
gang runs add to it; pool capacity, reserved capacity and site power read it).  So a row family
never needs to know which families put chips on a pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from optimizer.model.linear import Cumulative, Family, LinearModel, ModelBuilder
from optimizer.units import hour_ranges

if TYPE_CHECKING:
    from optimizer.model.data import ModelData

#: Cost per unit of slack in the elastic (diagnostic) model: only its sign matters there.
ELASTIC_SLACK_COST = 1.0


@dataclass(frozen=True)
class CostTerm:
    """A key of the cost breakdown (summary.json ``cost_usd``), in USD."""

    key: str
    doc: str
    #: Money paid for compute (False: a price the planner puts on the plan's shape, not a bill:
    #: unserved demand, training churn)
    spend: bool = True


USAGE = CostTerm("usage", "chip-hours of rented pools at their usd_per_chip_hour")
RESERVED = CostTerm("reserved", "reserved chips x usd_per_chip_hour x every hour of the horizon")
ENERGY = CostTerm("energy", "facility energy (chip power x PUE) at the site's energy price")
PENALTY = CostTerm("penalty", "priced unmet demand and training shortfall", spend=False)
#: The order of the breakdown; a family's new term goes after these, in registry order.
BASE_COST_TERMS = (USAGE, RESERVED, ENERGY, PENALTY)


@dataclass(frozen=True)
class Variable:
    """A declared variable family, e.g. ``blocks[workload,pool,hour]``."""

    name: str
    dims: tuple[str, ...]
    integer: bool
    doc: str
    hourly: bool = True  # each column belongs to the hour in its "hour" coordinate
    cost: tuple[CostTerm, ...] = ()  # the cost terms its objective coefficients feed
    covered_by: str | None = None  # continuous slack: the name of the one ">=" row family it sits in
    #: Continuous, and a decision the plan reports as the solver chose it (a commitment's coverage,
    #: a spend level), not the slack of a row: it is never settled, and CP-SAT takes it on a grid.
    decision: bool = False
    #: A purchase: bought before the hours are known (reservations, capacity blocks, commitment
    #: levels), so a hedge (optimizer.hedge) shares it between every scenario: its first stage.
    purchase: bool = False
    #: How the LP that reads shadow prices (plans/duals.py) treats an integer column: "hold" at the
    #: plan's value (purchases, starts, on/off choices), "relax" to continuous within its bounds, or
    #: "relax_unbounded": continuous with no upper bound (every limit on it is a row once the model
    #: is built with keep_implied_rows), so a full pool's price sits in its row, not in a bound.
    dual_lp: str = "hold"


@dataclass(frozen=True)
class Rows:
    """A declared row family, e.g. ``pool_capacity[pool,hour]``."""

    name: str
    dims: tuple[str, ...]
    sense: str  # "<=", ">=" or "="
    doc: str
    #: Why CP-SAT cannot solve a model holding these rows exactly ("" = it can): CP-SAT puts
    #: continuous decisions on a grid, which is exact only where each can round one way safely.
    cpsat: str = ""


@dataclass(frozen=True)
class Expression:
    """A labelled sum several families contribute to (see the module docstring)."""

    name: str
    dims: tuple[str, ...]
    doc: str


#: Blocks of each pool in use in each hour (coefficient: blocks per unit of the column).
POOL_BLOCKS = Expression("pool_blocks", ("pool", "hour"), "blocks of the pool in use in the hour")
#: PFLOP/s delivered to each inference workload in each hour.
SERVED_PFLOPS = Expression("served_pflops", ("workload", "hour"), "PFLOP/s served to the workload in the hour")
#: EFLOP of work delivered to each (non-gang) training run over the horizon.
DELIVERED_EFLOP = Expression("delivered_eflop", ("workload",), "EFLOP delivered to the training run")
#: Chips each workload holds in each hour, from its hourly allocations.
WORKLOAD_CHIPS = Expression("workload_chips", ("workload", "hour"), "chips the workload holds in the hour")
#: PFLOP/s of chips each routed service's variant runs in each hour (its allocations; the routing
#: family turns them into tokens served).
VARIANT_PFLOPS = Expression("variant_pflops", ("variant", "hour"), "PFLOP/s of chips running the variant in the hour")
#: EFLOP of useful compute each workload's chips deliver over the horizon (every allocation and
#: gang span, whatever it serves): the envelope's currency.
COMPUTE_EFLOP = Expression("compute_eflop", ("workload",), "EFLOP of compute the workload's chips deliver")
#: MWh of renewable energy (used, or counted by certificates) at each site in each hour.
RENEWABLE_MWH = Expression("renewable_mwh", ("site", "hour"), "renewable energy the site uses in the hour (not certificates), MWh")
#: What a pool's provider bills beyond its rate on the chips in use (POOL_BLOCKS): reserved and
#: block fees, and minus the usage a commitment pays for.  A take-or-pay contract reads both.
BILLED_USD = Expression("billed_usd", ("pool",), "USD the pool bills beyond its rate on the chips in use")


@dataclass(frozen=True)
class Terms:
    """Terms of an expression: per term, its coordinates, its column and its coefficient."""

    coords: tuple[np.ndarray, ...]
    column: np.ndarray
    coefficient: np.ndarray

    @staticmethod
    def concat(parts: list[Terms], n_dims: int) -> Terms:
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return Terms(tuple(empty for _ in range(n_dims)), empty, np.zeros(0))
        return Terms(
            tuple(np.concatenate([p.coords[i] for p in parts]).astype(np.int64) for i in range(n_dims)),
            np.concatenate([p.column for p in parts]).astype(np.int64),
            np.concatenate([p.coefficient for p in parts]).astype(float),
        )

    def where(self, mask: np.ndarray) -> Terms:
        return Terms(tuple(c[mask] for c in self.coords), self.column[mask], self.coefficient[mask])


@dataclass
class BuildContext:
    """What families share while one model is built (one per :func:`~optimizer.model.build.build_model`)."""

    data: ModelData
    builder: ModelBuilder
    elastic: bool
    fixed_reserved_blocks: dict[int, int] | None = None
    #: Keep rows a column's upper bound implies (the model the shadow prices are read from).
    keep_implied_rows: bool = False
    #: Cost keys that are money paid (CostTerm.spend), which a budget counts: set by build_model
    #: from the registry, so that no family imports it.
    spend_keys: frozenset[str] = frozenset()
    _terms: dict[Expression, list[Terms]] = field(default_factory=dict)
    _own: dict[str, dict] = field(default_factory=dict)

    def add_variables(self, var: Variable, coords: tuple[np.ndarray, ...], *, lower, upper, cost,
                      cost_terms: dict[CostTerm, np.ndarray | float] | None = None, elastic: bool = False) -> Family:
        """Columns of a declared variable family.  ``cost_terms`` split ``cost`` by cost term for
        the breakdown (only the variable's declared terms)."""
        terms = cost_terms or {}
        undeclared = [term.key for term in terms if term not in var.cost]
        if undeclared:
            raise ValueError(f"{var.name}: cost terms {undeclared} are not declared by its family")
        return self.builder.add_variables(
            var.name, var.dims, coords, lower=lower, upper=upper, cost=cost, integer=var.integer,
            hourly=var.hourly, elastic=elastic, covered_by=var.covered_by, decision=var.decision, purchase=var.purchase,
            dual_lp=var.dual_lp, cost_terms={term.key: value for term, value in terms.items()},
        )

    def add_rows(self, rows: Rows, coords: tuple[np.ndarray, ...], *, rows_of, cols, vals, lower, upper) -> Family:
        return self.builder.add_constraints(rows.name, rows.dims, coords, rows=rows_of, cols=cols, vals=vals,
                                            lower=lower, upper=upper, sense=rows.sense, cpsat_refusal=rows.cpsat)

    def drop_single_member_rows(self, row: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`drop_single_member_rows`, or every row kept when the build keeps implied rows."""
        if self.keep_implied_rows:
            return np.ones(n_rows, dtype=bool), np.ones(len(row), dtype=bool), row
        return drop_single_member_rows(row, n_rows)

    def block(self, var: Variable) -> Family | None:
        """The columns built for a declared variable (None if its family added none)."""
        return self.builder.model.variables.get(var.name)

    def contribute(self, expression: Expression, coords: tuple[np.ndarray, ...], column: np.ndarray,
                   coefficient: np.ndarray) -> None:
        self._terms.setdefault(expression, []).append(
            Terms(tuple(np.asarray(c) for c in coords), np.asarray(column), np.asarray(coefficient, dtype=float)))

    def terms(self, expression: Expression) -> Terms:
        return Terms.concat(self._terms.get(expression, []), len(expression.dims))

    def spend_terms(self) -> Terms:
        """Every column built so far with its spend per unit (the sum of its spend cost terms)."""
        parts = []
        for fam in self.builder.model.variables.values():
            if fam.elastic:
                continue
            usd = sum((values for key, values in fam.cost_terms if key in self.spend_keys), np.zeros(fam.size))
            k = np.nonzero(usd)[0]
            if len(k):
                parts.append(Terms((), fam.start + k, usd[k]))
        return Terms.concat(parts, 0)

    def own(self, family: ConstraintFamily) -> dict:
        """A family's own scratch space for this build (e.g. a column index by pool)."""
        return self._own.setdefault(family.name, {})

    def expressions(self) -> dict[Expression, Terms]:
        return {expression: self.terms(expression) for expression in self._terms}


@dataclass(frozen=True)
class Shortfall:
    """What an elastic slack left in the diagnostic plan means, in the user's words."""

    workload: str  # the short workload (a quota's shortfall: the quota's id)
    kind: str  # "inference", "training", "quota" or "floor" (its workload: the category)
    hours: list[int]
    amount: float  # worst-hour PFLOP/s (inference) or EFLOP (training)
    field_path: str
    message: str
    unserved_pflops_hours: float = 0.0  # its share of the least total no plan can serve
    unserved_eflop: float = 0.0

    def render(self) -> str:
        return self.message


@dataclass(frozen=True)
class Binding:
    """A row family's rows that are full where demand falls short, e.g. ``site_power[campus]``."""

    dim: str  # the resource's dimension: "site" or "pool"
    index: int
    text: str  # e.g. "site_power[campus] in hours 3-7"


@dataclass(frozen=True)
class ShadowPrice:
    """One row of duals.csv, e.g. ``site_power, owned-tx, 17, 412.0, USD/MWh``."""

    family: str  # the row family
    index: str  # the row's entity (site, pool, workload or quota id)
    hour: int | None  # None for a row over the horizon
    value: float
    unit: str


def row_worth(model: LinearModel, name: str, worth: np.ndarray) -> tuple[Family | None, np.ndarray]:
    """A row family's block and its rows' worth (empty if the model has none of its rows)."""
    fam = model.constraints.get(name)
    return (fam, worth[fam.slice]) if fam is not None else (None, np.zeros(0))


def chip_hour_prices(family: str, rows: Rows, data: ModelData, model: LinearModel, worth: np.ndarray) -> list[ShadowPrice]:
    """USD per chip-hour of a ``[pool,hour]`` row family in blocks: one more chip of the pool in the hour."""
    fam, value = row_worth(model, rows.name, worth)
    if fam is None:
        return []
    return [ShadowPrice(family, data.pool_ids[p], int(t), float(v) / data.pool_block[p], "USD/chip-hour")
            for p, t, v in zip(*fam.coords, value)]


#: Full resources are listed sites first, then pools, each in file order.
BINDING_ORDER = ("envelope", "site", "pool", "workload")


def binding(dim: str, index: int, family: str, label: str, hours) -> Binding:
    return Binding(dim, index, f"{family}[{label}] in hours {hour_ranges(sorted(hours))}")


class ConstraintFamily:
    """One constraint family: declarations, and the hooks the rest of chipmix calls."""

    name: str = ""
    doc: str = ""
    variables: tuple[Variable, ...] = ()
    elastic: tuple[Variable, ...] = ()  # slack that exists only in the diagnostic model
    rows: tuple[Rows, ...] = ()
    cost_terms: tuple[CostTerm, ...] = ()  # new cost terms this family brings (beyond BASE_COST_TERMS)
    #: Empty: each of its rows sits in one hour.  Otherwise what it ties across hours, which the
    #: hour decomposition dualizes or fixes (docs/architecture.md).
    couples_hours: str = ""

    # -- building ------------------------------------------------------------------------------
    def add_variables(self, ctx: BuildContext) -> None:
        """Add this family's columns, and its terms to the expressions others read."""

    def add_elastic(self, ctx: BuildContext) -> None:
        """Add this family's elastic slack (diagnostic model only)."""

    def add_rows(self, ctx: BuildContext) -> None:
        """Add this family's rows (every family's columns exist by now)."""

    def cumulatives(self, data: ModelData, model: LinearModel) -> list[Cumulative]:
        """Resources over time for backends that schedule (CP-SAT)."""
        return []

    # -- decomposition -------------------------------------------------------------------------
    def fix_from_lp(self, model: LinearModel, lp_values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Fix this family's horizon-wide integer decisions from the LP (bounds edited in place)."""

    # -- diagnosis -----------------------------------------------------------------------------
    def shortfalls(self, data: ModelData, model: LinearModel, values: np.ndarray) -> list[Shortfall]:
        """What this family's elastic slack left in the diagnostic plan ``values`` means."""
        return []

    def full(self, data: ModelData, model: LinearModel, values: np.ndarray,
             pool_hours: set[tuple[int, int]]) -> list[Binding]:
        """This family's rows that are full, among the (pool, hour) pairs short demand could use."""
        return []

    # -- settling a solver's plan ----------------------------------------------------------------
    def settle(self, data: ModelData, model: LinearModel, values: np.ndarray) -> None:
        """Move this family's continuous decisions (in place) to the most the plan's whole
        decisions allow, before the slack is settled (solve.py: the objective is then exactly
        what the plan's files say it costs)."""

    # -- shadow prices -------------------------------------------------------------------------
    def shadow_prices(self, data: ModelData, model: LinearModel, worth: np.ndarray) -> list[ShadowPrice]:
        """This family's rows' shadow prices in the user's units, from ``worth`` (per model row:
        what one more unit of its limit saves, for a ``<=`` row, or one more unit of its
        requirement costs, for a ``>=`` row, in USD per row unit)."""
        return []

    def __repr__(self) -> str:
        return f"<family {self.name}>"


def site_mwh_terms(data: ModelData, terms: Terms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The facility energy each ``pool_blocks`` term draws, per site and hour: (site, hour, column,
    MWh per unit of the column).  An hour at P kW is P/1000 MWh."""
    pool, hour = terms.coords
    kw_per_block = data.pool_block[pool] * data.pool_chip_power_kw[pool]
    return data.pool_site[pool], hour, terms.column, terms.coefficient * kw_per_block / 1000.0


def site_draw_kw(data: ModelData, model: LinearModel, values: np.ndarray) -> np.ndarray:
    """[site, hour] facility power (kW; MWh x 1000 over an hour) the whole blocks of ``values`` draw."""
    terms = model.expressions[POOL_BLOCKS]
    pool = terms.coords[0]
    kw_per_block = data.pool_block * data.pool_chip_power_kw
    draw = np.zeros_like(data.site_power_cap_kw)
    np.add.at(draw, (data.pool_site[pool], terms.coords[1]),
              terms.coefficient * np.rint(values[terms.column]) * kw_per_block[pool])
    return draw


def site_max_draw_kw(data: ModelData) -> np.ndarray:
    """[site, hour] the most a site's pools could draw (kW): every usable block of every pool in
    use, before the site's cap."""
    out = np.zeros_like(data.site_power_cap_kw)
    np.add.at(out, data.pool_site, data.pool_available_blocks * (data.pool_block * data.pool_chip_power_kw)[:, None])
    return out


def site_max_mwh(data: ModelData) -> np.ndarray:
    """[site, hour] the most facility energy a site can draw in the hour: its pools flat out, within its cap."""
    return np.minimum(site_max_draw_kw(data), data.site_power_cap_kw) / 1000.0


def pool_hour_usage(model: LinearModel, values: np.ndarray) -> np.ndarray:
    """Blocks of each pool in use in each hour at ``values`` ([pool, hour]), from the expression
    every family that uses chips adds to."""
    terms = model.expressions[POOL_BLOCKS]
    n_pools, hours = len(model.ids["pool"]), model.hours
    used = np.zeros((n_pools, hours))
    np.add.at(used, (terms.coords[0], terms.coords[1]), terms.coefficient * np.rint(values[terms.column]))
    return used


def full_pools(family: str, data: ModelData, model: LinearModel, values: np.ndarray,
               pool_hours: set[tuple[int, int]], reserved: bool) -> list[Binding]:
    """Pools (reserved or not) whose every usable block is in use in an hour short demand could
    use them: ``family[pool] in hours ...``."""
    used = pool_hour_usage(model, values)
    hours_of: dict[int, set[int]] = {}
    for p, t in pool_hours:
        if data.pool_reserved[p] == reserved and 0 < data.pool_available_blocks[p, t] <= used[p, t]:
            hours_of.setdefault(p, set()).add(t)
    return [binding("pool", p, family, data.pool_ids[p], hours) for p, hours in sorted(hours_of.items())]


def group(*keys: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct key tuples (sorted) and, for every input position, the index of its group."""
    if len(keys[0]) == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in keys), np.zeros(0, dtype=np.int64)
    stacked = np.stack(keys, axis=1)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return tuple(unique[:, i] for i in range(len(keys))), inverse.reshape(-1)


def drop_single_member_rows(row: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with one member are implied by that variable's upper bound: leave them out.

    Returns the kept-row mask, which members are in kept rows, and their new row numbers.
    """
    keep = np.bincount(row, minlength=n_rows) >= 2
    in_kept = keep[row]
    return keep, in_kept, (np.cumsum(keep) - 1)[row[in_kept]]


def row_index(shape: tuple[int, ...], coords: tuple[np.ndarray, ...]) -> np.ndarray:
    """An array of ``shape`` holding each listed coordinate's row number (-1 elsewhere)."""
    out = np.full(shape, -1, dtype=np.int64)
    out[coords] = np.arange(len(coords[0]))
    return out
