"""The extensive form of a hedge: every scenario's model in one, sharing its purchases.

Scenario ``s`` has its own chipmix model (its availability, prices, power caps and demand);
the purchase columns (``LinearModel.purchase_columns``: reservations, blocks bought, commitment
levels), named alike in every scenario, become one shared column each (the first stage); every
other column and every row is the scenario's own (the second stage).  With scenario costs
``cost_s = c_s . x_s`` (first-stage fees included) the objective is

    (1 - w) sum_s p_s cost_s + w (eta + sum_s p_s excess_s / (1 - alpha)),
    excess_s >= cost_s - eta,  excess_s >= 0                     (rows ``cvar_excess[scenario]``)

which is expected cost for ``w = 0`` and the Rockafellar-Uryasev form of CVaR otherwise.  A
shared purchase gets the largest lower bound (what is bought already) and the largest upper bound
of the scenarios: above a scenario's own upper, a purchase is paid there and useless there, which
the scenario's rows already say.
The same risk rows serve the L-shaped master (:mod:`.lshaped`), over one cost column per scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from optimizer.analyses.scenarios import Risk
from optimizer.errors import ChipmixError
from optimizer.model.linear import Family, LinearModel


@dataclass
class ArrayModel:
    """Columns and rows appended block by block; :meth:`model` makes the LinearModel."""

    lower: list = field(default_factory=list)
    upper: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    integer: list = field(default_factory=list)
    entries: list = field(default_factory=list)  # (rows, cols, vals)
    extra_cost: list = field(default_factory=list)  # (cols, vals) added to columns already made
    row_lower: list = field(default_factory=list)
    row_upper: list = field(default_factory=list)
    families: dict = field(default_factory=dict)
    n_cols: int = 0
    n_rows: int = 0

    def columns(self, name: str, lower, upper, cost, integer) -> np.ndarray:
        lower = np.asarray(lower, dtype=float)
        size = len(lower)
        self.lower.append(lower)
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (size,)))
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=float), (size,)))
        self.integer.append(np.broadcast_to(np.asarray(integer, dtype=bool), (size,)))
        self.families[name] = Family(name, ("k",), (np.arange(size),), self.n_cols, size)
        self.n_cols += size
        return np.arange(self.n_cols - size, self.n_cols)

    def rows(self, rows, cols, vals, lower, upper, n: int) -> None:
        self.entries.append((np.asarray(rows) + self.n_rows, np.asarray(cols), np.asarray(vals, dtype=float)))
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (n,)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (n,)))
        self.n_rows += n

    def add_cost(self, cols: np.ndarray, vals: np.ndarray) -> None:
        self.extra_cost.append((np.asarray(cols), np.asarray(vals, dtype=float)))

    def model(self) -> LinearModel:
        def cat(parts, dtype=float):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        rows, cols, vals = (cat([e[i] for e in self.entries], t) for i, t in ((0, np.int64), (1, np.int64), (2, float)))
        matrix = sp.csc_matrix((vals, (rows, cols)), shape=(self.n_rows, self.n_cols))
        matrix.sum_duplicates()
        cost = cat(self.cost)
        for cols, vals in self.extra_cost:
            np.add.at(cost, cols, vals)
        return LinearModel(ids={"k": [str(k) for k in range(max((f.size for f in self.families.values()), default=0))]},
                           variables=self.families, col_lower=cat(self.lower), col_upper=cat(self.upper),
                           col_cost=cost, col_integer=cat(self.integer, bool), row_lower=cat(self.row_lower),
                           row_upper=cat(self.row_upper), matrix=matrix)


def add_risk(target: ArrayModel, scenario_costs: list[tuple[np.ndarray, np.ndarray]], probabilities, risk: Risk) -> None:
    """The hedge objective over scenario costs given as (columns, coefficients) of ``target``."""
    p = np.asarray(probabilities, dtype=float)
    w = risk.cvar_weight
    for s, (cols, vals) in enumerate(scenario_costs):
        target.add_cost(cols, (1 - w) * p[s] * vals)
    if w == 0:
        return
    eta = target.columns("cvar_eta", [-np.inf], [np.inf], [w], [False])
    n = len(scenario_costs)
    excess = target.columns("cvar_excess", np.zeros(n), np.inf, w * p / (1 - risk.cvar_alpha), np.zeros(n, bool))
    rows, cols, vals = [], [], []
    for s, (c, v) in enumerate(scenario_costs):
        rows += [np.full(len(c) + 2, s)]
        cols += [np.concatenate([[excess[s], eta[0]], c])]
        vals += [np.concatenate([[1.0, 1.0], -np.asarray(v, dtype=float)])]
    target.rows(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), 0.0, np.inf, n)


@dataclass(frozen=True)
class Extensive:
    """The extensive form and where each scenario's columns sit in it."""

    model: LinearModel
    labels: list[str]  # the shared purchases, in column order (columns 0..K-1)
    column_maps: list[np.ndarray]  # per scenario: its column j -> the extensive form's column


def shared_purchases(models: list[LinearModel], names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The purchase names every scenario has, their shared bounds and their integrality.
    ChipmixError if the scenarios disagree on which purchases exist (a changed instrument list)."""
    first = models[0].purchase_labels()
    labels = list(first)
    for model, name in zip(models[1:], names[1:]):
        other = model.purchase_labels()
        if set(other) != set(first):
            odd = sorted(set(other) ^ set(first))[:3]
            raise ChipmixError(f"scenario {name} has other purchases than {names[0]} ({', '.join(odd)}): "
                               "a hedge's scenarios change hours, not what can be bought")
    lower = np.max([[m.col_lower[m.purchase_labels()[k]] for k in labels] for m in models], axis=0)
    # The largest upper: a scenario's own upper is what it could use (a shock caps a commitment's
    # useful level or the blocks a pool can take), not what may be bought; the smallest would
    # forbid purchases that pay in the other scenarios, and the bound would not be a bound.
    upper = np.max([[m.col_upper[m.purchase_labels()[k]] for k in labels] for m in models], axis=0)
    integer = np.array([models[0].col_integer[first[k]] for k in labels], dtype=bool)
    return labels, lower.reshape(-1), upper.reshape(-1), integer


def extensive_form(models: list[LinearModel], names: list[str], probabilities, risk: Risk) -> Extensive:
    labels, lower, upper, integer = shared_purchases(models, names)
    ef = ArrayModel()
    shared = ef.columns("first_stage", lower, upper, np.zeros(len(labels)), integer)
    maps, costs = [], []
    for s, model in enumerate(models):
        purchase = model.purchase_columns
        own = np.nonzero(~purchase)[0]
        cols = ef.columns(f"scenario[{names[s]}]", model.col_lower[own], model.col_upper[own], 0.0,
                          model.col_integer[own])
        where = np.empty(model.n_cols, dtype=np.int64)
        where[own] = cols
        index = model.purchase_labels()
        where[[index[k] for k in labels]] = shared
        coo = model.matrix.tocoo()
        ef.rows(coo.row, where[coo.col], coo.data, model.row_lower, model.row_upper, model.n_rows)
        maps.append(where)
        costs.append((where, model.col_cost))
    add_risk(ef, costs, probabilities, risk)
    return Extensive(ef.model(), labels, maps)
