"""What a solve comes to, said once for every surface: the plan, the checker's verdict on it, the
exit code and the message a user reads.

The CLI (``chipmix solve``) and the HTTP service both call :func:`run_solve`, so they can never
say different things about the same solve.  A plan the checker rejects is never a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping

from optimizer.errors import EXIT_INPUT, EXIT_NO_PLAN, EXIT_OK, EXIT_VIOLATIONS, ChipmixError, InputError
from optimizer.input.schema import Instance
from optimizer.plans.checker import CheckReport, check_tables
from optimizer.plans.plan import ALLOCATION_COLUMNS, RESERVATION_COLUMNS, Plan
from optimizer.plans.solve import solve
from optimizer.solvers.backends import SolverError
from optimizer.solvers.options import SolveOptions
from optimizer.solvers.progress import Progress


class OutcomeKind(str, Enum):
    """How a solve ended, for a user (the service's job ``error.kind`` when it is not ``ok``)."""

    OK = "ok"  # a plan that passes the checker (optimal or within the time limit)
    VIOLATIONS = "checker_violations"  # the solver returned a plan the checker rejects
    INFEASIBLE = "infeasible"  # hard demand cannot be met
    NO_PLAN = "no_plan"  # no plan within the limits
    ERROR = "error"  # the solver failed (a bug or a crash, not the instance)


_EXIT_CODES = {
    OutcomeKind.OK: EXIT_OK, OutcomeKind.VIOLATIONS: EXIT_VIOLATIONS, OutcomeKind.ERROR: EXIT_VIOLATIONS,
    OutcomeKind.INFEASIBLE: EXIT_INPUT, OutcomeKind.NO_PLAN: EXIT_NO_PLAN,
}


@dataclass
class Outcome:
    kind: OutcomeKind
    message: str  # what went wrong, or the checker's verdict on a good plan
    plan: Plan | None = None
    check: CheckReport | None = None  # None when the plan was not checked (or there is none)
    warning: str | None = None  # e.g. the time limit stopped the solver before the gap was proven

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self.kind]


def check_plan_tables(instance: Instance, plan: Plan, name: str = "plan") -> CheckReport:
    """The independent checker on a plan in memory: the tables ``plan.write`` would write."""
    return check_tables(instance, plan.allocations[ALLOCATION_COLUMNS], plan.reservations[RESERVATION_COLUMNS],
                        plan.summary(), name=name, purchases=plan.purchases, coverage=plan.coverage, energy=plan.energy,
                        routing=plan.routing)


def run_solve(instance: Instance, options: SolveOptions | None = None, *, source: str | None = None,
              label: str = "plan", check: bool = True, fixed_reservations: Mapping[str, int] | None = None,
              fixed_purchases: Mapping[str, float] | None = None, progress: Progress | None = None) -> Outcome:
    """Solve and check.  ``source`` names the instance in messages (its file); ``label`` names the
    plan in the checker's verdict (its folder).  Bad input raises InputError (exit code 2)."""
    source = source or instance.name
    try:
        plan = solve(instance, options, fixed_reservations=fixed_reservations, fixed_purchases=fixed_purchases,
                     progress=progress)
    except InputError:
        raise
    except (ChipmixError, SolverError) as exc:  # a solver failure says nothing about the instance
        return Outcome(OutcomeKind.ERROR, f"{source}: the solver failed: {exc}")
    if plan.status.value == "infeasible":
        report = plan.infeasibility.render() if plan.infeasibility else "the solver proved it infeasible"
        return Outcome(OutcomeKind.INFEASIBLE, f"{source}: infeasible: hard demand cannot be met\n{report}", plan)
    if not plan.has_plan:
        bound = "" if plan.bound_usd is None else f"; best bound {plan.bound_usd:,.2f} USD"
        return Outcome(OutcomeKind.NO_PLAN,
                       f"{source}: no plan found ({plan.status.value}, {plan.details['solver_status']}){bound}", plan)
    warning = None
    if plan.status.value == "feasible":
        warning = (f"time limit reached: plan within {plan.gap:.4%} of the best bound" if plan.gap is not None
                   else "time limit reached: no bound proven")
    if not check:
        return Outcome(OutcomeKind.OK, "not checked (--no-check)", plan, warning=warning)
    report = check_plan_tables(instance, plan, label)
    kind = OutcomeKind.OK if report.ok else OutcomeKind.VIOLATIONS
    return Outcome(kind, report.render(), plan, report, warning)
