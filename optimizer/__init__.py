"""chipmix: the cheapest feasible plan for AI compute across chips, clouds and power-capped sites.

Python API::

    import optimizer
    instance = optimizer.load_instance("instances/default.yaml")
    plan = optimizer.solve(instance, time_limit_s=60)
    plan.write("plans/default")
    report = optimizer.check_plan(instance, "plans/default")
"""

from optimizer.plans.checker import CheckReport, check_plan, check_plan_files
from optimizer.errors import ChipmixError, FieldError, InfeasibleError, InputError
from optimizer.input.loading import instance_from_data, load_instance
from optimizer.solvers.options import ENGINES, SolveOptions
from optimizer.plans.plan import Plan
from optimizer.solvers.result import SolveStatus
from optimizer.input.schema import Instance
from optimizer.plans.solve import solve

__all__ = [
    "ENGINES",
    "CheckReport",
    "ChipmixError",
    "FieldError",
    "InfeasibleError",
    "InputError",
    "Instance",
    "Plan",
    "SolveOptions",
    "SolveStatus",
    "check_plan",
    "check_plan_files",
    "instance_from_data",
    "load_instance",
    "solve",
]
