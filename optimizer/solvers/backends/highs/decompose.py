"""Hour decomposition (``--method decompose``, the HiGHS backend's second method): an hour-by-hour
plan, a Lagrangian lower bound that keeps each hour's integrality, and the full MILP warm-started
from that plan.

The model is separable by hour except for what couples hours (:mod:`.split`): reservations
(``reserved_capacity`` holds ``reserved_blocks``, one column for the whole horizon), training work
(``training_work`` sums over hours), single-site choices (``single_site_link``), gang runs (a start
spans hours), and the procurement families' horizon-wide purchases.  The plan fixes those
decisions from the LP relaxation and solves each hour's MILP on its own (:mod:`.hours`: a process
pool, threads or a Dask cluster); the bound dualizes them (:mod:`.lagrange`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from optimizer.model.families import FAMILIES
from optimizer.model.linear import LinearModel
from optimizer.solvers.backends.highs.arrays import run_strict
from optimizer.solvers.backends.highs.hours import HourPolicy, HourProblem, HourRunner, runner_or_own
from optimizer.solvers.backends.highs.lagrange import optimise_multipliers
from optimizer.solvers.backends.highs.split import NO_HOUR, Groups, HourSplit, row_hour_span, split_by_hour
from optimizer.solvers.backends.highs.options import STRICT_TOLERANCES, highs_options
from optimizer.solvers.backends.highs.status import is_infeasible, is_optimal
from optimizer.solvers.backends.highs.worker import WorkerProblem, run_in_worker
from optimizer.solvers.options import SolveOptions
from optimizer.solvers.progress import Progress
from optimizer.solvers.result import SolveResult, SolveStatus, relative_gap

#: Below this many columns the full MILP's root bound (with HiGHS's cuts) beats the Lagrangian
#: bound from LP duals in the runs of benchmarks/perf.py, and costs less: skip it.
LAGRANGIAN_MIN_COLUMNS = 500_000
#: Share of the time left that the Lagrangian bound gets.  Its first evaluation (at the LP's duals)
#: may take all of it: each hour is capped at its even share, and it is that evaluation that lifts
#: the bound (benchmarks/perf.py's bound table: the multiplier search gained nothing measurable
#: over the LP's duals in the time it had); what fast hours leave goes to the search.
LAGRANGIAN_SHARE = 0.5
#: Most seconds one hour's MILP gets when a rounded plan already covers it (measured: a 40-pool,
#: 90-workload hour reaches 1% in 0.3 to 1.6 s).
HOUR_SECONDS = 2.0
#: Least seconds an hour's MILP gets per column when a rounded plan covers it, up to HOUR_SECONDS:
#: an even share of the time is too short for a large hour to beat its rounding (L, 1.5k columns
#: an hour, gains nothing at 0.14 s each), while a fixed second or two each spends the time on a
#: few hours and leaves the rest rounded (M, 200 columns an hour: 2.16M USD at 0.5 s each against
#: 2.07M with even shares).  Measured on the perf benchmark's M and L.
HOUR_SECONDS_PER_COLUMN = 3.5e-4


# -- the decomposed solve ---------------------------------------------------------------------------


def lp_relaxation(model: LinearModel, time_limit: float | None) -> tuple[float, np.ndarray, np.ndarray] | str:
    """(LP optimum, column values, row duals), or why not: "infeasible" or "stopped"."""
    highs = run_strict(model.col_cost, model.col_lower, model.col_upper, np.zeros(model.n_cols, dtype=bool),
                          model.matrix, model.row_lower, model.row_upper, gap=0.0, time_limit=time_limit, threads=None)
    status = highs.getModelStatus()
    if is_infeasible(status):
        return "infeasible"
    if not is_optimal(status):
        return "stopped"
    solution = highs.getSolution()
    return (float(highs.getInfo().objective_function_value), np.asarray(solution.col_value),
            np.asarray(solution.row_dual))


def fix_horizon_columns(model: LinearModel, lp_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds with the horizon-wide integer decisions fixed from the LP, as each constraint family
    declares (:meth:`~optimizer.model.families.base.ConstraintFamily.fix_from_lp`): reservations
    rounded up, each single-site run's most used site, each gang run's most chosen start."""
    lower, upper = model.col_lower.copy(), model.col_upper.copy()
    for family in FAMILIES:
        family.fix_from_lp(model, lp_values, lower, upper)
    return lower, upper


def solve_hours_fixed(model: LinearModel, split: HourSplit, lower: np.ndarray, upper: np.ndarray, gap: float,
                      deadline: float, workers: int = 1, start: np.ndarray | None = None,
                      priority: np.ndarray | None = None, runner: HourRunner | None = None,
                      share: float = 0.5) -> np.ndarray | None:
    """With every coupling column fixed (lower == upper), the rest falls apart by hour: solve each
    hour's MILP on its own; None if an hour has no plan (or time runs out).  With ``start`` (a
    plan whose hour rows hold within these bounds), an hour keeps the start's values unless its
    solve finds cheaper ones in its share of the time, and hours are solved in the order of
    ``priority`` (per column: what the start pays above the LP), most first, so the hours that
    rounding served worst are improved first when time is short.  The hours run on ``runner``
    (:mod:`.hours`; by default ``workers`` threads or processes, by the model's size), for ``share``
    of the time left.  (The start is not handed to HiGHS as a MIP start: completing it costs HiGHS
    more than the hour's own solve, measured.)"""
    free = lower < upper
    csr = model.matrix.tocsr()
    values = np.where(free, 0.0, lower)
    fixed_activity = csr @ values
    low, high, _ = row_hour_span(csr, split.col_hour[csr.indices], free[csr.indices])
    if np.any(free & (split.col_hour < 0)) or np.any((low != high) & (high != NO_HOUR)):
        raise ValueError("solve_hours_fixed needs every column that couples hours fixed")
    # Rows with no free column are not this function's: the caller checks the plan as a whole.
    columns_of, rows_of = Groups(np.where(free, split.col_hour, -1)), Groups(np.where(low == high, low, -1))
    submatrix = columns_of.submatrices(csr)
    hours = np.unique(split.col_hour[free])
    if priority is not None:
        loss = np.bincount(np.searchsorted(hours, split.col_hour[free]), weights=priority[free], minlength=len(hours))
        hours = hours[np.argsort(-loss, kind="stable")]
    hours = hours.tolist()
    # ``share`` of the time left is for the hours, shared as it goes: each hour gets the time left
    # for the hours over the hours not yet started (times the workers), so what fast hours leave
    # goes to later ones.  Without a start every hour needs a plan: it gets at least the even share
    # of that time and may run on to the deadline.  With one, an hour gets at least
    # HOUR_SECONDS_PER_COLUMN per column and at most HOUR_SECONDS, and an hour not reached by the
    # end of the share keeps the start's values.
    now = time.time()
    wall_deadline = now + (deadline - time.perf_counter())
    hours_end = now + share * (wall_deadline - now)
    if start is not None:
        policy = HourPolicy(deadline=hours_end, share_end=hours_end, gap=gap, least_s=0.05,
                            least_s_per_column=HOUR_SECONDS_PER_COLUMN, most_s=HOUR_SECONDS, skip_below=0.05)
    else:
        even_share = max((hours_end - now) * workers / max(len(hours), 1), 0.05)
        policy = HourPolicy(deadline=wall_deadline, share_end=hours_end, gap=gap, least_s=even_share)
    problems = []
    for hour in hours:
        cols, rows = columns_of[hour], rows_of[hour]
        problems.append(HourProblem(model.col_cost[cols], lower[cols], upper[cols], model.col_integer[cols],
                                    submatrix(rows, hour).tocsc(), model.row_lower[rows] - fixed_activity[rows],
                                    model.row_upper[rows] - fixed_activity[rows]))
    with runner_or_own(runner, workers, int(free.sum())) as hours_runner:
        answers = hours_runner.solve(problems, policy)
    for hour, answer in zip(hours, answers):
        cols = columns_of[hour]
        found = answer.values
        if found is not None and (start is None or model.col_cost[cols] @ found <= model.col_cost[cols] @ start[cols]):
            values[cols] = found  # hours write disjoint columns
        elif start is None:
            return None  # this hour has no plan (or none in time)
        else:
            values[cols] = start[cols]
    return values


def _row_slack(bound: np.ndarray) -> np.ndarray:
    """The checker's slack on a row bound: 1e-6 absolute plus 1e-7 of the bound."""
    return 1e-6 + 1e-7 * np.abs(np.nan_to_num(bound, posinf=0.0, neginf=0.0))


def tighten_upper(model: LinearModel, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Upper bounds that the <= rows imply once columns are fixed (one pass of bound propagation):
    a column with a positive coefficient can rise only as far as its row's room, the row's bound
    less the least its other columns can contribute.  A single-site run's blocks at a site not
    chosen (``single_site_link`` with ``site_choice`` fixed at 0) get 0, so rounding the LP down
    cannot leave them there."""
    coo = model.matrix.tocoo()
    row, col, coef = coo.row, coo.col, coo.data
    least = np.where(coef > 0, coef * lower[col], coef * upper[col])  # each entry's least contribution
    row_least = np.bincount(row, weights=np.nan_to_num(least, neginf=-1e300), minlength=model.n_rows)
    room = model.row_upper[row] - (row_least[row] - least)
    usable = (coef > 0) & np.isfinite(room) & np.isfinite(least) & (row_least[row] > -1e299)
    limit = np.full(model.n_cols, np.inf)
    np.minimum.at(limit, col[usable], room[usable] / coef[usable])
    limit = np.where(model.col_integer, np.floor(limit + 1e-9), limit)
    return np.maximum(np.minimum(upper, limit), lower)


def round_down(model: LinearModel, lower: np.ndarray, upper: np.ndarray, lp_values: np.ndarray) -> np.ndarray:
    """Whole values from the LP that hold every upper row bound: each integer column rounded down
    (continuous ones keep the LP's values), then each row that rounding broke mended, cheapest per
    unit of the row's excess first, by raising a whole column with a negative coefficient in it or
    by lowering a column with a positive one whose lowering can break no other row (it sits only in
    upper-bounded rows with positive coefficients and lower-bounded ones with negative).  Rounding
    down holds a row only where all its coefficients are positive and all its columns are whole:
    an on/off column under its chips (``training_runs``: chips - cap x runs <= 0) rounded from 0.4
    to 0 with 1,248 chips still in the hour breaks it (the shipped gang week: 320 such rows, and no
    rounded plan), and so do a commitment's covered chips (``covered_usage``: covered - chips in
    use <= 0) left at 7 when the pool's blocks round to 0 (procurement-quarter: 4,368 rows; raising
    the blocks there costs 84k USD, giving up the coverage costs less).  A column is raised only as
    far as every upper bound it touches has room; what cannot be mended stays broken (the plan
    check rejects it)."""
    values = np.clip(np.where(model.col_integer, np.floor(lp_values + 1e-6), lp_values), lower, upper)
    csr = model.matrix.tocsr()
    activity = csr @ values
    slack = _row_slack(model.row_upper)
    broken = np.nonzero(activity > model.row_upper + slack)[0]
    if not len(broken):
        return values
    csc = model.matrix.tocsc()
    entry_row = csc.indices
    entry_col = np.repeat(np.arange(model.n_cols), np.diff(csc.indptr))
    unsafe = ((csc.data > 0) & np.isfinite(model.row_lower[entry_row])) | (
        (csc.data < 0) & np.isfinite(model.row_upper[entry_row]))
    safe_to_lower = np.bincount(entry_col[unsafe], minlength=model.n_cols) == 0
    cost = model.col_cost
    for i in broken:
        entries = slice(csr.indptr[i], csr.indptr[i + 1])
        cols, coef = csr.indices[entries], csr.data[entries]
        raise_ = (coef < 0) & model.col_integer[cols] & (values[cols] < upper[cols])
        lower_ = (coef > 0) & safe_to_lower[cols] & (values[cols] > lower[cols])
        keep = raise_ | lower_
        cols, coef, raise_ = cols[keep], coef[keep], raise_[keep]
        open_ = np.ones(len(cols), dtype=bool)
        while open_.any():
            excess = activity[i] - model.row_upper[i]
            if excess <= slack[i]:
                break
            # Cost per unit of excess removed, a whole column's step counted in full.
            step = np.where(model.col_integer[cols], np.minimum(np.abs(coef), excess), np.abs(coef))
            price = np.where(open_, np.where(raise_, cost[cols], -cost[cols]) / step, np.inf)
            k = int(np.lexsort((raise_, price))[0])  # at a tie, give up the excess rather than add
            open_[k] = False
            j = cols[k]
            rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
            delta = csc.data[csc.indptr[j]:csc.indptr[j + 1]]
            if raise_[k]:
                with np.errstate(divide="ignore", invalid="ignore"):
                    room = np.where(delta > 0, (model.row_upper[rows] + slack[rows] - activity[rows]) / delta, np.inf)
                units = min(np.floor(np.min(room, initial=np.inf) + 1e-12), upper[j] - values[j],
                            np.ceil(excess / -coef[k] - 1e-9))
                if units < 1:
                    continue
            else:
                units = excess / coef[k]
                units = -min(np.ceil(units - 1e-9) if model.col_integer[j] else units, values[j] - lower[j])
            values[j] += units
            activity[rows] += units * delta
    return values


def round_up_cover(model: LinearModel, lower: np.ndarray, upper: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Whole values for the free integer columns, fast: from ``start`` (whole, within the bounds,
    every <= row held), each >= row still short (inference demand, then training work) gets whole
    units added to the column that covers it most cheaply (cost over the cover it adds), as many at
    once as the row needs and every row that column touches has room for; what is left is for the
    row's continuous columns (unmet demand, shortfall) when they cover it more cheaply, or when no
    column has room.  Continuous free slack is returned at its lower bound and continuous
    decisions at ``start``'s values: :func:`complete_continuous` sets them.  Seconds even at a
    year of hours, where the hour MILPs take many minutes."""
    values = start.copy()
    free = lower < upper
    integer_free, continuous_free = free & model.col_integer, free & ~model.col_integer
    # Slack (unmet demand, shortfall) starts at its least; a continuous decision (a routed share,
    # a commitment's coverage) keeps the start's value, so that the rows it feeds ask for blocks.
    slack = continuous_free & ~model.decision_columns
    values[slack] = lower[slack]
    csr, csc = model.matrix.tocsr(), model.matrix.tocsc()
    activity = csr @ values
    row_lower, row_upper = model.row_lower, model.row_upper
    slack_lower, slack_upper = _row_slack(row_lower), _row_slack(row_upper)
    cost = model.col_cost
    short = np.nonzero(activity < row_lower - slack_lower)[0]
    # Rows that nothing continuous can cover (hard demand, hard work) first, while there is room.
    continuous_rows = np.zeros(model.n_rows, dtype=bool)
    continuous_rows[csc[:, np.nonzero(continuous_free)[0]].tocoo().row] = True
    for i in short[np.argsort(continuous_rows[short], kind="stable")]:
        entries = slice(csr.indptr[i], csr.indptr[i + 1])
        cols, coef = csr.indices[entries], csr.data[entries]
        continuous = continuous_free[cols] & (coef > 0)
        continuous_price = np.min(cost[cols[continuous]] / coef[continuous]) if continuous.any() else np.inf
        usable = integer_free[cols] & (coef > 0)
        cols, coef = cols[usable], coef[usable]
        open_ = values[cols] < upper[cols]
        while open_.any():
            need = row_lower[i] - activity[i]
            if need <= slack_lower[i]:
                break
            price = np.where(open_, cost[cols] / np.minimum(coef, need), np.inf)
            k = int(np.argmin(price))
            if price[k] > continuous_price:
                break
            j = cols[k]
            rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
            delta = csc.data[csc.indptr[j]:csc.indptr[j + 1]]
            # Units that fit: each row j touches keeps its bounds (within the checker's slack).
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(delta > 0, (row_upper[rows] + slack_upper[rows] - activity[rows]) / delta,
                                np.where(delta < 0, (activity[rows] - row_lower[rows] + slack_lower[rows]) / -delta,
                                         np.inf))
            units = min(np.floor(np.min(room, initial=np.inf) + 1e-12), upper[j] - values[j], np.ceil(need / coef[k]))
            if units >= 1:
                values[j] += units
                activity[rows] += units * delta
            open_[k] = False  # full, no room, or just sized to the need: this row is done with it
    return values


def complete_continuous(model: LinearModel, lower: np.ndarray, upper: np.ndarray, values: np.ndarray,
                        time_limit: float | None, rows: np.ndarray | None = None) -> np.ndarray | None:
    """``values``'s integer columns fixed, the continuous columns at their LP optimum subject to
    the ``rows`` (a mask; all rows by default): whole values, or None if there are none (or no
    answer in time)."""
    fixed_lower = np.where(model.col_integer, values, lower)
    fixed_upper = np.where(model.col_integer, values, upper)
    row_lower, row_upper = model.row_lower, model.row_upper
    if rows is not None:
        row_lower, row_upper = np.where(rows, row_lower, -np.inf), np.where(rows, row_upper, np.inf)
    highs = run_strict(model.col_cost, fixed_lower, fixed_upper, np.zeros(model.n_cols, dtype=bool), model.matrix,
                          row_lower, row_upper, gap=0.0, time_limit=time_limit, threads=None)
    if not is_optimal(highs.getModelStatus()):
        return None
    return np.asarray(highs.getSolution().col_value)


def _hour_coupling_columns(model: LinearModel, split: HourSplit, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Free hour columns in rows that still couple hours once the horizon columns are fixed
    (training work: one run's blocks over many hours)."""
    free = lower < upper
    csr = model.matrix.tocsr()
    hours = split.col_hour[csr.indices]
    live = free[csr.indices] & (hours >= 0)
    low, high, row_of = row_hour_span(csr, hours, live)
    coupling_rows = (high != NO_HOUR) & (low != high)
    columns = np.zeros(model.n_cols, dtype=bool)
    columns[csr.indices[live & coupling_rows[row_of]]] = True
    return columns


@dataclass
class DecomposedOutcome:
    """What the decomposition found: a plan (column values) with its cost, and a valid bound."""

    values: np.ndarray | None
    objective: float | None
    bound: float | None
    notes: dict


@dataclass
class RoundedStart:
    """Stage 1 of the heuristic: bounds with the horizon-wide decisions fixed, and the rounded plan.
    ``plan`` is None when rounding gave no checked plan; ``fixed_from`` then holds the rounded
    training blocks with the shortfall at its most, and ``start`` the hours' rows completed."""

    lower: np.ndarray
    upper: np.ndarray
    coupled: np.ndarray  # columns the hours see fixed: training blocks and shortfall
    fixed_from: np.ndarray
    start: np.ndarray | None
    plan: np.ndarray | None
    notes: dict


def round_plan(model: LinearModel, lp_values: np.ndarray, split: HourSplit, deadline: float) -> RoundedStart:
    """Stage 1 of :func:`heuristic_plan`, a first plan in seconds (:func:`round_up_cover`): the
    horizon-wide decisions fixed (:func:`fix_horizon_columns`), every block at the LP's value rounded
    down, then whole blocks added to cover each demand row and then each training run's work."""
    notes: dict = {}
    lower, upper = fix_horizon_columns(model, lp_values)
    upper = tighten_upper(model, lower, upper)
    training = _hour_coupling_columns(model, split, lower, upper)
    horizon_free = (lower < upper) & (split.col_hour < 0)  # training shortfall
    coupled = training | horizon_free
    started = time.perf_counter()
    floors = round_down(model, lower, upper, lp_values)  # every <= row it could mend holds
    rounded = round_up_cover(model, np.where(training, floors, lower), upper,
                             np.where(model.col_integer | model.decision_columns, floors, lower))
    start = complete_continuous(model, lower, upper, rounded, deadline - time.perf_counter())
    plan = None
    if start is not None and is_feasible(model, start):
        plan = fixed_from = start  # the hours see the rounded plan's training blocks and shortfall
        notes["rounded_plan_usd"] = float(model.col_cost @ start)
    else:  # the rounded training blocks, the shortfall at its most; the hours' rows only
        fixed_from = np.where(training, rounded, upper)
        start = complete_continuous(model, np.where(coupled, fixed_from, lower), np.where(coupled, fixed_from, upper),
                                    rounded, deadline - time.perf_counter(), rows=split.row_hour >= 0)
    notes["rounding_seconds"] = round(time.perf_counter() - started, 3)
    return RoundedStart(lower, upper, coupled, fixed_from, start, plan, notes)


def improve_by_hour(model: LinearModel, lp_values: np.ndarray, split: HourSplit, rounded: RoundedStart,
                    deadline: float, hour_gap: float = 1e-3, workers: int = 1, training_milp_seconds: float = 0.0,
                    runner: HourRunner | None = None) -> tuple[np.ndarray | None, dict]:
    """Stages 2 and 3 of :func:`heuristic_plan` from the rounded start: the cheapest checked plan
    of the three (rounded, hour by hour, training re-solved), or None."""
    notes: dict = {}
    plans = [] if rounded.plan is None else [rounded.plan]
    lower, upper, coupled, start = rounded.lower, rounded.upper, rounded.coupled, rounded.start
    stage1_lower, stage1_upper = lower.copy(), upper.copy()
    stage1_lower[coupled] = stage1_upper[coupled] = rounded.fixed_from[coupled]
    started = time.perf_counter()
    priority = None if start is None else model.col_cost * (start - lp_values)
    # The hours get half the time left and the training MILP the rest; when that half could not
    # hold the training MILP (nor, later, the warm-started one), the hours take it all, as long as
    # the rounded plan needs no finishing, rather than leave it unused (L with the bound first:
    # the solve ended at 97 s of 120; given the rest, the hours made the plan 0.04% cheaper).
    share = 0.5 if rounded.plan is None or 0.5 * (deadline - started) >= training_milp_seconds else 1.0
    hourly = solve_hours_fixed(model, split, stage1_lower, stage1_upper, hour_gap, deadline, workers, start, priority,
                               runner, share)
    notes["hours_seconds"] = round(time.perf_counter() - started, 3)
    if hourly is None:
        notes["heuristic"] = "an hour had no plan with the LP's horizon-wide choices fixed"
        return (plans[0] if plans else None), notes
    plans.insert(0, hourly)

    if rounded.plan is None or deadline - time.perf_counter() >= training_milp_seconds:
        stage2_lower, stage2_upper = lower.copy(), upper.copy()
        stage2_lower[~coupled] = stage2_upper[~coupled] = hourly[~coupled]
        # In a worker process killed at the deadline, as the polish: HiGHS in this process ran
        # this MILP 72 s past a 26 s limit on envelope-quarter (its root cut loop does not stop).
        started = time.perf_counter()
        problem = replace(WorkerProblem.from_model(model, {"output_flag": False, "mip_rel_gap": hour_gap,
                                                            **STRICT_TOLERANCES}),
                          lower=stage2_lower, upper=stage2_upper)
        outcome = run_in_worker(problem, time.monotonic() + max(deadline - time.perf_counter(), 0.01))
        notes["training_seconds"] = round(time.perf_counter() - started, 3)
        if not outcome.finished:
            notes["training_status"] = outcome.words
        if outcome.values is not None:
            plans.insert(0, outcome.values)
    plans = [plan for plan in plans if is_feasible(model, plan)]
    if not plans:
        notes["heuristic"] = "no plan: the training runs' work could not be placed beside the hours' allocations"
        return None, notes
    return min(plans, key=lambda plan: float(model.col_cost @ plan)), notes


def heuristic_plan(model: LinearModel, lp_values: np.ndarray, split: HourSplit, deadline: float,
                   hour_gap: float = 1e-3, workers: int = 1, training_milp_seconds: float = 0.0,
                   runner: HourRunner | None = None) -> tuple[np.ndarray | None, dict]:
    """A plan from the LP, in three stages.

    1. Rounding (:func:`round_plan`), a first plan in seconds.
    2. Hours: with the training blocks fixed at that plan's, each hour's MILP is solved on its own
       where time allows (:func:`solve_hours_fixed`; an hour not improved keeps its rounded values).
    3. Training: the training blocks and shortfall re-solved as one MILP with every hour's other
       allocations fixed, only with at least ``training_milp_seconds`` left (at a year of hours
       that MILP is larger than HiGHS can stop in time).

    If rounding cannot cover a hard training run's work, the hours are solved beside the training
    blocks it did place, and stage 3 must finish the plan.  (:func:`decompose` runs the stages
    itself, so that the bound step can come between them.)"""
    rounded = round_plan(model, lp_values, split, deadline)
    values, notes = improve_by_hour(model, lp_values, split, rounded, deadline, hour_gap, workers,
                                    training_milp_seconds, runner)
    return values, {**rounded.notes, **notes}


def is_feasible(model: LinearModel, values: np.ndarray) -> bool:
    """Every row and bound holds within the checker's slack (1e-6 absolute + 1e-7 of the limit),
    and integer columns are whole."""
    activity = model.matrix @ values
    low = np.where(np.isfinite(model.row_lower), model.row_lower, 0.0)
    high = np.where(np.isfinite(model.row_upper), model.row_upper, 0.0)
    rows_ok = np.all(activity >= model.row_lower - (1e-6 + 1e-7 * np.abs(low))) and np.all(
        activity <= model.row_upper + (1e-6 + 1e-7 * np.abs(high)))
    tolerance = 1e-6
    bounds_ok = np.all(values >= model.col_lower - tolerance) and np.all(values <= model.col_upper + tolerance)
    whole = np.all(np.abs(values[model.col_integer] - np.rint(values[model.col_integer])) <= 1e-6)
    return bool(rows_ok and bounds_ok and whole)


def solve_decomposed(model: LinearModel, options: SolveOptions, progress: Progress | None = None) -> SolveResult | None:
    """The HiGHS backend's ``decompose`` method: :func:`decompose` as a result in our status enum;
    None when the LP relaxation has no plan (or whole blocks have none), so that the direct solve
    proves or explains it."""
    started = time.perf_counter()
    outcome = decompose(model, options, progress, started)
    seconds = time.perf_counter() - started
    if "lp" in outcome.notes or outcome.notes.get("infeasible"):
        return None
    extra = {"decompose": outcome.notes}
    if outcome.values is None:
        return SolveResult(SolveStatus.NO_SOLUTION, None, outcome.bound, None, seconds, "decompose: no plan", extra)
    # Every plan decompose returns has passed its row check (is_feasible).
    gap = relative_gap(outcome.objective, outcome.bound)
    within = gap is not None and gap <= options.mip_rel_gap
    return SolveResult(
        SolveStatus.OPTIMAL if within else SolveStatus.FEASIBLE, outcome.objective, outcome.bound, outcome.values,
        seconds, "decompose: within the gap" if within else "decompose: time limit", extra,
    )


def decompose(model: LinearModel, options: SolveOptions, progress: Progress | None = None,
              started: float | None = None) -> DecomposedOutcome:
    """LP relaxation -> rounded plan -> hour-by-hour plan -> Lagrangian bound -> (if the gap is
    still above ``mip_rel_gap``) the full MILP warm-started from the plan, stopped as soon as its
    incumbent is within the gap of the best bound known.  On a model of LAGRANGIAN_MIN_COLUMNS or
    more the Lagrangian bound comes before the hours (below that it is not run); every step after
    the rounding is skipped once the gap is within ``mip_rel_gap``.  Every bound reported is valid.
    ``started`` (``time.perf_counter()``) is the caller's clock: the time limit counts from it.
    The hour steps run on one :class:`~.hours.HourRunner`, opened here for the whole solve (its
    processes start while the LP relaxation runs)."""
    started = time.perf_counter() if started is None else started
    split = split_by_hour(model)
    workers = options.threads or os.cpu_count() or 1
    with HourRunner(workers, int(np.count_nonzero(split.col_hour >= 0)), options.cluster) as runner:
        outcome = _decompose(model, options, progress, started, split, runner)
        outcome.notes["hour_step"] = runner.describe()
        return outcome


def _decompose(model: LinearModel, options: SolveOptions, progress: Progress | None, started: float,
               split: HourSplit, runner: HourRunner) -> DecomposedOutcome:
    time_limit_s, mip_rel_gap = options.time_limit_s, options.mip_rel_gap
    deadline = started + (time_limit_s if time_limit_s is not None else 1e9)
    workers = runner.workers

    def elapsed() -> float:
        return time.perf_counter() - started

    def record(objective, bound) -> None:
        if progress is not None:
            progress.record(elapsed(), objective, bound)

    notes: dict = {}
    relaxed = lp_relaxation(model, deadline - time.perf_counter())
    notes["lp_seconds"] = round(elapsed(), 3)
    if relaxed == "infeasible":
        return DecomposedOutcome(None, None, None, {**notes, "lp": "infeasible"})
    if isinstance(relaxed, str):
        return DecomposedOutcome(None, None, None, {**notes, "lp_stopped": "the LP relaxation did not finish in time"})
    lp_value, lp_values, duals = relaxed
    bound = lp_value
    record(None, bound)
    # Each hour to half the target gap, between 0.01% and 0.5%: an hour's gap is on its own cost,
    # which leaves out the reservations, so it must be tighter than the target.
    hour_gap = min(max(mip_rel_gap / 2, 1e-4), 5e-3)
    # A MILP over the whole model takes HiGHS about as long as the LP to load and presolve before it
    # can do anything useful: one is only started with twice the LP's time left (the polish, in a
    # worker process, also needs about a second to start).
    whole_model_seconds = 2 * notes["lp_seconds"]
    objective = None

    def gap_now() -> float:
        if objective is None:
            return float("inf")
        return max(objective - bound, 0.0) / max(abs(objective), 1e-12)

    hour_count = len(np.unique(split.col_hour))

    def lagrangian_step() -> None:
        # From the LP's duals, the multipliers climb for a share of the time left; each evaluation
        # solves every hour (a valid bound needs all of them; one stopped early still gives its
        # dual bound).  Polyak's step needs a plan's cost.
        nonlocal bound
        if objective is None or gap_now() <= mip_rel_gap:
            return
        if deadline - time.perf_counter() < 4 * 0.05 * hour_count / workers:
            notes["lagrangian_skipped"] = "too little time left for an evaluation over every hour"
            return
        budget = LAGRANGIAN_SHARE * (deadline - time.perf_counter())
        lagrange = optimise_multipliers(
            model, duals, objective, budget, split=split, workers=workers,
            slack_usd=0.1 * mip_rel_gap * abs(lp_value), fallback=lp_values, runner=runner,
            hour_seconds=max(budget * workers / hour_count, 0.05), target=objective * (1 - mip_rel_gap))
        notes["lagrangian_bound"] = lagrange.bound
        notes["lagrangian_lp_duals_bound"] = lagrange.start_bound
        notes["lagrangian_iterations"] = lagrange.iterations
        notes["lagrangian_seconds"] = round(lagrange.seconds, 3)
        if np.isfinite(lagrange.bound) and lagrange.bound > bound:
            bound = lagrange.bound
            record(objective, bound)

    rounded = round_plan(model, lp_values, split, deadline)
    notes.update(rounded.notes)
    values = rounded.plan
    if values is not None:
        objective = float(model.col_cost @ values)
        record(objective, bound)
    # On a large model the bound is the weak side and the rounded plan is near what the hours make
    # of it (L: the LP 7.3% below the rounded plan, the hours and training 0.2% cheaper after 75 s
    # of a 120 s limit, which left no time for the bound): the bound goes first there.
    large = model.n_cols >= LAGRANGIAN_MIN_COLUMNS
    bound_first = large and values is not None
    if bound_first:
        lagrangian_step()
    if gap_now() > mip_rel_gap:
        improved, hour_notes = improve_by_hour(model, lp_values, split, rounded, deadline, hour_gap, workers,
                                               whole_model_seconds, runner)
        notes.update(hour_notes)
        if improved is not None:
            values, objective = improved, float(model.col_cost @ improved)
    notes["heuristic_seconds"] = round(elapsed(), 3)
    record(objective, bound)
    if large and not bound_first:  # no rounded plan to steer the multipliers by before the hours
        lagrangian_step()
    if gap_now() > mip_rel_gap and deadline - time.perf_counter() >= whole_model_seconds + 1.0:
        values, objective, bound = _polish(model, values, objective, bound, deadline, options, record, notes)
    if values is not None:
        # Whole blocks as found, every continuous column (unmet demand, training shortfall) at its
        # least beside them: a solve stopped early can leave one higher than it need be (the same
        # closed form every solve's plan gets in plans/solve.py; no LP needed).
        settled_at = time.perf_counter()
        settled = model.settle_continuous(values)
        notes["settle_seconds"] = round(time.perf_counter() - settled_at, 3)
        if is_feasible(model, settled) and model.col_cost @ settled <= objective:
            values, objective = settled, float(model.col_cost @ settled)
    notes["seconds"] = round(elapsed(), 3)
    return DecomposedOutcome(values, objective, bound, notes)


def _polish(model, values, objective, bound, deadline, options: SolveOptions, record, notes):
    """The full MILP from the heuristic plan, stopped once within the gap of the best bound, in a
    worker process that is killed at the deadline (HiGHS's root cut loop does not stop on time)."""
    problem = WorkerProblem.from_model(model, {**highs_options(options), **STRICT_TOLERANCES}, start=values,
                                       stop_gap=options.mip_rel_gap, known_bound=bound)

    def report(incumbent, own_bound) -> None:
        record(incumbent, max(bound, own_bound) if own_bound is not None else bound)

    outcome = run_in_worker(problem, time.monotonic() + (deadline - time.perf_counter()), report)
    notes["polish_seconds"] = round(outcome.seconds, 3)
    notes["polish_status"] = outcome.words
    if outcome.bound is not None and np.isfinite(outcome.bound):
        bound = max(bound, outcome.bound)
    if outcome.values is not None:
        candidate = outcome.values
        cost = float(model.col_cost @ candidate)
        if not is_feasible(model, candidate):
            notes["polish_plan_rejected"] = "HiGHS's plan broke a row by more than the checker allows"
        elif objective is None or cost < objective:
            values, objective = candidate, cost
    if outcome.model_status is not None and is_infeasible(outcome.model_status):
        notes["infeasible"] = True  # the LP has a plan, whole blocks do not
    return values, objective, bound
