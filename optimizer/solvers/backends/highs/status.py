"""HiGHS's words, read from the solver itself and mapped to our status enum once.

PuLP calls a HiGHS time-out "Optimal"; every HiGHS run in chipmix (in process, in the worker, in
the decomposition, under PuLP) is classified here instead, from the model status, the primal
solution status and the MIP dual bound.
"""

from __future__ import annotations

import highspy
import numpy as np

from optimizer.solvers.backends import SolverError
from optimizer.solvers.result import SolveStatus

_STOPPED_EARLY = {
    highspy.HighsModelStatus.kTimeLimit,
    highspy.HighsModelStatus.kIterationLimit,
    highspy.HighsModelStatus.kSolutionLimit,
    highspy.HighsModelStatus.kInterrupt,
    highspy.HighsModelStatus.kObjectiveBound,
    highspy.HighsModelStatus.kObjectiveTarget,
    highspy.HighsModelStatus.kMemoryLimit,
    highspy.HighsModelStatus.kHighsInterrupt,
}
#: HiGHS's SolutionStatus kSolutionStatusFeasible: the solver holds a plan.
FEASIBLE_SOLUTION = 2
#: Model statuses that say "no plan exists".
INFEASIBLE = {highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible}


def has_plan(highs: highspy.Highs) -> bool:
    """HiGHS holds a feasible plan (whatever its model status)."""
    return highs.getInfo().primal_solution_status == FEASIBLE_SOLUTION


def is_infeasible(model_status) -> bool:
    return highspy.HighsModelStatus(int(model_status)) in INFEASIBLE


def is_optimal(model_status) -> bool:
    return highspy.HighsModelStatus(int(model_status)) == highspy.HighsModelStatus.kOptimal


def read_highs_outcome(highs: highspy.Highs, is_mip: bool) -> tuple[SolveStatus, float | None, float | None, str]:
    """Status, objective and bound as HiGHS itself reports them (shared with PuLP's HiGHS).

    PuLP calls a HiGHS time-out "Optimal"; this reads the model status, the
    primal solution status and the MIP dual bound from the solver object.
    """
    model_status = highs.getModelStatus()
    info = highs.getInfo()
    objective = float(info.objective_function_value) if has_plan(highs) else None
    bound = float(info.mip_dual_bound) if is_mip else None
    return classify_outcome(model_status, highs.modelStatusToString(model_status), objective, bound, is_mip)


def classify_outcome(model_status, words: str, objective: float | None, bound: float | None,
                     is_mip: bool) -> tuple[SolveStatus, float | None, float | None, str]:
    """Our status from HiGHS's model status; ``objective`` is None when HiGHS holds no plan."""
    model_status = highspy.HighsModelStatus(int(model_status))
    if model_status == highspy.HighsModelStatus.kOptimal:
        return SolveStatus.OPTIMAL, objective, bound if is_mip else objective, words
    if model_status in INFEASIBLE:
        # Every cost is >= 0 and every variable >= 0, so "unbounded" cannot happen.
        return SolveStatus.INFEASIBLE, None, None, words
    if model_status in _STOPPED_EARLY:
        if bound is not None and not np.isfinite(bound):
            bound = None
        status = SolveStatus.FEASIBLE if objective is not None else SolveStatus.NO_SOLUTION
        return status, objective, bound, words
    raise SolverError(f"HiGHS ended with model status {words!r}")


