"""Hour decomposition: a Lagrangian lower bound that keeps each hour's integrality.

The model is separable by hour except for what couples hours: reservations (``reserved_capacity``
holds ``reserved_blocks``, one column for the whole horizon), training work (``training_work`` sums
over hours), single-site choices (``single_site_link``) and gang runs (a start spans hours).  Every
row that couples hours (or couples an hour with those horizon-wide columns) is *dualized* with
multipliers ``y`` of the right sign, here the LP relaxation's row duals:

    L(y) = sum_i y_i * bound_i  +  sum_t min { (c - A_D' y)_t x_t : x_t in X_t }  +  min { ... : x_g in X_g }

where ``X_t`` is hour t's columns with hour t's own rows (pool capacity, site power, demand,
max chips) *and their integrality*, and ``X_g`` the horizon-wide columns with their own rows.
For any such ``y``, ``L(y)`` is a valid lower bound on the MILP's optimum (weak duality), and with
the LP's optimal duals it is at least the LP bound: each hour's block rounding is priced in, which
is where the LP relaxation of this model is weakest.  Each subproblem is a small MILP solved by
HiGHS; its *dual bound* is what is added, so a subproblem stopped early still gives a valid bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.model import LinearModel

#: Families whose columns belong to one hour (their "hour" coordinate).  Gang starts span hours.
_HOURLY_EXCLUDED = {"gang_start"}


def column_hours(model: LinearModel) -> np.ndarray:
    """The hour of each column, or -1 for columns that span the horizon."""
    hour = np.full(model.n_cols, -1, dtype=np.int64)
    for fam in model.variables.values():
        if "hour" in fam.dims and fam.name not in _HOURLY_EXCLUDED:
            hour[fam.slice] = fam.coords[fam.dims.index("hour")]
    return hour


@dataclass(frozen=True)
class HourSplit:
    """Which rows are one hour's own, which span the horizon only, and which couple (are dualized)."""

    col_hour: np.ndarray
    row_hour: np.ndarray  # hour of an hour-local row, -1 for a horizon-only row, -2 for a coupling row

    @property
    def coupling(self) -> np.ndarray:
        return self.row_hour == -2


def split_by_hour(model: LinearModel) -> HourSplit:
    col_hour = column_hours(model)
    csr = model.matrix.tocsr()
    row_of = np.repeat(np.arange(model.n_rows), np.diff(csr.indptr))
    hours_in_row = col_hour[csr.indices]
    low = np.full(model.n_rows, np.iinfo(np.int64).max)
    high = np.full(model.n_rows, -2, dtype=np.int64)
    np.minimum.at(low, row_of, hours_in_row)
    np.maximum.at(high, row_of, hours_in_row)
    row_hour = np.where(low == high, high, -2)  # one hour (or -1: horizon columns only), else coupling
    row_hour[np.diff(csr.indptr) == 0] = -1  # empty rows: horizon-only (they hold no column)
    return HourSplit(col_hour, row_hour)


def _solve_small(cost, lower, upper, integer, matrix: sp.csr_matrix, row_lower, row_upper, time_limit: float | None):
    """A small MILP's dual bound (its optimum when solved), with one HiGHS thread."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("mip_rel_gap", 1e-9)
    if time_limit is not None:
        highs.setOptionValue("time_limit", max(time_limit, 0.01))
    csc = matrix.tocsc()
    highs.passModel(
        len(cost), len(row_lower), int(csc.nnz), int(highspy.MatrixFormat.kColwise), int(highspy.ObjSense.kMinimize),
        0.0, cost, lower, upper, row_lower, row_upper, csc.indptr.astype(np.int32), csc.indices.astype(np.int32),
        csc.data, integer.astype(np.int32),
    )
    highs.run()
    info = highs.getInfo()
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return np.inf  # an infeasible hour: no plan exists; the bound is unbounded above
    if integer.any():
        return float(info.mip_dual_bound)
    if status == highspy.HighsModelStatus.kOptimal:
        return float(info.objective_function_value)
    return -np.inf  # an LP that stopped unproven says nothing


@dataclass(frozen=True)
class LagrangianBound:
    bound: float  # valid lower bound on the MILP optimum
    constant: float  # sum_i y_i * bound_i over dualized rows
    hours: int  # subproblems solved
    seconds: float
    coupling_rows: int


def lagrangian_bound(model: LinearModel, row_duals: np.ndarray, split: HourSplit | None = None,
                     time_limit_s: float | None = None) -> LagrangianBound:
    """L(y) for the given row duals (HiGHS sign convention: >= 0 on a row held at its lower bound,
    <= 0 at its upper bound); a dual of the wrong sign for a row's finite side counts as 0."""
    started = time.perf_counter()
    split = split or split_by_hour(model)
    coupling = split.coupling
    y = np.where(coupling, row_duals, 0.0)
    y = np.where((y > 0) & ~np.isfinite(model.row_lower), 0.0, y)
    y = np.where((y < 0) & ~np.isfinite(model.row_upper), 0.0, y)
    side = np.where(y > 0, np.nan_to_num(model.row_lower, neginf=0.0), np.nan_to_num(model.row_upper, posinf=0.0))
    constant = float(np.sum(y * side))
    csr = model.matrix.tocsr()
    reduced = model.col_cost - csr.T @ y

    total = constant
    col_order = np.argsort(split.col_hour, kind="stable")
    col_hours_sorted = split.col_hour[col_order]
    row_order = np.argsort(split.row_hour, kind="stable")
    row_hours_sorted = split.row_hour[row_order]
    groups = np.unique(split.col_hour)
    solved = 0
    for hour in groups:
        cols = col_order[np.searchsorted(col_hours_sorted, hour, "left"):np.searchsorted(col_hours_sorted, hour, "right")]
        rows = row_order[np.searchsorted(row_hours_sorted, hour, "left"):np.searchsorted(row_hours_sorted, hour, "right")]
        remaining = None if time_limit_s is None else time_limit_s - (time.perf_counter() - started)
        value = _solve_small(
            reduced[cols], model.col_lower[cols], model.col_upper[cols], model.col_integer[cols],
            csr[rows][:, cols], model.row_lower[rows], model.row_upper[rows], remaining,
        )
        total += value
        solved += 1
    return LagrangianBound(float(total), constant, solved, time.perf_counter() - started, int(coupling.sum()))
