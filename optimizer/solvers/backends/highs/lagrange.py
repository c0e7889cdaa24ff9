"""The Lagrangian lower bound over hours, and the search for its best multipliers.

Every row that couples hours (:mod:`.split`: reservations against ``reserved_blocks``, training
work summed over hours, single-site links, gang runs, commitments and contracts over the horizon)
is *dualized* with multipliers ``y`` of the right sign (HiGHS's convention: ``y >= 0`` on a row
held at its lower side, ``y <= 0`` at its upper side):

    L(y) = sum_i y_i * side_i(y)  +  sum_t min { (c - A_D' y)_t x_t : x_t in X_t }  +  min { ... : x_g in X_g }

where ``X_t`` is hour t's columns with hour t's own rows (pool capacity, site power, demand, max
chips) *and their integrality*, and ``X_g`` the horizon-wide columns with their own rows.  For any
such ``y``, ``L(y)`` is a valid lower bound on the MILP's optimum (weak duality).  Each subproblem
is a small MILP, and its *dual bound* is what is added: an hour stopped early still gives a valid
bound, only a weaker one.

With the LP relaxation's duals, ``L`` is at least the LP bound (each hour's block rounding is
priced in).  :func:`optimise_multipliers` then climbs ``L`` by projected subgradient steps with
Polyak's step length, ``y <- proj(y + theta (UB - L(y)) g / |g|^2)``: ``g = side - A_D x`` is the
coupling rows' violation by the hours' own plans, ``UB`` the best plan's cost, and ``theta`` is
halved when ``L`` stops improving.  The best ``L`` seen is the bound.  (Dantzig-Wolfe column
generation over the hours' plans was tried too: with the few columns a time limit allows, its
master's duals sent L far below the LP's; docs/performance.md.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from optimizer.model.linear import LinearModel
from optimizer.solvers.backends.highs.hours import HourPolicy, HourProblem, HourRunner, runner_or_own
from optimizer.solvers.backends.highs.split import Groups, HourSplit, split_by_hour

#: Polyak's step starts at this fraction of (UB - L) / |g|^2 and is halved after STALL_ITERATIONS
#: evaluations without a better L; the search stops once it is below THETA_MIN.  UB - L is far
#: above the distance to the best L, so the step starts short (measured: docs/performance.md).
THETA_START = 0.05
STALL_ITERATIONS = 2
THETA_MIN = 1e-3
#: An hour that ends without a dual bound (not started in time, or stopped before its root LP)
#: counts with its LP relaxation, given this many seconds at most (an hour's LP takes milliseconds).
BOUND_FALLBACK_S = 1.0


@dataclass(frozen=True)
class LagrangianBound:
    bound: float  # valid lower bound on the MILP optimum (-inf: an hour said nothing)
    constant: float  # sum_i y_i * side_i over dualized rows
    hours: int  # subproblems solved
    seconds: float
    coupling_rows: int
    iterations: int = 1
    start_bound: float | None = None  # L at the first multipliers (the LP's duals)
    start_seconds: float | None = None
    history: list = field(default_factory=list)  # (seconds, L) per iteration


class Dualized:
    """The model with its coupling rows dualized: the hour subproblems, ready for any ``y``."""

    def __init__(self, model: LinearModel, split: HourSplit):
        self.model, self.split = model, split
        self.coupling = split.coupling
        self.csr = model.matrix.tocsr()
        self.coupling_matrix = self.csr[np.nonzero(self.coupling)[0]]
        self.columns_of, rows_of = Groups(split.col_hour), Groups(split.row_hour)
        submatrix = self.columns_of.submatrices(self.csr)
        self.groups = np.unique(split.col_hour).tolist()
        self.cols = [self.columns_of[g] for g in self.groups]
        self.mats = [submatrix(rows_of[g], g).tocsc() for g in self.groups]
        self.rows = [rows_of[g] for g in self.groups]
        low, up = model.row_lower[self.coupling], model.row_upper[self.coupling]
        self.low, self.up = low, up
        self.hour_columns = int(np.count_nonzero(split.col_hour >= 0))

    def project(self, y_coupling: np.ndarray) -> np.ndarray:
        """Multipliers of the right sign: >= 0 where the row has no upper side, <= 0 where it has no
        lower side."""
        y = np.where(np.isfinite(self.up), y_coupling, np.maximum(y_coupling, 0.0))
        return np.where(np.isfinite(self.low), y, np.minimum(y, 0.0))

    def constant(self, y: np.ndarray) -> float:
        """sum_i y_i * side_i(y): the side each multiplier's sign picks."""
        side = np.where(y > 0, np.nan_to_num(self.low, neginf=0.0), np.nan_to_num(self.up, posinf=0.0))
        return float(np.sum(y * side))

    def problems(self, y: np.ndarray) -> list[HourProblem]:
        """Each group's subproblem at multipliers ``y``: its columns priced at ``c - A_D' y``."""
        model = self.model
        reduced = model.col_cost - self.coupling_matrix.T @ y
        return [HourProblem(reduced[c], model.col_lower[c], model.col_upper[c], model.col_integer[c], m,
                            model.row_lower[r], model.row_upper[r])
                for c, m, r in zip(self.cols, self.mats, self.rows)]

    def evaluate(self, y: np.ndarray, policy: HourPolicy, runner: HourRunner) -> tuple[float, float, np.ndarray]:
        """(L(y), its constant part, the hours' plans x) for coupling-row multipliers ``y``; x is
        NaN on the columns of an hour that found no plan in its time."""
        model = self.model
        constant = self.constant(y)
        problems = self.problems(y)
        answers = runner.solve(problems, policy)
        x = np.full(model.n_cols, np.nan)
        total = constant
        for cols, answer in zip(self.cols, answers):
            total += answer.bound  # the hour's LP bound when it was not started in time
            if answer.values is not None:
                x[cols] = answer.values
        return (total if not np.isnan(total) else -np.inf), constant, x

    def subgradient(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``side - A_D x`` per coupling row, the side chosen by y's sign (a row at 0 moves only if
        the hours' plans break it)."""
        activity = self.coupling_matrix @ x
        below = np.nan_to_num(self.low - activity, nan=0.0, neginf=0.0)
        above = np.nan_to_num(self.up - activity, nan=0.0, posinf=0.0)
        return np.where(y > 0, below, np.where(y < 0, above, np.maximum(below, 0.0) + np.minimum(above, 0.0)))


def lagrangian_bound(model: LinearModel, row_duals: np.ndarray, split: HourSplit | None = None,
                     time_limit_s: float | None = None, workers: int = 1, slack_usd: float = 0.0,
                     runner: HourRunner | None = None) -> LagrangianBound:
    """L(y) for the given row duals (HiGHS sign convention); a dual of the wrong sign for a row's
    finite side counts as 0.  ``slack_usd`` is how much of the bound the subproblems may leave
    unproven in all: each stops once its own gap is within its share."""
    started = time.perf_counter()
    dualized = Dualized(model, split or split_by_hour(model))
    y = dualized.project(row_duals[dualized.coupling])
    policy = _policy(dualized, time_limit_s, workers, slack_usd)
    with runner_or_own(runner, workers, dualized.hour_columns) as hours:
        bound, constant, _ = dualized.evaluate(y, policy, hours)
    return LagrangianBound(bound, constant, len(dualized.groups), time.perf_counter() - started,
                           int(dualized.coupling.sum()))


def optimise_multipliers(model: LinearModel, row_duals: np.ndarray, upper_bound: float, time_limit_s: float,
                         split: HourSplit | None = None, workers: int = 1, slack_usd: float = 0.0,
                         fallback: np.ndarray | None = None, runner: HourRunner | None = None,
                         hour_seconds: float | None = None, target: float = np.inf,
                         max_iterations: int = 200) -> LagrangianBound:
    """The best L(y) found in ``time_limit_s`` by projected subgradient steps from the LP's duals
    (see the module's docstring).  ``upper_bound``: a plan's cost (Polyak's target);
    ``fallback``: column values that hold each hour's own rows (the LP's), for an hour that finds
    no plan in its time; the search stops early once L reaches ``target`` (the bound that would
    close the caller's gap).  ``hour_seconds``: each hour's cap per evaluation (default: an even
    share of a tenth of the time)."""
    started = time.perf_counter()
    dualized = Dualized(model, split or split_by_hour(model))
    fallback = np.zeros(model.n_cols) if fallback is None else fallback
    y = dualized.project(row_duals[dualized.coupling])
    deadline = started + time_limit_s
    per_hour = hour_seconds
    if per_hour is None:
        per_hour = max(0.1 * time_limit_s * workers / max(len(dualized.groups), 1), 0.02)
    abs_gap = slack_usd / max(len(dualized.groups), 1)
    history: list = []
    best, best_point, first, first_seconds = -np.inf, None, None, None
    theta, stall, iterations, last_seconds = THETA_START, 0, 0, 0.0
    with runner_or_own(runner, workers, dualized.hour_columns) as hours:
        while iterations < max_iterations:
            left = deadline - time.perf_counter()
            if iterations > 0 and left < last_seconds:
                break  # not time for another evaluation as long as the last
            began, now = time.perf_counter(), time.time()
            policy = HourPolicy(deadline=now + max(left, 0.05), share_end=now + max(left, 0.05), gap=1e-4,
                                abs_gap=abs_gap, least_s=per_hour, most_s=per_hour,
                                bound_fallback_s=BOUND_FALLBACK_S)
            value, _, x = dualized.evaluate(y, policy, hours)
            x = np.where(np.isnan(x), fallback, x)
            last_seconds = time.perf_counter() - began
            iterations += 1
            history.append((round(time.perf_counter() - started, 3), value))
            if first is None:
                first, first_seconds = value, last_seconds
            if np.isfinite(value) and value > best:
                best, stall = value, 0
                best_point = point = (y, value, dualized.subgradient(y, x))
            elif not np.isfinite(value) or stall + 1 >= STALL_ITERATIONS:
                # No better L for a while (or an hour said nothing): back to the best multipliers,
                # with half the step.
                theta, stall, point = theta / 2, 0, best_point
            else:
                stall += 1
                point = (y, value, dualized.subgradient(y, x))
            if best >= target or theta < THETA_MIN or point is None:
                break
            base_y, base_value, g = point
            norm = float(g @ g)
            if norm <= 1e-12:
                break  # the hours' plans hold every coupling row: no ascent direction
            step = theta * max(upper_bound - base_value, 1e-6 * abs(upper_bound)) / norm
            y = dualized.project(base_y + step * g)
    return LagrangianBound(best, 0.0, len(dualized.groups), time.perf_counter() - started,
                           int(dualized.coupling.sum()), iterations, first, first_seconds, history)


def _policy(dualized: Dualized, time_limit_s: float | None, workers: int, slack_usd: float) -> HourPolicy:
    now = time.time()
    groups = max(len(dualized.groups), 1)
    if time_limit_s is None:
        return HourPolicy(deadline=np.inf, share_end=np.inf, gap=1e-4, abs_gap=slack_usd / groups,
                          bound_fallback_s=BOUND_FALLBACK_S)
    per_hour = max(time_limit_s * workers / groups, 0.05)
    return HourPolicy(deadline=now + time_limit_s + per_hour, share_end=now + time_limit_s, gap=1e-4,
                      abs_gap=slack_usd / groups, least_s=per_hour, most_s=per_hour, bound_fallback_s=BOUND_FALLBACK_S)
