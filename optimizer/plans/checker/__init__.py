"""The independent plan checker: recomputes everything from the instance and the plan's tables.

It shares no code with model building (no ModelData, no families, no backend, no numpy): plain
loops over the validated instance and the plan's rows, so a bug in the model cannot hide itself
here.  It is organised as the model is, one rule per constraint family
(:mod:`optimizer.plans.checker.rules`), plus the recomputation of every cost term, compared with
summary.json (:mod:`optimizer.plans.checker.summary`).  Violations are named with the
constraint names of docs/formulation.md, e.g.
``pool_capacity[aws-h100,12]: 24 chips allocated, 16 available``.

It reads plan files (:func:`check_plan`) or the same tables in memory (:func:`check_tables`),
so the service checks a plan without writing it to a temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.errors import FieldError, InputError
from optimizer.input.loading import load_instance
from optimizer.input.schema import Instance
from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts
from optimizer.plans.checker.rules import READERS, RULES
from optimizer.plans.checker.summary import (
    COST_KEYS, COST_TERMS, OBJECTIVE_REL_TOL, OPTIONAL_SUMMARY_KEYS, PLAN_STATUSES, SUMMARY_KEYS, check_summary,
)
from optimizer.plans.checker.tables import PlanRows, read_files, read_tables

__all__ = [
    "ABS_TOL", "COST_KEYS", "OBJECTIVE_REL_TOL", "OPTIONAL_SUMMARY_KEYS", "PLAN_STATUSES", "REL_TOL", "SUMMARY_KEYS",
    "CheckReport", "check_plan", "check_plan_files", "check_tables", "made_for_another_instance",
]


@dataclass
class CheckReport:
    """What the checker found: violations (empty means the plan is valid) and its own totals."""

    plan_dir: str
    violations: list[str] = field(default_factory=list)
    recomputed: dict[str, float] = field(default_factory=dict)
    facts: Any = field(default=None, repr=False)  # what the rules recomputed (the summary is checked against it)

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        if self.ok:
            return f"{self.plan_dir}: plan OK (total {self.recomputed.get('total', 0.0):,.2f} USD)"
        lines = [f"{self.plan_dir}: {len(self.violations)} violation(s)"]
        lines += [f"  {violation}" for violation in self.violations]
        return "\n".join(lines)


def _another_instance(instance: Instance, summary: Any) -> str | None:
    """Why a plan whose summary is ``summary`` is not a plan of ``instance`` (it names another
    instance's fingerprint), or None."""
    made_for = summary.get("instance_sha256") if isinstance(summary, dict) else None
    if made_for is None or made_for == instance.sha256():
        return None
    return (f"the plan was made for another instance ({summary.get('instance')!r}, instance_sha256 "
            f"{str(made_for)[:12]}...; this is {instance.name!r}, {instance.sha256()[:12]}...: another file, or this "
            "one edited since): give the instance it was solved for, or solve this one")


def made_for_another_instance(instance: Instance, plan_dir: str | Path) -> str | None:
    """Why the plan in ``plan_dir`` is not a plan of ``instance``, or None.  Every rule would only
    list how two instances differ, so the CLI makes this one input error (exit 2) before checking
    or reporting anything."""
    import json

    try:
        summary = json.loads((Path(plan_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None  # the checker itself reports a missing or broken summary.json
    return _another_instance(instance, summary)


def require_plan_of(instance: Instance, plan_dir: str | Path, hint: str | None = None) -> None:
    """Raise the one input error a reader of plan files (the report, diff) gives for a folder that
    holds no plan (no summary.json) or a plan of another instance; ``hint`` says how to fix the latter."""
    if not (Path(plan_dir) / "summary.json").exists():
        raise InputError(str(plan_dir), [FieldError("summary.json", "missing", "point at a folder written by chipmix solve")])
    other = made_for_another_instance(instance, plan_dir)
    if other:
        raise InputError(str(plan_dir), [FieldError("summary.json.instance_sha256", other, hint)])


def check_plan_files(instance_path: str | Path, plan_dir: str | Path) -> CheckReport:
    """Load the instance file and check the plan in ``plan_dir``."""
    return check_plan(load_instance(instance_path), plan_dir)


def check_plan(instance: Instance, plan_dir: str | Path) -> CheckReport:
    """Check the plan files in ``plan_dir`` against ``instance``."""
    report = CheckReport(str(plan_dir))
    _check(instance, read_files(Path(plan_dir), report.violations), report)
    return report


def check_tables(instance: Instance, allocations: Any, reservations: Any, summary: Any,
                 name: str = "plan", purchases: Any = (), coverage: Any = (), energy: Any = None,
                 routing: Any = None) -> CheckReport:
    """Check a plan held in memory: ``allocations``, ``reservations``, ``purchases``,
    ``coverage``, ``energy`` and ``routing`` as DataFrames or lists of dicts with the CSV columns,
    ``summary`` as the summary.json object."""
    report = CheckReport(name)
    _check(instance, read_tables(allocations, reservations, summary, report.violations, purchases, coverage, energy,
                                 routing), report)
    return report


def _check(instance: Instance, rows: PlanRows, report: CheckReport) -> None:
    routes = any(getattr(w, "variants", None) for w in instance.workloads)
    if rows.routing is None and routes:
        report.violations.append("routing.csv: missing (the instance routes services between variants)")
    tables = {"allocations": rows.allocations, "reservations": rows.reservations, "purchases": rows.purchases,
              "coverage": rows.coverage, "energy": rows.energy,
              "routing": rows.routing if rows.routing is not None or routes else []}
    if any(table is None for table in tables.values()) or rows.summary is None:
        return
    other = _another_instance(instance, rows.summary)
    if other:
        # Every other rule would only list the differences between two instances: one violation.
        report.violations.append(f"summary.json: {other}")
        return
    facts = Facts(instance, report.violations)
    for table, read in READERS:
        read(facts, tables[table])
    for rule in RULES:
        rule(facts)
    report.facts = facts
    costs = {key: facts.costs.get(key, 0.0) for key in COST_TERMS}
    report.recomputed = {**costs, "total": sum(costs.values()), "unmet_pflops_hours": facts.unmet_pflops_hours,
                         "short_eflop": facts.short_eflop}
    check_summary(rows.summary, instance, report)
