"""Handing a model to HiGHS as arrays (one call, no per-row Python objects), and LP/MPS files."""

from __future__ import annotations

from pathlib import Path

import highspy
import numpy as np

from optimizer.model.linear import LinearModel
from optimizer.solvers.backends import SolverError
from optimizer.solvers.backends.highs.options import STRICT_TOLERANCES, apply_options


def load_model(highs: highspy.Highs, model: LinearModel, *, names: bool = False) -> None:
    matrix = model.matrix
    if names:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = model.n_cols, model.n_rows
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = model.col_cost, model.col_lower, model.col_upper
        lp.row_lower_, lp.row_upper_ = model.row_lower, model.row_upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous for flag in model.col_integer
        ]
        lp.col_names_ = model.column_names()
        lp.row_names_ = model.row_names()
        status = highs.passModel(lp)
        if status == highspy.HighsStatus.kError:
            raise SolverError("HiGHS rejected the model")
    else:
        pass_arrays(highs, model.col_cost, model.col_lower, model.col_upper, model.col_integer, matrix,
                    model.row_lower, model.row_upper)


def pass_arrays(highs: highspy.Highs, cost, lower, upper, integer, matrix, row_lower, row_upper) -> None:
    """Hand a model given as arrays (any scipy sparse matrix) to HiGHS in one call."""
    csc = matrix.tocsc()
    status = highs.passModel(
        len(cost),
        len(row_lower),
        int(csc.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        cost,
        lower,
        upper,
        row_lower,
        row_upper,
        csc.indptr.astype(np.int32),
        csc.indices.astype(np.int32),
        csc.data,
        np.asarray(integer).astype(np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the model")


def write_model_file(model: LinearModel, path: str | Path) -> None:
    """Write the model as an LP or MPS file (by suffix) with the family names of docs/formulation.md."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    load_model(highs, model, names=True)
    if highs.writeModel(str(path)) == highspy.HighsStatus.kError:  # HiGHS says nothing else
        raise OSError(f"HiGHS could not write the model to {path}")


def run_arrays(cost, lower, upper, integer, matrix, row_lower, row_upper, options: dict) -> highspy.Highs:
    """A HiGHS run of a model given as arrays, with HiGHS ``options`` by name (see :mod:`.options`)."""
    highs = highspy.Highs()
    apply_options(highs, {"output_flag": False, **options})
    pass_arrays(highs, cost, lower, upper, integer, matrix, row_lower, row_upper)
    highs.run()
    return highs


def run_strict(cost, lower, upper, integer, matrix, row_lower, row_upper, *, gap: float, time_limit: float | None,
               threads: int | None = 1, abs_gap: float = 0.0) -> highspy.Highs:
    """One of the decomposition's own small HiGHS runs (an hour, the LP, a completion), held to the
    strict tolerances so that its plan passes the checker's slack after HiGHS's own scaling."""
    chosen = {"mip_rel_gap": gap, **STRICT_TOLERANCES}
    if abs_gap > 0:
        chosen["mip_abs_gap"] = float(abs_gap)
    if threads is not None:
        chosen["threads"] = threads
    if time_limit is not None:
        chosen["time_limit"] = max(float(time_limit), 0.01)
    return run_arrays(cost, lower, upper, integer, matrix, row_lower, row_upper, chosen)
