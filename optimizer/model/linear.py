"""A linear model as arrays: named variable and constraint blocks over labelled dimensions.

This is the one model every backend consumes: column bounds, costs and
integrality, row bounds, and a sparse constraint matrix, each column and row
belonging to a block such as ``blocks[workload,pool,hour]`` or
``pool_capacity[pool,hour]``.  Each block carries what its constraint family declared about it
(:mod:`optimizer.model.families`): whether its columns belong to one hour, which cost terms its
costs feed, whether it is elastic slack, which ``>=`` row a continuous column sits in.  Names are
rendered only on demand (LP files, reports), from the block's index arrays and the instance's
ids, so building a million-column model costs array operations, not Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


class ModelError(ValueError):
    """The model breaks a property its families declared (a bug in a family, not bad input)."""


@dataclass(frozen=True)
class Family:
    """A block of consecutive columns (variables) or rows (constraints) with one name."""

    name: str
    dims: tuple[str, ...]
    coords: tuple[np.ndarray, ...]  # one integer index array per dim
    start: int
    size: int
    #: Columns: each belongs to the hour in its "hour" coordinate (False: it spans hours, or the
    #: horizon).  Rows: their sense, "<=", ">=" or "=".
    hourly: bool = True
    sense: str = ""
    elastic: bool = False  # diagnostic slack: only in the elastic model
    covered_by: str | None = None  # a continuous slack column's one ">=" row family
    decision: bool = False  # a continuous decision (never settled; see families.base.Variable)
    purchase: bool = False  # a first-stage purchase (see families.base.Variable)
    cost_terms: tuple[tuple[str, np.ndarray], ...] = ()  # (cost key, USD per unit of each column)
    dual_lp: str = "hold"  # columns: how the shadow-price LP treats them (see families.base.Variable)
    cpsat_refusal: str = ""  # rows: why CP-SAT cannot take them exactly ("" = it can; see families.base.Rows)

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)

    def label(self, k: int, ids: dict[str, list[str]]) -> str:
        """Name of the k-th member, e.g. ``pool_capacity[aws-h100,12]``."""
        parts = [
            str(int(coord[k])) if dim == "hour" else ids[dim][int(coord[k])]
            for dim, coord in zip(self.dims, self.coords)
        ]
        return f"{self.name}[{','.join(parts)}]" if parts else self.name


@dataclass(frozen=True)
class Cumulative:
    """Linear rows that are also one resource over time, for backends that schedule.

    The resource has ``capacity[t]`` units in hour ``t`` (or, with ``capacity_column >= 0``,
    that column's value in every hour).  Hourly terms use ``coefficient * x[column]`` units in
    their hour; each interval choice ``i`` is a set of 0/1 start columns, at most one of which
    is 1, and takes ``interval_demand[i]`` units in every hour of ``[start, start +
    interval_duration[i])``.  The same limits are in the model's rows (the family ``label``
    names), so a backend that does not schedule may ignore this.
    """

    label: str  # e.g. "pool_capacity[aws-h100]": the row family and the pool
    hourly_hour: np.ndarray
    hourly_column: np.ndarray
    hourly_coefficient: np.ndarray
    interval_columns: tuple[np.ndarray, ...]  # per choice: its start columns
    interval_starts: tuple[np.ndarray, ...]  # per choice: the start hour of each column
    interval_duration: np.ndarray
    interval_demand: np.ndarray
    capacity: np.ndarray  # [hours]
    capacity_column: int = -1


@dataclass
class LinearModel:
    """min cost @ x  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper."""

    ids: dict[str, list[str]]  # dimension name -> ids (hours are numbers)
    variables: dict[str, Family] = field(default_factory=dict)
    constraints: dict[str, Family] = field(default_factory=dict)
    col_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    col_integer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    row_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    row_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    matrix: sp.csc_matrix = field(default_factory=lambda: sp.csc_matrix((0, 0)))
    cumulatives: list[Cumulative] = field(default_factory=list)
    hours: int = 0
    #: Labelled sums families shared while building (optimizer.model.families.base.Expression ->
    #: Terms), kept for diagnosis: e.g. the blocks of each pool in use in each hour.
    expressions: dict = field(default_factory=dict)

    @property
    def n_cols(self) -> int:
        return len(self.col_cost)

    @property
    def n_rows(self) -> int:
        return len(self.row_lower)

    @property
    def is_mip(self) -> bool:
        return bool(self.col_integer.any())

    def column_names(self) -> list[str]:
        return [fam.label(k, self.ids) for fam in self.variables.values() for k in range(fam.size)]

    def row_names(self) -> list[str]:
        return [fam.label(k, self.ids) for fam in self.constraints.values() for k in range(fam.size)]

    def column_family(self, column: int) -> tuple[Family, int]:
        for fam in self.variables.values():
            if fam.start <= column < fam.start + fam.size:
                return fam, column - fam.start
        raise IndexError(column)

    def row_family(self, row: int) -> tuple[Family, int]:
        for fam in self.constraints.values():
            if fam.start <= row < fam.start + fam.size:
                return fam, row - fam.start
        raise IndexError(row)

    def cost_breakdown(self, solution: np.ndarray) -> dict[str, float]:
        """USD per cost key (``usage``, ``energy``, ...) of a solution, from the declared terms."""
        out: dict[str, float] = {}
        for fam in self.variables.values():
            for key, usd in fam.cost_terms:
                out[key] = out.get(key, 0.0) + float(usd @ solution[fam.slice])
        return out

    def check_continuous_columns(self) -> None:
        """Each continuous column sits in exactly one row, of the ``>=`` row family its variable
        family declared (``covered_by``), with a positive coefficient: unmet demand, shortfall and
        slack are what a demand row lacks.  CP-SAT's scaling and the continuous-column repair of
        the decomposition rely on it.  ModelError naming the families otherwise."""
        csc = self.matrix.tocsc()
        for fam in self.variables.values():
            if fam.size == 0 or self.col_integer[fam.slice].all() or fam.decision:
                continue
            count = np.diff(csc.indptr)[fam.slice]
            if np.any(count != 1):
                raise ModelError(f"{fam.name}: a continuous column sits in {int(count.max())} rows or none; "
                                 f"each must sit in exactly one row of {fam.covered_by or 'a >= row family'}")
            entries = csc.indptr[fam.start:fam.start + fam.size]
            rows, coefficients = csc.indices[entries], csc.data[entries]
            row_family = self.constraints.get(fam.covered_by) if fam.covered_by else None
            if row_family is None or row_family.sense != ">=":
                raise ModelError(f"{fam.name}: continuous, but declares no '>=' row family it is covered by")
            if np.any((rows < row_family.start) | (rows >= row_family.start + row_family.size)):
                raise ModelError(f"{fam.name}: a continuous column sits outside its row family {row_family.name}")
            if not (np.isfinite(self.row_lower[rows]).all() and np.isposinf(self.row_upper[rows]).all()):
                raise ModelError(f"{fam.name}: a row of {row_family.name} it sits in is not a '>=' row")
            if np.any(coefficients <= 0):
                raise ModelError(f"{fam.name}: a continuous column has a coefficient <= 0 in {row_family.name}")

    def settle_continuous(self, solution: np.ndarray) -> np.ndarray:
        """The solution with its integer columns as they are and every continuous column at the
        least its ``>=`` row needs beside them (never below its lower bound, never above its
        upper bound).

        A MIP solver's incumbent can leave a priced slack (unmet demand, shortfall) above what its
        row needs: a heuristic plan is not re-optimised in its continuous part, and a solve that
        stops at its gap keeps it.  That overstates the objective against the plan's own cost
        (measured on generated instances: up to 1.8e-4 relative).  Each continuous column sits in
        exactly one ``>=`` row with a positive coefficient (``check_continuous_columns``), so the
        least is closed-form; where several share a row, the cheapest per unit of the row goes first.
        """
        self.check_continuous_columns()
        x = np.asarray(solution, dtype=float).copy()
        continuous = self.slack_columns
        if not continuous.any():
            return x
        csc = self.matrix.tocsc()
        cols = np.nonzero(continuous)[0]  # each in exactly one >= row (checked above)
        rows, coef = csc.indices[csc.indptr[cols]], csc.data[csc.indptr[cols]]
        x[cols] = 0.0
        activity = self.matrix @ x  # every row's activity without its continuous columns
        need = self.row_lower[rows] - activity[rows]
        # Rows with one continuous column (all of today's families): closed form.
        per_row = np.bincount(rows, minlength=self.n_rows)
        single = per_row[rows] == 1
        x[cols[single]] = np.clip(need[single] / coef[single], self.col_lower[cols[single]], self.col_upper[cols[single]])
        # Rows with several: fill the row cheapest first, each up to its bounds.
        shared = np.nonzero(~single)[0]
        order = shared[np.lexsort((cols[shared], self.col_cost[cols[shared]] / coef[shared], rows[shared]))]
        covered: dict[int, float] = {}
        for k in order:
            j, i = cols[k], int(rows[k])
            left = need[k] - covered.get(i, 0.0)
            value = float(np.clip(left / coef[k], self.col_lower[j], self.col_upper[j]))
            x[j] = value
            covered[i] = covered.get(i, 0.0) + value * coef[k]
        return x

    def _flagged(self, flag: str) -> np.ndarray:
        """Columns of the variable families whose declaration sets ``flag``."""
        out = np.zeros(self.n_cols, dtype=bool)
        for fam in self.variables.values():
            if getattr(fam, flag):
                out[fam.slice] = True
        return out

    @property
    def decision_columns(self) -> np.ndarray:
        """Continuous decisions (coverage, spend levels): kept as the solver chose them."""
        return self._flagged("decision")

    @property
    def purchase_columns(self) -> np.ndarray:
        """Purchases (reservations, blocks bought, commitment levels): a hedge's first stage."""
        return self._flagged("purchase")

    def purchase_labels(self) -> dict[str, int]:
        """Each purchase column's name (e.g. ``blocks_bought[aws-cb-1d,24]``) and column number:
        the names are the same in every scenario of one instance, so they key a hedge."""
        return {fam.label(k, self.ids): fam.start + k for fam in self.variables.values() if fam.purchase
                for k in range(fam.size)}

    @property
    def slack_columns(self) -> np.ndarray:
        """Continuous slack (unmet demand, shortfall): each the least its one >= row needs."""
        return ~self.col_integer & ~self.decision_columns

    def values(self, solution: np.ndarray, name: str) -> np.ndarray:
        """The solution values of one variable family (zeros if the family is absent)."""
        fam = self.variables.get(name)
        return np.zeros(0) if fam is None else solution[fam.slice]

    def stats(self) -> dict[str, int]:
        return {
            "columns": self.n_cols,
            "integer_columns": int(self.col_integer.sum()),
            "rows": self.n_rows,
            "nonzeros": int(self.matrix.nnz),
        }


class ModelBuilder:
    """Collects families; :meth:`build` assembles one sparse matrix."""

    def __init__(self, ids: dict[str, list[str]]):
        self.model = LinearModel(ids=ids)
        self._cols: list[tuple[np.ndarray, ...]] = []
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._n_cols = 0
        self._n_rows = 0

    def add_variables(
        self,
        name: str,
        dims: tuple[str, ...],
        coords: tuple[np.ndarray, ...],
        *,
        lower: np.ndarray | float,
        upper: np.ndarray | float,
        cost: np.ndarray | float,
        integer: bool,
        hourly: bool = True,
        elastic: bool = False,
        covered_by: str | None = None,
        decision: bool = False,
        purchase: bool = False,
        dual_lp: str = "hold",
        cost_terms: dict[str, np.ndarray | float] | None = None,
    ) -> Family:
        """Columns; ``cost`` is each column's objective coefficient, ``cost_terms`` how it splits
        into cost keys (for the breakdown: given apart so that ``cost`` keeps its own rounding)."""
        size = len(coords[0]) if coords else 1
        terms = tuple((key, np.broadcast_to(np.asarray(v, dtype=float), (size,))) for key, v in (cost_terms or {}).items())
        fam = Family(name, dims, tuple(np.asarray(c) for c in coords), self._n_cols, size, hourly=hourly,
                     elastic=elastic, covered_by=covered_by, decision=decision, purchase=purchase,
                     dual_lp=dual_lp, cost_terms=terms)
        self._cols.append(
            tuple(np.broadcast_to(np.asarray(v, dtype=float), (size,)) for v in (lower, upper, cost))
            + (np.full(size, integer),)
        )
        self._n_cols += size
        self.model.variables[name] = fam
        return fam

    def add_constraints(
        self,
        name: str,
        dims: tuple[str, ...],
        coords: tuple[np.ndarray, ...],
        *,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        lower: np.ndarray | float,
        upper: np.ndarray | float,
        sense: str = "",
        cpsat_refusal: str = "",
    ) -> Family:
        """Rows ``lower <= sum(vals * x[cols]) <= upper``; ``rows`` are 0-based within the family.
        A family with no dims is one row, or none where it has no entries (it would say 0 <= upper)."""
        size = len(coords[0]) if coords else (1 if np.size(rows) else 0)
        fam = Family(name, dims, tuple(np.asarray(c) for c in coords), self._n_rows, size, sense=sense,
                     cpsat_refusal=cpsat_refusal)
        self._rows.append(
            tuple(np.broadcast_to(np.asarray(v, dtype=float), (size,)) for v in (lower, upper))
        )
        self._entries.append((np.asarray(rows) + self._n_rows, np.asarray(cols), np.asarray(vals, dtype=float)))
        self._n_rows += size
        self.model.constraints[name] = fam
        return fam

    def build(self) -> LinearModel:
        model = self.model

        def stack(parts: list, index: int, dtype=float) -> np.ndarray:
            return np.concatenate([p[index] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)

        model.col_lower = stack(self._cols, 0)
        model.col_upper = stack(self._cols, 1)
        model.col_cost = stack(self._cols, 2)
        model.col_integer = stack(self._cols, 3, bool)
        model.row_lower = stack(self._rows, 0)
        model.row_upper = stack(self._rows, 1)
        rows = stack(self._entries, 0, np.int64)
        cols = stack(self._entries, 1, np.int64)
        vals = stack(self._entries, 2)
        model.matrix = sp.csc_matrix((vals, (rows, cols)), shape=(self._n_rows, self._n_cols))
        model.matrix.sum_duplicates()
        return model
