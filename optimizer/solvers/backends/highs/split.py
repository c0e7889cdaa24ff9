"""Which columns and rows are one hour's own, and which couple hours: the structure both the hour
decomposition (:mod:`.decompose`) and the Lagrangian bound (:mod:`.lagrange`) work on.

A column's hour comes from its variable family's declaration (``hourly``); a row's from the hours
of the columns it holds: one hour (an hour-local row), only horizon-wide columns (-1), or more
than one (-2: a coupling row, which the Lagrangian dualizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.model.linear import LinearModel


def column_hours(model: LinearModel) -> np.ndarray:
    """The hour of each column, or -1 for columns that span hours or the horizon (as each variable
    family declares: ``hourly``)."""
    hour = np.full(model.n_cols, -1, dtype=np.int64)
    for fam in model.variables.values():
        if "hour" in fam.dims and fam.hourly:
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


NO_HOUR = np.iinfo(np.int64).min


def row_hour_span(csr: sp.csr_matrix, entry_hour: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row, the least and the greatest hour of its ``live`` entries (``high`` is NO_HOUR for a
    row with none), and each entry's row."""
    row_of = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    low = np.full(csr.shape[0], np.iinfo(np.int64).max)
    high = np.full(csr.shape[0], NO_HOUR)
    np.minimum.at(low, row_of[live], entry_hour[live])
    np.maximum.at(high, row_of[live], entry_hour[live])
    return low, high, row_of


class Groups:
    """Indices grouped by an integer key: ``groups[key]`` is the indices with that key, in order."""

    def __init__(self, keys: np.ndarray):
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]

    def span(self, key: int) -> slice:
        """Where the key's indices sit in ``order``."""
        return slice(np.searchsorted(self.sorted, key, "left"), np.searchsorted(self.sorted, key, "right"))

    def __getitem__(self, key: int) -> np.ndarray:
        return self.order[self.span(key)]

    def submatrices(self, csr: sp.csr_matrix):
        """``submatrix(rows, key)`` = ``csr[rows][:, self[key]]``, cheaply: the columns are put in
        group order once, so each group's are a contiguous slice (picking scattered columns of a
        matrix of millions of columns costs milliseconds each time, with the GIL held)."""
        grouped = csr[:, self.order]
        return lambda rows, key: grouped[rows][:, self.span(key)]


def split_by_hour(model: LinearModel) -> HourSplit:
    col_hour = column_hours(model)
    csr = model.matrix.tocsr()
    low, high, _ = row_hour_span(csr, col_hour[csr.indices], np.ones(csr.nnz, dtype=bool))
    row_hour = np.where(low == high, high, -2)  # one hour (or -1: horizon columns only), else coupling
    row_hour[np.diff(csr.indptr) == 0] = -1  # empty rows: horizon-only (they hold no column)
    return HourSplit(col_hour, row_hour)


