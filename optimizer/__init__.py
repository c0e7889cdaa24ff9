"""chipmix: the cheapest feasible plan for AI compute across chips, clouds and power-capped sites.

Python API::

    import optimizer
    instance = optimizer.load_instance("instances/default.yaml")
    plan = optimizer.solve(instance, time_limit_s=60)
    plan.write("plans/default")
    report = optimizer.check_plan(instance, "plans/default")

    # Two-stage: purchases chosen once for every scenario of a file with probabilities.
    week = optimizer.load_instance("instances/frontier-lab-week.yaml")
    scenarios, risk = optimizer.load_hedge_scenarios("instances/scenarios/frontier-lab-week-hedge.yaml", week)
    result = optimizer.hedge(week, scenarios, risk, time_limit_s=120)
    result.write("plans/hedge")

The package is laid out as the pipeline runs (docs/architecture.md): ``input`` (schema, loading,
validation) -> ``model`` (model data, constraint families, the linear model) -> ``solvers``
(options, backends, the decomposition) -> ``plans`` (plan, accounting, checker, diagnosis,
outcome) -> ``analyses`` (lock-in, greedy, scenarios, hedge) -> ``surfaces`` (CLI, service, report).
"""

from optimizer.analyses.hedge import HedgeResult, hedge
from optimizer.analyses.scenarios import load_hedge_scenarios
from optimizer.errors import ChipmixError, FieldError, InfeasibleError, InputError
from optimizer.input.loading import instance_from_data, load_instance
from optimizer.input.schema import Instance
from optimizer.plans.checker import CheckReport, check_plan, check_plan_files, check_tables
from optimizer.plans.outcome import Outcome, OutcomeKind, run_solve
from optimizer.plans.plan import Plan
from optimizer.plans.solve import solve
from optimizer.solvers.options import ENGINES, SolveOptions
from optimizer.solvers.result import SolveStatus

__all__ = [
    "ENGINES",
    "CheckReport",
    "ChipmixError",
    "FieldError",
    "HedgeResult",
    "InfeasibleError",
    "InputError",
    "Instance",
    "Outcome",
    "OutcomeKind",
    "Plan",
    "SolveOptions",
    "SolveStatus",
    "check_plan",
    "check_plan_files",
    "check_tables",
    "hedge",
    "instance_from_data",
    "load_hedge_scenarios",
    "load_instance",
    "run_solve",
    "solve",
]
