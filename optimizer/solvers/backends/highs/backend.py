"""HiGHS through highspy: the whole model in process, or (with a time limit) in a worker process
killed at the limit, or by the hour decomposition (:mod:`.decompose`)."""

from __future__ import annotations

import time

import highspy
import numpy as np

from optimizer.model.linear import LinearModel
from optimizer.solvers.backends import Backend, SolverError
from optimizer.solvers.backends.highs.arrays import load_model
from optimizer.solvers.backends.highs.options import apply_options, highs_options
from optimizer.solvers.backends.highs.status import classify_outcome, read_highs_outcome
from optimizer.solvers.options import SolveOptions
from optimizer.solvers.progress import Progress
from optimizer.solvers.result import SolveResult, SolveStatus


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


#: ``--method auto`` decomposes a MILP with at least this many hours and this share of its columns
#: in one hour each; below either, the whole model goes to HiGHS.  Measured in benchmarks/perf.py
#: (docs/performance.md): on every MILP there (12 to 8,760 hours, 60% to 99% of the columns
#: hour-local), decompose proved a gap no worse than direct in the same time, and on the campus
#: week 1,000 times faster; on an LP the decomposition has nothing to add.  The gang-scheduled
#: frontier-lab-week proved less with decompose (1.17% against 0.37-0.90% in 60 s) while its
#: rounding found no plan; with the rounding mended it proves 0.25% against direct's 0.91%.
AUTO_MIN_HOURS = 2
AUTO_MIN_HOUR_SHARE = 0.5


class HighsBackend(Backend):
    name = "highs"
    methods = ("auto", "direct", "decompose")

    def choose_method(self, model: LinearModel, options: SolveOptions) -> tuple[str, str]:
        from optimizer.solvers.backends.highs.split import column_hours

        if not model.is_mip:
            return "direct", "an LP (no whole blocks): HiGHS solves it outright"
        hours = column_hours(model)
        count = len(np.unique(hours[hours >= 0]))
        share = float(np.mean(hours >= 0)) if model.n_cols else 0.0
        where = f"a MILP over {count} hour{'s' if count != 1 else ''}, {share:.0%} of {model.n_cols:,} columns hour-local"
        if count < AUTO_MIN_HOURS:
            return "direct", f"{where}: nothing to decompose"
        if share < AUTO_MIN_HOUR_SHARE:
            return "direct", f"{where} (< {AUTO_MIN_HOUR_SHARE:.0%}): the hours do not carry it"
        return "decompose", f"{where}: hour by hour, then the whole MILP from that plan"

    def _solve(self, model: LinearModel, options: SolveOptions, progress: Progress | None) -> SolveResult:
        if options.method == "decompose" and model.is_mip:
            from optimizer.solvers.backends.highs.decompose import solve_decomposed

            result = solve_decomposed(model, options, progress)
            if result is not None:
                return result  # None: its LP relaxation has no plan; the direct solve proves or explains it
        if model.is_mip and options.time_limit_s is not None:
            return self._solve_in_worker(model, options, progress)
        highs = highspy.Highs()
        apply_options(highs, highs_options(options))
        if options.time_limit_s is not None:
            highs.setOptionValue("time_limit", float(options.time_limit_s))
        load_model(highs, model)
        started = time.perf_counter()
        if progress is not None and model.is_mip:
            _watch(highs, progress, started)
        highs.run()
        seconds = time.perf_counter() - started
        status, objective, bound, words = read_highs_outcome(highs, model.is_mip)
        values = np.asarray(highs.getSolution().col_value, dtype=float) if status.has_plan else None
        return SolveResult(status, objective, bound, values, seconds, f"HiGHS: {words}")

    def _solve_in_worker(self, model: LinearModel, options: SolveOptions, progress: Progress | None) -> SolveResult:
        """A MILP with a time limit, in a worker process killed at the limit (:mod:`.worker`):
        HiGHS alone can run minutes past its limit on a large model."""
        from optimizer.solvers.backends.highs.worker import WorkerProblem, run_in_worker

        problem = WorkerProblem.from_model(model, highs_options(options))
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
