"""chipmix: the cheapest feasible plan for AI compute across chips, clouds and power-capped sites.

Python API::

    import optimizer
    instance = optimizer.load_instance("instances/default.yaml")
    plan = optimizer.solve(instance, time_limit_s=60)
    plan.write("plans/default")
    report = optimizer.check_plan(instance, "plans/default")
"""

from optimizer.checker import CheckReport, check_plan, check_plan_files
from optimizer.errors import ChipmixError, FieldError, InfeasibleError, InputError
from optimizer.loading import instance_from_data, load_instance
from optimizer.options import ENGINES, SolveOptions
from optimizer.plan import Plan
from optimizer.result import SolveStatus
from optimizer.schema import Instance
from optimizer.solve import solve

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
