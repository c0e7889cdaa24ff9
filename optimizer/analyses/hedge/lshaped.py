"""The L-shaped method (Benders over the purchases) for hedges too large for one model.

Scenario ``s``'s cost with the purchases ``x`` held is F_s(x), a MILP.  Its LP relaxation, with
hard demand made elastic at ``slack_usd`` per unit so that every ``x`` is feasible, is a convex
piecewise-linear function G_s(x) <= F_s(x).  Solving it with ``x`` fixed by bounds gives G_s(x0)
and, as the reduced costs of the fixed columns, a subgradient d: G_s(x) >= G_s(x0) + d (x - x0)
for every x (an optimality cut).  The master problem

    min  risk(theta)  s.t.  theta_s >= G_s(x_k) + d_sk (x - x_k) for every round k,
         theta_s >= min_x G_s(x),  x within the scenarios' bounds, integer as declared,
         and the rows over purchases alone (an offer's max_blocks)

is a relaxation of min_x risk(F(x)), so its proven bound is a valid lower bound on the hedge
(docs/hedge.md).  Each round solves the master, then every scenario's LP at its purchases, side
by side on a :class:`~optimizer.tasks.TaskPool` (a process pool or a Dask cluster).
The rounds stop when the best LP value is within ``tolerance`` of the master's bound, or at
``max_rounds`` or the time limit; the purchases with the best LP value are then played, as MILPs,
by the caller.  The bound is the LP relaxation's: it cannot close the integrality gap of the
hours (about 0.2-0.8% on whole blocks), and the report says how much is left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from optimizer.analyses.hedge.extensive import ArrayModel, add_risk
from optimizer.analyses.hedge.risk import risk_value
from optimizer.analyses.scenarios import Risk
from optimizer.tasks import TaskPool
from optimizer.errors import ChipmixError
from optimizer.solvers.backends import get_backend
from optimizer.solvers.options import SolveOptions

#: Models built by this worker process, by scenario key: a worker rebuilds nothing per round.
_MODELS: dict[str, tuple] = {}


def slack_price(model) -> float:
    """USD per unit of elastic slack: far above anything a unit of demand costs to serve."""
    return max(1e5, 100.0 * float(np.abs(model.col_cost).max(initial=0.0)))


def _scenario_lp(task: dict) -> dict:
    """One scenario's relaxation G_s at the given purchases (or free ones): value, subgradient,
    purchases; on the first call also the purchases' bounds and integrality."""
    from optimizer.input.loading import instance_from_data
    from optimizer.model.build import build_model
    from optimizer.model.data import build_model_data
    from optimizer.solvers.backends.highs.lp import solve_lp

    key = task["key"]
    if key not in _MODELS:
        # One hedge at a time per worker: a task of another hedge drops the models of the last one.
        for old in [k for k in _MODELS if k.split(":")[0] != key.split(":")[0]]:
            del _MODELS[old]
        data = build_model_data(instance_from_data(task["instance"], source=task["name"]))
        model = build_model(data, elastic=True, slack_usd=slack_price(build_model(data)))
        _MODELS[key] = (model, model.purchase_labels())
    model, labels = _MODELS[key]
    lower, upper = model.col_lower.copy(), model.col_upper.copy()
    fixed = task.get("fixed")
    if fixed is not None:
        for label, j in labels.items():
            lower[j] = upper[j] = fixed[label]
    outcome = solve_lp(model, lower, upper)
    if outcome is None:
        raise ChipmixError(f"scenario {task['name']}: its elastic relaxation is infeasible at these purchases")
    out = {"value": outcome.objective,
           "gradient": {label: float(outcome.reduced_costs[j]) for label, j in labels.items()},
           "purchases": {label: float(outcome.values[j]) for label, j in labels.items()}}
    if task.get("bounds"):
        out["bounds"] = {label: (float(model.col_lower[j]), float(model.col_upper[j]), bool(model.col_integer[j]))
                         for label, j in labels.items()}
        out["rows"] = purchase_rows(model, labels)
    return out


def purchase_rows(model, labels: dict[str, int]) -> list[tuple[dict[str, float], float, float]]:
    """Rows over purchases alone (an offer's max_blocks): the master must keep them, since no
    second-stage choice can make up for breaking one.  Each as ({name: coefficient}, lower, upper)."""
    csr = model.matrix.tocsr()
    purchase = model.purchase_columns
    name_of = {j: label for label, j in labels.items()}
    out = []
    for r in range(model.n_rows):
        cols = csr.indices[csr.indptr[r]:csr.indptr[r + 1]]
        if len(cols) and purchase[cols].all():
            vals = csr.data[csr.indptr[r]:csr.indptr[r + 1]]
            out.append(({name_of[int(j)]: float(v) for j, v in zip(cols, vals)},
                        float(model.row_lower[r]), float(model.row_upper[r])))
    return out


@dataclass
class LShapedOutcome:
    purchases: dict[str, float]  # the round's purchases with the best LP value
    bound: float  # valid lower bound on the hedge objective
    lp_value: float  # risk of the relaxations at ``purchases`` (not a plan's cost)
    rounds: int
    stopped: str  # "converged", "rounds" or "time limit"
    seconds: float
    history: list[dict] = field(default_factory=list)


def l_shaped(tasks: list[dict], probabilities, risk: Risk, options: SolveOptions, pool: TaskPool, *,
             max_rounds: int = 40, tolerance: float = 1e-5, time_limit_s: float | None = None) -> LShapedOutcome:
    """``tasks``: per scenario ``{"key", "name", "instance"}``: the scenario's instance as data, and
    a key ``"<hedge>:<scenario>"`` under which a worker keeps its model between rounds."""
    started = time.perf_counter()
    deadline = None if time_limit_s is None else started + time_limit_s
    n = len(tasks)
    free = pool.results(_scenario_lp, [{**t, "fixed": None, "bounds": True} for t in tasks])
    bounds = free[0]["bounds"]
    labels = list(bounds)
    for other, task in zip(free[1:], tasks[1:]):
        if set(other["bounds"]) != set(labels):
            raise ChipmixError(f"scenario {task['name']} has other purchases than {tasks[0]['name']}: "
                               "a hedge's scenarios change hours, not what can be bought")
    lower = np.max([[f["bounds"][k][0] for k in labels] for f in free], axis=0).reshape(-1)
    upper = np.max([[f["bounds"][k][1] for k in labels] for f in free], axis=0).reshape(-1)  # as extensive.py
    integer = np.array([bounds[k][2] for k in labels], dtype=bool)
    floor = np.array([f["value"] for f in free])  # theta_s >= min_x G_s(x)
    cuts: list[tuple[int, float, np.ndarray]] = []  # (scenario, rhs, d): theta_s - d x >= rhs
    best = (np.inf, None)
    bound = risk_value(floor, probabilities, risk)
    history: list[dict] = []
    master_options = options.model_copy(update={"mip_rel_gap": min(options.mip_rel_gap, 1e-6), "method": "direct",
                                                "engine": "highs"})
    stopped = "rounds"
    position = {label: k for k, label in enumerate(labels)}
    for round_number in range(1, max_rounds + 1):
        master = ArrayModel()
        x = master.columns("first_stage", lower, upper, np.zeros(len(labels)), integer)
        theta = master.columns("scenario_cost", floor, np.inf, np.zeros(n), np.zeros(n, bool))
        add_risk(master, [(theta[[s]], np.ones(1)) for s in range(n)], probabilities, risk)
        for coefficients, row_lower, row_upper in free[0]["rows"]:
            master.rows(np.zeros(len(coefficients), dtype=np.int64), x[[position[k] for k in coefficients]],
                        list(coefficients.values()), row_lower, row_upper, 1)
        if cuts:
            rows = np.concatenate([np.full(len(labels) + 1, r) for r in range(len(cuts))])
            cols = np.concatenate([np.concatenate([[theta[s]], x]) for s, _, _ in cuts])
            vals = np.concatenate([np.concatenate([[1.0], -d]) for _, _, d in cuts])
            master.rows(rows, cols, vals, [rhs for _, rhs, _ in cuts], np.inf, len(cuts))
        left = None if deadline is None else max(deadline - time.perf_counter(), 1.0)
        result = get_backend("highs").solve(master.model(), master_options.model_copy(update={"time_limit_s": left}))
        if not result.status.has_plan or result.bound is None:
            raise ChipmixError(f"the L-shaped master ended {result.status.value} in round {round_number}")
        bound = max(bound, float(result.bound))
        point = np.where(integer, np.rint(result.values[x]), result.values[x])
        point = np.clip(point, lower, upper)
        fixed = dict(zip(labels, map(float, point)))
        answers = pool.results(_scenario_lp, [{**t, "fixed": fixed} for t in tasks])
        values = np.array([a["value"] for a in answers])
        value = risk_value(values, probabilities, risk)
        if value < best[0]:
            best = (value, fixed)
        for s, answer in enumerate(answers):
            d = np.array([answer["gradient"][k] for k in labels])
            cuts.append((s, float(values[s] - d @ point), d))
        history.append({"round": round_number, "bound": bound, "lp_value": value, "best_lp_value": best[0],
                        "seconds": round(time.perf_counter() - started, 3)})
        if best[0] - bound <= tolerance * max(1.0, abs(best[0])):
            stopped = "converged"
            break
        if deadline is not None and time.perf_counter() >= deadline:
            stopped = "time limit"
            break
    return LShapedOutcome(best[1], bound, best[0], len(history), stopped, time.perf_counter() - started, history)
