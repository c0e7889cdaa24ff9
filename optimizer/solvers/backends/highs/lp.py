"""An LP solved for its value and its reduced costs (a hedge's L-shaped cuts read them).

A column fixed by its bounds (lower = upper) has as reduced cost the rate at which the LP's
optimum moves with that fixed value: a subgradient of the LP value function in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.model.linear import LinearModel
from optimizer.solvers.backends import SolverError
from optimizer.solvers.backends.highs.arrays import run_arrays
from optimizer.solvers.backends.highs.options import STRICT_TOLERANCES
from optimizer.solvers.backends.highs.status import is_infeasible, is_optimal


@dataclass(frozen=True)
class LpOutcome:
    objective: float
    values: np.ndarray
    reduced_costs: np.ndarray
    row_duals: np.ndarray  # d objective / d row bound (HiGHS's sign: <= 0 on a binding <= row when minimising)


def solve_lp(model: LinearModel, lower: np.ndarray, upper: np.ndarray, time_limit: float | None = None,
             threads: int | None = 1) -> LpOutcome | None:
    """The LP relaxation of ``model`` within the given column bounds; None if it is infeasible.
    SolverError if HiGHS stops without an optimum (a time limit, numerical trouble)."""
    options = {"solver": "simplex", **STRICT_TOLERANCES}
    if threads is not None:
        options["threads"] = threads
    if time_limit is not None:
        options["time_limit"] = max(float(time_limit), 0.01)
    highs = run_arrays(model.col_cost, lower, upper, np.zeros(model.n_cols, dtype=bool), model.matrix,
                       model.row_lower, model.row_upper, options)
    status = highs.getModelStatus()
    if is_infeasible(status):
        return None
    if not is_optimal(status):
        raise SolverError(f"HiGHS stopped the LP without an optimum: {highs.modelStatusToString(status)}")
    solution = highs.getSolution()
    return LpOutcome(float(highs.getInfo().objective_function_value), np.asarray(solution.col_value),
                     np.asarray(solution.col_dual), np.asarray(solution.row_dual))
