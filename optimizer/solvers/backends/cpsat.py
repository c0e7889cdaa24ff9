"""OR-Tools CP-SAT on the same linear model, scaled to integers with a stated error bound.

CP-SAT takes integer coefficients and integer variables only, so the model is scaled:

- Row ``i`` is multiplied by ``s_i = 10^k``, the smallest power of ten (k <= 9) that makes all
  its coefficients and its bound whole; where none does, the largest with coefficients up to
  1e9, rounded *conservatively*: a ``>=`` row gets its coefficients rounded down and its bound
  up, a ``<=`` row the other way round.  Every variable is >= 0, so a plan that meets the scaled
  row meets the true one: CP-SAT never returns a plan the checker rejects.
- A continuous slack column (``unmet``, ``short``, elastic slack) counts units of ``1 / sigma_j``
  (``sigma_j`` a power of ten), chosen to keep the error bound below small.
- A continuous decision column (a spend commitment's ``spend_covered`` chips and ``spend_level``)
  counts units of ``1 / sigma_j``, ``sigma_j = 10^3`` (finer where a fixed value needs it): CP-SAT
  chooses it on that grid.  Its rows are scaled with the unit in, so they stay exact where they
  can.  Rounding a plan onto the grid in the direction its rows allow (covered chips down, levels
  up) keeps every row and costs at most ``|c_j| / sigma_j`` per column: (d) below.
- The objective is multiplied by ``S = 10^q`` (q <= 6, micro-dollars at most) and rounded.

Where this could make CP-SAT's optimum differ from the MILP's, :func:`scale_model` says by how
much at most, as ``scaling_bound_usd``: the sum of (a) objective rounding, per column
``|c_j - round(c_j S) / S| * ub_j``, (b) in each priced row, the cost of the most the
rounding can tighten it (``sum_j |a_ij s_i - a^_ij| ub_j`` plus the bound's rounding, over
``s_i``, at the row's price), (c) a continuous column's unit (one unit at its price), and (d)
each decision column's grid (``|c_j| / sigma_j``).  The
plan's cost is re-evaluated exactly in floating point (continuous columns recomputed from the
integers), never read from the scaled objective, and the bound reported is CP-SAT's bound
divided by ``S`` minus ``scaling_bound_usd``, so it is a valid bound on the MILP's optimum.
Hard rows (no priced slack) may be tightened by up to ``hard_row_margin`` (in their own units,
reported); a MILP plan that needs that last sliver is outside CP-SAT's reach.

Rows that a :class:`~optimizer.model.linear.Cumulative` also describes (pool capacity where a gang run
may start) become, in addition, one ``AddCumulative`` over optional intervals (one per gang run
and pool, present iff one of its start columns is 1) and one fixed one-hour interval per hour
whose demand is the hour's allocated blocks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from optimizer.solvers.backends import Backend, SolverError
from optimizer.model.linear import LinearModel
from optimizer.solvers.options import SolveOptions
from optimizer.solvers.progress import Progress
from optimizer.solvers.result import SolveResult, SolveStatus

#: Largest scaled coefficient when a row cannot be made whole exactly.
COEFFICIENT_LIMIT = 1e9
#: Largest row exponent tried (s_i <= 10^9).
MAX_ROW_EXPONENT = 9
#: Objective scale: at most micro-dollars, and |objective| bounded so CP-SAT's LP stays exact.
MAX_OBJECTIVE_EXPONENT = 6
OBJECTIVE_ACTIVITY_LIMIT = 2.0**53
#: Grid of a continuous decision column: 1/1000 of a chip, of a USD/hour (finer for fixed values).
DECISION_EXPONENT, MAX_DECISION_EXPONENT = 3, 6
#: Workers when the options give no thread count, searched interleaved (deterministically).
DEFAULT_WORKERS = 8


def _is_whole(values: np.ndarray) -> np.ndarray:
    """Whole within 1e-9 (relative); infinite bounds count as whole (they are not scaled)."""
    finite = np.where(np.isfinite(values), values, 0.0)
    return np.abs(finite - np.rint(finite)) <= 1e-9 * np.maximum(1.0, np.abs(finite))


@dataclass(frozen=True)
class ScaledModel:
    """The integer model CP-SAT solves, and what scaling may have cost."""

    row_scale: np.ndarray  # s_i
    rows: sp.csr_matrix  # integer coefficients a^_ij, in units of the columns below
    row_lower: np.ndarray  # integer, or -inf
    row_upper: np.ndarray  # integer, or +inf
    col_unit: np.ndarray  # sigma_j: a column's CP-SAT value is x_j * sigma_j (1 for integer columns)
    col_upper: np.ndarray  # integer upper bound, in units
    col_lower: np.ndarray
    objective_scale: float  # S
    cost: np.ndarray  # integer objective coefficients per unit
    scaling_bound_usd: float
    hard_row_margin: float  # most any hard row was tightened, relative to its bound


def _row_exponents(model: LinearModel, unit: np.ndarray | None = None) -> np.ndarray:
    """Per row, the smallest k making coefficients (per ``unit`` of their column: the decision
    columns' grid) and finite bounds whole, else the largest allowed."""
    csr = model.matrix.tocsr()
    n = model.n_rows
    row_of = np.repeat(np.arange(n), np.diff(csr.indptr))
    data = csr.data if unit is None else csr.data / unit[csr.indices]
    largest = np.zeros(n)
    np.maximum.at(largest, row_of, np.abs(data))
    bounds = np.where(np.isfinite(model.row_lower), model.row_lower, np.where(np.isfinite(model.row_upper), model.row_upper, 0.0))
    chosen = np.full(n, -1)
    for k in range(MAX_ROW_EXPONENT + 1):
        scale = 10.0**k
        bad = np.bincount(row_of, weights=~_is_whole(data * scale), minlength=n) > 0
        bad |= ~_is_whole(bounds * scale)
        bad |= largest * scale > COEFFICIENT_LIMIT
        chosen = np.where((chosen < 0) & ~bad, k, chosen)
    fallback = np.floor(np.log10(COEFFICIENT_LIMIT / np.maximum(largest, 1e-300))).clip(0, MAX_ROW_EXPONENT)
    return np.where(chosen >= 0, chosen, fallback).astype(int)


def scale_model(model: LinearModel) -> ScaledModel:
    """Scale ``model`` to integers (see the module docstring); SolverError if it cannot be."""
    for fam in model.constraints.values():
        if fam.size and fam.cpsat_refusal:
            raise SolverError(f"CP-SAT cannot take {fam.name}: {fam.cpsat_refusal}; use --engine highs or pulp-cbc")
    if np.any(model.col_lower < 0):
        raise SolverError("CP-SAT scaling needs every variable >= 0")
    csr = model.matrix.tocsr()
    n_rows, n_cols = model.n_rows, model.n_cols
    row_of = np.repeat(np.arange(n_rows), np.diff(csr.indptr))
    col_of = csr.indices
    lower, upper = model.row_lower, model.row_upper
    at_least = np.isfinite(lower) & ~np.isfinite(upper)
    at_most = np.isfinite(upper) & ~np.isfinite(lower)
    two_sided = ~at_least & ~at_most
    decision = model.decision_columns
    col_unit = np.ones(n_cols)
    col_unit[decision] = _decision_units(model, decision)
    exponent = _row_exponents(model, col_unit)
    scale = 10.0**exponent

    # Each continuous slack column (unmet, short, slack) sits in exactly one >= row, with a
    # positive coefficient, of the family its variable declares: checked on the model itself
    # (ModelError names the family otherwise).  Decision columns are on their grid (col_unit).
    model.check_continuous_columns()
    if np.any(decision & ~np.isfinite(model.col_upper)):
        raise SolverError("CP-SAT needs a finite upper bound on every decision column")
    continuous = ~model.col_integer & ~decision  # the slack columns
    if np.any(~continuous & ~decision & ~np.isfinite(model.col_upper)):
        raise SolverError("CP-SAT needs a finite upper bound on every integer variable")
    cont_entries = continuous[col_of]
    row_of_col = np.full(n_cols, -1)
    row_of_col[col_of[cont_entries]] = row_of[cont_entries]
    coef_of_col = np.zeros(n_cols)
    coef_of_col[col_of[cont_entries]] = csr.data[cont_entries]
    rows_with_continuous = np.zeros(n_rows, dtype=bool)
    rows_with_continuous[row_of[cont_entries]] = True

    # Continuous upper bounds: an infinite one (elastic slack) never needs more than its row's
    # bound plus what the row's negative terms can take away at their bounds (grid energy covers
    # the chips' draw: grid_mwh - MWh per block x blocks >= 0).
    col_upper = model.col_upper.copy()
    unbounded = continuous & ~np.isfinite(col_upper)
    negative = (csr.data < 0) & ~continuous[col_of]
    if np.any(negative & unbounded[col_of]):
        raise SolverError("CP-SAT scaling: a slack column has a negative coefficient")
    taken = np.zeros(n_rows)
    np.add.at(taken, row_of[negative], -csr.data[negative] * model.col_upper[col_of[negative]])
    need = np.maximum(lower[row_of_col[unbounded]], 0.0) + taken[row_of_col[unbounded]]
    if not np.all(np.isfinite(need)):
        raise SolverError("CP-SAT needs a finite bound on what an unbounded slack column may have to cover")
    col_upper[unbounded] = need / coef_of_col[unbounded]

    # Objective scale: as fine as micro-dollars while the largest possible objective stays exact.
    worst = float(np.sum(np.abs(model.col_cost) * col_upper))
    q = MAX_OBJECTIVE_EXPONENT
    while q > -6 and worst * 10.0**q > OBJECTIVE_ACTIVITY_LIMIT:
        q -= 1
    objective_scale = 10.0**q

    # Continuous units: sigma = 10^m, m <= the row's exponent; pick the m with the least error bound.
    candidates = np.arange(-6, MAX_ROW_EXPONENT + 1)
    cont_idx = np.nonzero(continuous & (row_of_col >= 0))[0]
    if len(cont_idx):
        k_row = exponent[row_of_col[cont_idx]]
        cost = np.abs(model.col_cost[cont_idx])
        best_err = np.full(len(cont_idx), np.inf)
        best_m = k_row.copy()
        for m in candidates:
            sigma = 10.0**m
            allowed = m <= k_row
            per_unit = cost * objective_scale / sigma
            rounding = np.abs(per_unit - np.rint(per_unit)) / objective_scale * col_upper[cont_idx] * sigma
            coarse = np.where(m < k_row, cost / sigma, 0.0)
            err = rounding + coarse
            better = allowed & (err < best_err - 1e-15)
            best_err = np.where(better, err, best_err)
            best_m = np.where(better, m, best_m)
        col_unit[cont_idx] = 10.0**best_m
    upper_units = np.where(continuous, np.ceil(col_upper * col_unit - 1e-9), np.floor(col_upper * col_unit + 1e-9))
    lower_units = np.where(continuous, np.ceil(model.col_lower * col_unit - 1e-9),
                           np.ceil(model.col_lower * col_unit - 1e-9))

    # Rows: exact where whole, else conservative.
    raw = csr.data * scale[row_of] / col_unit[col_of]
    whole = _is_whole(raw)
    rounded = np.where(whole, np.rint(raw), np.where(at_least[row_of], np.floor(raw), np.ceil(raw)))
    if np.any(~whole & two_sided[row_of]):
        raise SolverError("CP-SAT scaling: a two-sided row has coefficients no power of ten makes whole")
    if np.any(~whole & continuous[col_of]):
        raise SolverError("CP-SAT scaling: a continuous variable's coefficient is not whole at its unit")
    low_raw, up_raw = lower * scale, upper * scale
    row_lower = np.where(np.isfinite(lower), np.where(_is_whole(low_raw), np.rint(low_raw), np.ceil(low_raw)), -np.inf)
    row_upper = np.where(np.isfinite(upper), np.where(_is_whole(up_raw), np.rint(up_raw), np.floor(up_raw)), np.inf)
    if np.any(two_sided & np.isfinite(lower) & ~_is_whole(low_raw)) or np.any(two_sided & np.isfinite(upper) & ~_is_whole(up_raw)):
        raise SolverError("CP-SAT scaling: a two-sided row has a bound no power of ten makes whole")
    rows = sp.csr_matrix((rounded, (row_of, col_of)), shape=(n_rows, n_cols))

    # How much each row may have been tightened, in its own units.
    tightening = np.zeros(n_rows)
    np.add.at(tightening, row_of, np.abs(rounded - raw) * upper_units[col_of])
    tightening[at_least] += row_lower[at_least] - low_raw[at_least]
    tightening[at_most] += up_raw[at_most] - row_upper[at_most]
    tightening /= scale

    cost_units = model.col_cost / col_unit
    cost = np.rint(cost_units * objective_scale)
    objective_rounding = float(np.sum(np.abs(cost / objective_scale - cost_units) * upper_units))
    priced_rows = np.zeros(n_rows)
    priced_rows[row_of_col[cont_idx]] = model.col_cost[cont_idx] / coef_of_col[cont_idx]
    row_rounding = float(np.sum(priced_rows * tightening))
    k_row = exponent[row_of_col[cont_idx]] if len(cont_idx) else np.zeros(0)
    coarseness = float(np.sum(np.where(np.log10(col_unit[cont_idx]) < k_row - 1e-9, model.col_cost[cont_idx] / col_unit[cont_idx], 0.0)))
    # (d) a decision column's grid: the plan rounded onto it costs at most one unit's price more,
    # and what the priced slack of each row it sits in must make up (renewable energy rounded
    # down is grid energy, at the carbon price).
    discretisation = float(np.sum(np.abs(model.col_cost[decision]) / col_unit[decision]))
    in_priced = decision[col_of] & (priced_rows[row_of] != 0)
    discretisation += float(np.sum(np.abs(csr.data[in_priced]) * np.abs(priced_rows[row_of[in_priced]])
                                   / col_unit[col_of[in_priced]]))
    hard = ~rows_with_continuous & (tightening > 0)
    reference = np.where(np.isfinite(lower), np.abs(lower), np.abs(upper))
    hard_margin = float(np.max(tightening[hard] / np.maximum(reference[hard], 1e-12), initial=0.0))
    return ScaledModel(
        row_scale=scale,
        rows=rows,
        row_lower=row_lower,
        row_upper=row_upper,
        col_unit=col_unit,
        col_upper=upper_units,
        col_lower=lower_units,
        objective_scale=objective_scale,
        cost=cost,
        scaling_bound_usd=objective_rounding + row_rounding + coarseness + discretisation,
        hard_row_margin=hard_margin,
    )


def _decision_units(model: LinearModel, decision: np.ndarray) -> np.ndarray:
    """sigma_j of each decision column: 10^DECISION_EXPONENT, or the least finer power of ten that
    puts a fixed (already bought) value on the grid."""
    lower = model.col_lower[decision]
    fixed = model.col_upper[decision] == lower
    units = np.full(int(decision.sum()), 10.0**DECISION_EXPONENT)
    for m in range(MAX_DECISION_EXPONENT, DECISION_EXPONENT - 1, -1):
        units = np.where(fixed & _is_whole(lower * 10.0**m), 10.0**m, units)
    off = fixed & ~_is_whole(lower * units)
    if off.any():
        raise SolverError(f"CP-SAT scaling: a fixed decision value ({lower[off][0]!r}) is not on a grid of "
                          f"1e-{MAX_DECISION_EXPONENT}; round the level bought")
    return units


def exact_values(model: LinearModel, values: np.ndarray) -> np.ndarray:
    """Keep the integer columns; set each continuous column to the least its row needs."""
    return model.settle_continuous(values)


def _add_cumulatives(cp: cp_model.CpModel, model: LinearModel, variables: list, upper: np.ndarray) -> None:
    for resource in model.cumulatives:
        intervals, demands = [], []
        first_hour, end_hour = None, None
        for c, (columns, starts) in enumerate(zip(resource.interval_columns, resource.interval_starts)):
            duration = int(resource.interval_duration[c])
            present = cp.new_bool_var(f"{resource.label}:present[{c}]")
            cp.add(sum(variables[j] for j in columns) == present)
            start = cp.new_int_var(int(starts.min()), int(starts.max()), f"{resource.label}:start[{c}]")
            cp.add(start == sum(int(s) * variables[j] for j, s in zip(columns, starts))).only_enforce_if(present)
            intervals.append(cp.new_optional_fixed_size_interval_var(start, duration, present, f"{resource.label}:gang[{c}]"))
            demands.append(int(resource.interval_demand[c]))
            first_hour = int(starts.min()) if first_hour is None else min(first_hour, int(starts.min()))
            end_hour = int(starts.max()) + duration if end_hour is None else max(end_hour, int(starts.max()) + duration)
        for t in range(first_hour, end_hour):
            terms = resource.hourly_hour == t
            if terms.any():
                # A cumulative demand must be one variable (affine), so the hour's sum gets its own.
                pairs = list(zip(resource.hourly_column[terms].tolist(), resource.hourly_coefficient[terms].tolist()))
                most = int(sum(a * upper[j] for j, a in pairs))
                demand = cp.new_int_var(0, most, f"{resource.label}:used[{t}]")
                cp.add(demand == sum(int(a) * variables[j] for j, a in pairs))
                intervals.append(cp.new_fixed_size_interval_var(t, 1, f"{resource.label}:hour[{t}]"))
                demands.append(demand)
        if resource.capacity_column >= 0:
            capacity = variables[resource.capacity_column]
        else:
            hours = resource.capacity[first_hour:end_hour]
            capacity = int(hours.max())
            for t, room in zip(range(first_hour, end_hour), hours):
                if room < capacity:  # hours with fewer chips: a fixed task takes the difference
                    intervals.append(cp.new_fixed_size_interval_var(t, 1, f"{resource.label}:unavailable[{t}]"))
                    demands.append(int(capacity - room))
        cp.add_cumulative(intervals, demands, capacity)


class _Watcher(cp_model.CpSolverSolutionCallback):
    """Each new CP-SAT plan, to ``progress``: the scaled objective (an upper estimate of the plan's
    exact cost, which is re-evaluated at the end) and the bound lowered by the scaling bound."""

    def __init__(self, progress: Progress, started: float, scale: float, scaling_bound_usd: float):
        super().__init__()
        self.progress, self.started, self.scale, self.slack = progress, started, scale, scaling_bound_usd

    def on_solution_callback(self) -> None:
        self.progress.record(
            time.perf_counter() - self.started, self.objective_value / self.scale,
            max(self.best_objective_bound / self.scale - self.slack, 0.0),
        )


class CpSatBackend(Backend):
    name = "cpsat"

    def _solve(self, model: LinearModel, options: SolveOptions, progress: Progress | None = None) -> SolveResult:
        scaled = scale_model(model)
        cp = cp_model.CpModel()
        variables = [
            cp.new_int_var(int(lo), int(up), f"x{j}")
            for j, (lo, up) in enumerate(zip(scaled.col_lower.tolist(), scaled.col_upper.tolist()))
        ]
        rows = scaled.rows
        for i in range(model.n_rows):
            start, end = rows.indptr[i], rows.indptr[i + 1]
            expression = sum(int(a) * variables[j] for j, a in zip(rows.indices[start:end], rows.data[start:end]))
            lo, up = scaled.row_lower[i], scaled.row_upper[i]
            lo = int(lo) if math.isfinite(lo) else cp_model.INT_MIN
            up = int(up) if math.isfinite(up) else cp_model.INT_MAX
            if start == end:
                if lo > 0 or up < 0:
                    cp.add_bool_or([])  # an empty row that needs something: infeasible
                continue
            cp.add_linear_constraint(expression, lo, up)
        _add_cumulatives(cp, model, variables, scaled.col_upper)
        cp.minimize(sum(int(c) * variables[j] for j, c in enumerate(scaled.cost.tolist()) if c))

        solver = cp_model.CpSolver()
        parameters = solver.parameters
        if options.threads is None:
            # CP-SAT's strength is its portfolio of workers; interleaved, their search is
            # deterministic whatever the number of workers (and the same plan comes back).
            parameters.num_workers = DEFAULT_WORKERS
            parameters.interleave_search = True
        else:
            parameters.num_workers = int(options.threads)  # in parallel: deterministic only with 1
        parameters.random_seed = int(options.random_seed)
        parameters.relative_gap_limit = float(options.mip_rel_gap)
        parameters.log_search_progress = bool(options.verbose)
        if options.time_limit_s is not None:
            parameters.max_time_in_seconds = float(options.time_limit_s)
        started = time.perf_counter()
        watcher = None
        if progress is not None:
            watcher = _Watcher(progress, started, scaled.objective_scale, scaled.scaling_bound_usd)
        code = solver.solve(cp, watcher)
        seconds = time.perf_counter() - started
        words = f"CP-SAT: {solver.status_name(code)}"
        extra = {
            "objective_scale": scaled.objective_scale,
            "scaling_bound_usd": scaled.scaling_bound_usd,
            "hard_row_margin": scaled.hard_row_margin,
            "workers": parameters.num_workers,
            "interleaved": parameters.interleave_search,
        }
        if code == cp_model.MODEL_INVALID:
            raise SolverError(f"CP-SAT rejected the model: {cp.validate()}")
        if code == cp_model.INFEASIBLE:
            return SolveResult(SolveStatus.INFEASIBLE, None, None, None, seconds, words, extra)
        bound = max(solver.best_objective_bound / scaled.objective_scale - scaled.scaling_bound_usd, 0.0)
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return SolveResult(SolveStatus.NO_SOLUTION, None, bound, None, seconds, words, extra)
        units = np.array([solver.value(v) for v in variables], dtype=float)
        values = exact_values(model, units / scaled.col_unit)
        objective = float(model.col_cost @ values)
        extra["scaled_objective_usd"] = solver.objective_value / scaled.objective_scale
        status = SolveStatus.OPTIMAL if code == cp_model.OPTIMAL else SolveStatus.FEASIBLE
        return SolveResult(status, objective, bound, values, seconds, words, extra)
