"""The hour step: many small, independent MILPs (one per hour) solved side by side.

The decomposition's per-hour plans and the Lagrangian bound's subproblems are both a batch of
small models given as arrays.  They run through :class:`~optimizer.tasks.TaskPool`: a process pool
by default, an existing Dask cluster with ``--cluster ADDRESS``, or this process's threads when the
hours are too few to pay for starting processes (HiGHS releases the GIL while it solves).

Pool processes are fresh interpreters (:class:`~optimizer.tasks.ChildPool`), started when the
solve starts so that they are ready when the LP relaxation is: a fork of this process could
inherit HiGHS's thread pool half-made (HiGHS has run here before the hours start).  Each task is a *batch* of
hours, so that a year of hours is a few hundred tasks, not thousands; within a batch, what a fast
hour leaves of its time goes to the next one.  Times are wall-clock deadlines (``time.time()``)
so they mean the same in a worker process or on a cluster's machines (clocks kept in step).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

#: Below this many hour columns in all, the hours run on this process's threads: starting a
#: process pool (about a second) would cost more than it saves.
POOL_MIN_COLUMNS = 20_000
#: Tasks per worker per batch of hours: enough that a slow batch does not hold up the others.
BATCHES_PER_WORKER = 6


@dataclass(frozen=True)
class HourProblem:
    """One hour's MILP as arrays: min cost'x, lower <= x <= upper, row_lower <= A x <= row_upper."""

    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray


@dataclass(frozen=True)
class HourAnswer:
    """What one hour's solve gave: its dual bound (a valid lower bound on the hour's optimum; +inf if
    the hour has no plan, -inf if nothing is known), and its best plan, if any."""

    bound: float
    objective: float | None
    values: np.ndarray | None
    solved: bool  # False: the hour was not started (its time was gone)
    seconds: float = 0.0  # what its solve took (benchmarks/perf.py projects cluster sizes from these)


@dataclass(frozen=True)
class HourPolicy:
    """How hours share their time: an hour starting with ``even_s`` as its even share of what is
    left gets at least ``least_s`` (and ``least_s_per_column`` per column), at most ``most_s``, and
    never runs past ``deadline``; an hour left ``skip_below`` seconds or less is not started.
    ``share_end``: when the hours' time is up.  ``gap``/``abs_gap``: when an hour's MILP may stop.
    ``bound_fallback_s``: for callers that need every hour's bound (the Lagrangian)."""

    deadline: float
    share_end: float
    gap: float
    abs_gap: float = 0.0
    least_s: float = 0.05
    least_s_per_column: float = 0.0
    most_s: float = np.inf
    skip_below: float = 0.0
    bound_fallback_s: float = 0.0  # > 0: an hour ending without a dual bound gets its LP's (see _lp_bound)

    def seconds(self, columns: int, even_s: float, now: float) -> float:
        least = min(max(self.least_s_per_column * columns, self.least_s), self.most_s)
        return min(self.deadline - now, min(max(even_s, least), self.most_s))


def solve_hour(problem: HourProblem, policy: HourPolicy, seconds: float) -> HourAnswer:
    """One hour's MILP with one HiGHS thread for ``seconds`` at most."""
    from optimizer.solvers.backends.highs.arrays import run_strict
    from optimizer.solvers.backends.highs.status import has_plan, is_infeasible, is_optimal

    began = time.perf_counter()
    if seconds <= policy.skip_below:
        return HourAnswer(_lp_bound(problem, policy), None, None, False, time.perf_counter() - began)
    highs = run_strict(problem.cost, problem.lower, problem.upper, problem.integer, problem.matrix,
                       problem.row_lower, problem.row_upper, gap=policy.gap, time_limit=seconds,
                       abs_gap=policy.abs_gap)
    status, info = highs.getModelStatus(), highs.getInfo()
    if is_infeasible(status):
        return HourAnswer(np.inf, None, None, True, time.perf_counter() - began)
    values = np.asarray(highs.getSolution().col_value) if has_plan(highs) else None
    objective = float(info.objective_function_value) if values is not None else None
    if problem.integer.any():
        bound = float(info.mip_dual_bound)  # valid however early the hour stopped
    else:
        bound = objective if is_optimal(status) and objective is not None else -np.inf
    if np.isnan(bound) or bound == -np.inf:  # stopped before its root LP
        bound = _lp_bound(problem, policy)
    return HourAnswer(bound, objective, values, True, time.perf_counter() - began)


def _lp_bound(problem: HourProblem, policy: HourPolicy) -> float:
    """The hour's LP relaxation as its bound, for an hour that ended without one (not started, or
    stopped before its root LP), when the policy asks for it: without it, one such hour makes a
    Lagrangian evaluation -inf.  An hour's LP takes milliseconds, so this runs past the hour's
    share of the time (at most ``policy.bound_fallback_s``)."""
    from optimizer.solvers.backends.highs.arrays import run_strict
    from optimizer.solvers.backends.highs.status import is_infeasible, is_optimal

    if policy.bound_fallback_s <= 0:
        return -np.inf
    highs = run_strict(problem.cost, problem.lower, problem.upper, np.zeros(len(problem.cost), dtype=bool),
                       problem.matrix, problem.row_lower, problem.row_upper, gap=0.0,
                       time_limit=policy.bound_fallback_s)
    status = highs.getModelStatus()
    if is_infeasible(status):
        return np.inf
    return float(highs.getInfo().objective_function_value) if is_optimal(status) else -np.inf


def solve_batch(task: tuple[list[HourProblem], HourPolicy]) -> list[HourAnswer]:
    """A pool task: a batch of hours one after another, each taking the time left over the hours
    of the batch not yet started."""
    problems, policy = task
    answers = []
    for k, problem in enumerate(problems):
        now = time.time()
        seconds = policy.seconds(len(problem.cost), (policy.share_end - now) / (len(problems) - k), now)
        answers.append(solve_hour(problem, policy, seconds))
    return answers


@contextmanager
def runner_or_own(runner: HourRunner | None, workers: int, hour_columns: int) -> Iterator[HourRunner]:
    """The caller's runner, or one of our own (sized by the hours' columns) for this call."""
    if runner is not None:
        yield runner
        return
    with HourRunner(workers, hour_columns) as own:
        yield own


class HourRunner:
    """Runs hours on ``workers`` workers: threads, a process pool, or a Dask cluster.  Open it once
    per solve (``with HourRunner(...) as runner``): one pool serves every hour step."""

    def __init__(self, workers: int, hour_columns: int, cluster: str | None = None):
        self.workers = max(int(workers), 1)
        if cluster:
            self.kind = "cluster"
        elif self.workers > 1 and hour_columns >= POOL_MIN_COLUMNS:
            self.kind = "processes"
        else:
            self.kind = "threads"
        self.cluster = cluster
        self._pool = None
        self.tasks = 0

    def __enter__(self) -> HourRunner:
        if self.kind != "threads":
            from optimizer.tasks import TaskPool

            self._pool = TaskPool(self.workers, self.cluster, fresh=True).__enter__()
            if self.kind == "cluster":
                self.workers = max(self._pool.cluster_workers(), 1)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.__exit__(*exc)
            self._pool = None

    def describe(self) -> str:
        if self.kind == "cluster":
            return f"Dask cluster {self.cluster} ({self.workers} workers)"
        return f"{self.workers} {self.kind}"

    def solve(self, problems: list[HourProblem], policy: HourPolicy) -> list[HourAnswer]:
        """Every problem's answer, in order; problems early in the list start first."""
        if not problems:
            return []
        if self.kind == "threads":
            return self._on_threads(problems, policy)
        count = min(len(problems), self.workers * BATCHES_PER_WORKER)
        edges = np.linspace(0, len(problems), count + 1).astype(int)
        # Batches start about a worker's count at a time: batch b's hours are due by the b-th
        # round's share of the time, so early batches cannot spend what later ones need.
        now, rounds = time.time(), -(-count // self.workers)
        tasks = []
        for b in range(count):
            end = now + (policy.share_end - now) * (b // self.workers + 1) / rounds
            tasks.append((problems[edges[b]:edges[b + 1]], replace(policy, share_end=end)))
        self.tasks += len(tasks)
        return [answer for batch in self._pool.results(solve_batch, tasks) for answer in batch]

    def _on_threads(self, problems: list[HourProblem], policy: HourPolicy) -> list[HourAnswer]:
        # Each hour, as it starts, gets the time left over the hours not yet started, times the
        # workers: what fast hours leave goes to later ones.
        left = iter(range(len(problems), 0, -1))
        lock = threading.Lock()

        def one(problem: HourProblem) -> HourAnswer:
            with lock:
                not_started = next(left)
            now = time.time()
            even = (policy.share_end - now) * self.workers / not_started
            return solve_hour(problem, policy, policy.seconds(len(problem.cost), even, now))

        self.tasks += len(problems)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(one, problems))
