"""chipmix: the cheapest feasible plan for AI compute across chips, clouds and power-capped sites.

Python API::

    import optimizer
    instance = optimizer.load_instance("instances/default.yaml")
    plan = optimizer.solve(instance, time_limit_s=60)
    plan.write("plans/default")
    report = optimizer.check_plan(instance, "plans/default")

The package is laid out as the pipeline runs (docs/architecture.md): ``input`` (schema, loading,
validation) -> ``model`` (model data, constraint families, the linear model) -> ``solvers``
(options, backends, the decomposition) -> ``plans`` (plan, accounting, checker, diagnosis,
outcome) -> ``analyses`` (lock-in, greedy, scenarios) -> ``surfaces`` (CLI, service, report).
"""

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
    "instance_from_data",
    "load_instance",
    "run_solve",
    "solve",
]
