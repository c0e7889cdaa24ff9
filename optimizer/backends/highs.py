"""HiGHS through highspy: the model's arrays passed in one call, no per-row Python objects."""

from __future__ import annotations

import time
from pathlib import Path

import highspy
import numpy as np

from optimizer.backends import Backend, SolverError
from optimizer.model import LinearModel
from optimizer.options import SolveOptions
from optimizer.progress import Progress
from optimizer.result import SolveResult, SolveStatus, relative_gap

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
# HiGHS's SolutionStatus: 2 = kSolutionStatusFeasible.
_FEASIBLE_SOLUTION = 2


def read_highs_outcome(highs: highspy.Highs, is_mip: bool) -> tuple[SolveStatus, float | None, float | None, str]:
    """Status, objective and bound as HiGHS itself reports them (shared with PuLP's HiGHS).

    PuLP calls a HiGHS time-out "Optimal"; this reads the model status, the
    primal solution status and the MIP dual bound from the solver object.
    """
    model_status = highs.getModelStatus()
    info = highs.getInfo()
    has_solution = info.primal_solution_status == _FEASIBLE_SOLUTION
    objective = float(info.objective_function_value) if has_solution else None
    bound = float(info.mip_dual_bound) if is_mip else None
    return classify_outcome(model_status, highs.modelStatusToString(model_status), objective, bound, is_mip)


def classify_outcome(model_status, words: str, objective: float | None, bound: float | None,
                     is_mip: bool) -> tuple[SolveStatus, float | None, float | None, str]:
    """Our status from HiGHS's model status; ``objective`` is None when HiGHS holds no plan."""
    model_status = highspy.HighsModelStatus(int(model_status))
    if model_status == highspy.HighsModelStatus.kOptimal:
        return SolveStatus.OPTIMAL, objective, bound if is_mip else objective, words
    if model_status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        # Every cost is >= 0 and every variable >= 0, so "unbounded" cannot happen.
        return SolveStatus.INFEASIBLE, None, None, words
    if model_status in _STOPPED_EARLY:
        if bound is not None and not np.isfinite(bound):
            bound = None
        status = SolveStatus.FEASIBLE if objective is not None else SolveStatus.NO_SOLUTION
        return status, objective, bound, words
    raise SolverError(f"HiGHS ended with model status {words!r}")


def _load(highs: highspy.Highs, model: LinearModel, *, names: bool = False) -> None:
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
    _load(highs, model, names=True)
    highs.writeModel(str(path))


def _watch(highs: highspy.Highs, progress: Progress, started: float) -> None:
    """Report each improving plan and, every half second at most, the bound, to ``progress``."""
    last = [0.0]

    def improving(event) -> None:
        out = event.data_out
        progress.record(time.perf_counter() - started, out.objective_function_value, out.mip_dual_bound)

    def interrupt(event) -> None:
        now = time.perf_counter() - started
        if now - last[0] >= 0.5:
            last[0] = now
            progress.record(now, event.data_out.mip_primal_bound, event.data_out.mip_dual_bound)

    highs.cbMipImprovingSolution.subscribe(improving)
    highs.cbMipInterrupt.subscribe(interrupt)


def _highs_options(options: SolveOptions) -> dict:
    """HiGHS's options by name for a solve of the whole model (the time limit is the caller's:
    a worker process is given a deadline instead)."""
    chosen = {"output_flag": bool(options.verbose), "mip_rel_gap": float(options.mip_rel_gap),
              "random_seed": int(options.random_seed)}
    if options.threads is not None:
        chosen["threads"] = int(options.threads)
    return chosen


class HighsBackend(Backend):
    name = "highs"

    def _solve(self, model: LinearModel, options: SolveOptions, progress: Progress | None) -> SolveResult:
        if options.method == "decompose" and model.is_mip:
            result = self._solve_decomposed(model, options, progress)
            if result is not None:
                return result
        if model.is_mip and options.time_limit_s is not None:
            return self._solve_in_worker(model, options, progress)
        highs = highspy.Highs()
        for name, value in _highs_options(options).items():
            highs.setOptionValue(name, value)
        if options.time_limit_s is not None:
            highs.setOptionValue("time_limit", float(options.time_limit_s))
        _load(highs, model)
        started = time.perf_counter()
        if progress is not None and model.is_mip:
            _watch(highs, progress, started)
        highs.run()
        seconds = time.perf_counter() - started
        status, objective, bound, words = read_highs_outcome(highs, model.is_mip)
        values = np.asarray(highs.getSolution().col_value, dtype=float) if status.has_plan else None
        return SolveResult(status, objective, bound, values, seconds, f"HiGHS: {words}")

    def _solve_in_worker(self, model: LinearModel, options: SolveOptions, progress: Progress | None) -> SolveResult:
        """A MILP with a time limit, in a worker process killed at the limit (optimizer/backends/
        highs_worker.py): HiGHS alone can run minutes past its limit on a large model."""
        from optimizer.backends.highs_worker import WorkerProblem, run_in_worker

        problem = WorkerProblem.from_model(model, _highs_options(options))
        started = time.perf_counter()

        def report(objective, bound) -> None:
            if progress is not None:
                progress.record(time.perf_counter() - started, objective, bound)

        outcome = run_in_worker(problem, time.monotonic() + float(options.time_limit_s), report)
        seconds = time.perf_counter() - started
        if outcome.died:  # a crash says nothing about the instance: not "no plan within the limit"
            raise SolverError(f"HiGHS: {outcome.words}")
        if outcome.finished:
            status, objective, bound, words = classify_outcome(outcome.model_status, outcome.words,
                                                               outcome.objective, outcome.bound, True)
            values = outcome.values if status.has_plan else None
            return SolveResult(status, objective, bound, values, seconds, f"HiGHS: {words}")
        # Killed at the limit: the best plan it had sent, and the last bound it reported.
        status = SolveStatus.FEASIBLE if outcome.values is not None else SolveStatus.NO_SOLUTION
        return SolveResult(status, outcome.objective, outcome.bound, outcome.values, seconds, f"HiGHS: {outcome.words}")

    def _solve_decomposed(self, model: LinearModel, options: SolveOptions, progress: Progress | None) -> SolveResult | None:
        """The decomposed solve (optimizer/decompose.py); None when its LP relaxation does not
        solve (infeasible, say), so the direct solve can say why."""
        from optimizer.decompose import solve_decomposed

        started = time.perf_counter()
        outcome = solve_decomposed(
            model, time_limit_s=options.time_limit_s, mip_rel_gap=options.mip_rel_gap, threads=options.threads,
            random_seed=options.random_seed, progress=progress,
        )
        seconds = time.perf_counter() - started
        if "lp" in outcome.notes or outcome.notes.get("infeasible"):
            return None  # the direct solve proves (or explains) it
        extra = {"decompose": outcome.notes}
        if outcome.values is None:
            return SolveResult(SolveStatus.NO_SOLUTION, None, outcome.bound, None, seconds, "decompose: no plan", extra)
        # Every plan solve_decomposed returns has passed its row check (decompose.is_feasible).
        gap = relative_gap(outcome.objective, outcome.bound)
        within = gap is not None and gap <= options.mip_rel_gap
        return SolveResult(
            SolveStatus.OPTIMAL if within else SolveStatus.FEASIBLE, outcome.objective, outcome.bound,
            outcome.values, seconds, "decompose: within the gap" if within else "decompose: time limit", extra,
        )
