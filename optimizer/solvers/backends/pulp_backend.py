"""PuLP with CBC or HiGHS, built from the same arrays as every other backend.

PuLP builds one Python object per variable and per constraint, so this backend
is for readers of PuLP models and for CBC, not for the largest instances.  Its
status is read from the solvers themselves: PuLP calls a HiGHS time-out
"Optimal", and leaves CBC's LP values in the variables when CBC finds no
integer plan, so neither of PuLP's status codes is trusted on its own.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pulp

from optimizer.solvers.backends import Backend, SolverError
from optimizer.model.linear import LinearModel
from optimizer.solvers.options import SolveOptions
from optimizer.solvers.result import SolveResult, SolveStatus


def build_pulp_problem(model: LinearModel) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The model as a PuLP problem; columns are named ``c<j>`` and rows ``r<i>``."""
    problem = pulp.LpProblem("chipmix", pulp.LpMinimize)
    columns = [
        pulp.LpVariable(
            f"c{j}",
            lowBound=None if math.isinf(lower) else float(lower),
            upBound=None if math.isinf(upper) else float(upper),
            cat=pulp.LpInteger if integer else pulp.LpContinuous,
        )
        for j, (lower, upper, integer) in enumerate(
            zip(model.col_lower.tolist(), model.col_upper.tolist(), model.col_integer.tolist())
        )
    ]
    problem.setObjective(
        pulp.LpAffineExpression([(columns[j], c) for j, c in enumerate(model.col_cost.tolist()) if c != 0.0])
    )
    rows = model.matrix.tocsr()
    indptr, indices, data = rows.indptr, rows.indices.tolist(), rows.data.tolist()
    for i, (lower, upper) in enumerate(zip(model.row_lower.tolist(), model.row_upper.tolist())):
        terms = [(columns[j], v) for j, v in zip(indices[indptr[i] : indptr[i + 1]], data[indptr[i] : indptr[i + 1]])]
        expression = pulp.LpAffineExpression(terms)
        if lower == upper:
            problem.addConstraint(pulp.LpConstraint(expression, pulp.LpConstraintEQ, f"r{i}", lower))
            continue
        if not math.isinf(lower):
            problem.addConstraint(pulp.LpConstraint(expression, pulp.LpConstraintGE, f"r{i}", lower))
        if not math.isinf(upper):
            name = f"r{i}_ub" if not math.isinf(lower) else f"r{i}"
            problem.addConstraint(pulp.LpConstraint(expression, pulp.LpConstraintLE, name, upper))
    return problem, columns


_CBC_NUMBER = r"([-+0-9.eE]+|inf|-inf|nan)"


def read_cbc_log(log: str) -> dict[str, object]:
    """CBC's own verdict from its log: result line, objective, lower bound."""
    found: dict[str, object] = {}
    result = re.search(r"^Result - (.+)$", log, re.M)
    if result:
        found["result"] = result.group(1).strip()
    for key, label in (("objective", "Objective value"), ("bound", "Lower bound")):
        match = re.search(rf"^{label}:\s+{_CBC_NUMBER}", log, re.M)
        if match:
            found[key] = float(match.group(1))
    found["no_integer_solution"] = "No feasible solution found" in log
    return found


class PulpBackend(Backend):
    def __init__(self, solver: str):
        if solver not in ("cbc", "highs"):
            raise ValueError(f"PuLP solver must be cbc or highs, got {solver!r}")
        self.solver = solver
        self.name = f"pulp-{solver}"

    def _solve(self, model: LinearModel, options: SolveOptions, progress=None) -> SolveResult:
        # PuLP reports nothing while its solver runs: no progress records but the final one.
        with warnings.catch_warnings():
            # PuLP 3.x announces its 4.0 API on every variable and on PULP_CBC_CMD; pyproject
            # pins pulp<4, so these notices say nothing about this run.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulp\b.*")
            problem, columns = build_pulp_problem(model)
            if self.solver == "cbc":
                return self._solve_cbc(model, problem, columns, options)
            return self._solve_highs(model, problem, columns, options)

    @staticmethod
    def _values(columns: list[pulp.LpVariable]) -> np.ndarray:
        return np.array([0.0 if v.varValue is None else float(v.varValue) for v in columns])

    def _solve_cbc(self, model, problem, columns, options: SolveOptions) -> SolveResult:
        with tempfile.TemporaryDirectory(prefix="chipmix-cbc-") as folder:
            log_path = Path(folder) / "cbc.log"
            solver = pulp.PULP_CBC_CMD(
                msg=False,
                timeLimit=options.time_limit_s,
                gapRel=options.mip_rel_gap,
                threads=options.threads,
                logPath=str(log_path),
                options=[f"randomCbcSeed {options.random_seed + 1}"],  # CBC reads 0 as "use the clock"
            )
            started = time.perf_counter()
            problem.solve(solver)
            seconds = time.perf_counter() - started
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
        if options.verbose:
            print(log)
        cbc = read_cbc_log(log)
        words = f"CBC: {cbc.get('result', pulp.LpStatus[problem.status])}"
        if problem.status == pulp.LpStatusInfeasible or "infeasible" in str(cbc.get("result", "")).lower():
            return SolveResult(SolveStatus.INFEASIBLE, None, None, None, seconds, words)
        if not model.is_mip:
            if problem.status != pulp.LpStatusOptimal:
                raise SolverError(f"CBC could not solve the LP: {words}")
            values = self._values(columns)
            objective = float(model.col_cost @ values)
            return SolveResult(SolveStatus.OPTIMAL, objective, objective, values, seconds, words)
        integer_plan = problem.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        if cbc.get("no_integer_solution") or not integer_plan:
            # The variables may hold LP values here: never report them as a plan.
            bound = cbc.get("bound")
            return SolveResult(SolveStatus.NO_SOLUTION, None, bound, None, seconds, words)
        values = self._values(columns)
        objective = float(model.col_cost @ values)
        bound = cbc.get("bound")
        proven = str(cbc.get("result", "")).startswith("Optimal solution found")
        if proven and bound is None:
            bound = objective
        status = SolveStatus.OPTIMAL if proven else SolveStatus.FEASIBLE
        return SolveResult(status, objective, bound, values, seconds, words)

    def _solve_highs(self, model, problem, columns, options: SolveOptions) -> SolveResult:
        from optimizer.solvers.backends.highs.status import read_highs_outcome

        solver = pulp.HiGHS(
            msg=bool(options.verbose),
            timeLimit=options.time_limit_s,
            gapRel=options.mip_rel_gap,
            threads=options.threads,
            random_seed=options.random_seed,
        )
        started = time.perf_counter()
        problem.solve(solver)
        seconds = time.perf_counter() - started
        status, objective, bound, words = read_highs_outcome(problem.solverModel, model.is_mip)
        values = self._values(columns) if status.has_plan else None
        return SolveResult(status, objective, bound, values, seconds, f"PuLP/HiGHS: {words}")
