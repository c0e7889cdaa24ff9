"""A solved plan as DataFrames, and its files: the contract other tools read.

``plan.write(dir)`` writes

- ``allocations.csv``: ``hour,workload,pool,chips,variant``, one row per non-zero allocation
  (``variant``: the model a routed service's chips run, empty otherwise);
- ``routing.csv``: ``hour,workload,variant,share``, each routed service's share of tokens per
  variant in every hour it serves (plans/economics.py);
- ``reservations.csv``: ``pool,chips``, one row per reserved-pricing pool (0 if none held);
- ``purchases.csv``: ``instrument,kind,start_hour,quantity,unit,usd``, one row per capacity-block
  purchase, per commitment (its level, 0 if none) and per contract (its shortfall);
- ``coverage.csv``: ``hour,pool,commitment,chips``, the chips each commitment paid for;
- ``energy.csv``: ``site,hour,facility_mwh,renewable_mwh,certificates_mwh,grid_mwh,carbon_t``, one
  row per site and hour the plan draws energy in (carbon_t empty where the site states no intensity);
- ``summary.json``: exactly the keys of :data:`SUMMARY_KEYS`;

with ``--duals`` also ``duals.csv`` (``family,index,hour,value,unit``: plans/duals.py);
and, beside them, ``unmet.csv`` (``workload,hour,unmet_pflops``), ``shortfall.csv``
(``workload,short_eflop``) and ``details.json`` (model size, solver's words, options).
Files are written to a folder beside the target, which then takes its place in one step, so a
failed or killed write leaves nothing half-way.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import ChipmixError
from optimizer.files import replace_folder, staging_folder
from optimizer.plans.accounting import COST_KEYS
from optimizer.plans.economics import ROUTING_COLUMNS
from optimizer.plans.energy import ENERGY_COLUMNS
from optimizer.plans.instruments import COVERAGE_COLUMNS, PURCHASE_COLUMNS
from optimizer.solvers.result import SolveStatus

SUMMARY_KEYS = (
    "instance",
    "instance_sha256",
    "engine",
    "method",
    "status",
    "solve_seconds",
    "objective_usd",
    "bound_usd",
    "gap",
    "cost_usd",
    "unmet_pflops_hours",
    "short_eflop",
    "energy",
    "economics",
    "time_to_first_plan_s",
    "time_to_1pct_s",
)
ALLOCATION_COLUMNS = ["hour", "workload", "pool", "chips", "variant"]
RESERVATION_COLUMNS = ["pool", "chips"]
PLAN_FILES = ("allocations.csv", "reservations.csv", "purchases.csv", "coverage.csv", "energy.csv", "routing.csv",
              "summary.json",
              "unmet.csv", "shortfall.csv", "details.json")


def _json_number(value: float | None) -> float | str | None:
    """JSON has no infinity: an unbounded gap is written as the string "inf"."""
    if value is None:
        return None
    if value == float("inf"):
        return "inf"
    return float(value)


@dataclass
class Plan:
    """The answer to one solve.  ``status.has_plan`` says whether the frames hold a plan."""

    instance: str
    engine: str
    status: SolveStatus
    solve_seconds: float
    objective_usd: float | None
    bound_usd: float | None
    gap: float | None
    allocations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ALLOCATION_COLUMNS))
    reservations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RESERVATION_COLUMNS))
    purchases: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PURCHASE_COLUMNS))
    coverage: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COVERAGE_COLUMNS))
    unmet: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["workload", "hour", "unmet_pflops"]))
    shortfall: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["workload", "short_eflop"]))
    energy: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ENERGY_COLUMNS))
    routing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROUTING_COLUMNS))
    #: summary.json's ``economics`` block (plans/economics.py: economics_summary)
    economics: dict[str, Any] = field(default_factory=dict)
    #: summary.json's ``energy`` block (plans/energy.py: energy_summary)
    energy_summary: dict[str, Any] = field(default_factory=dict)
    duals: pd.DataFrame | None = None  # shadow prices (plans/duals.py), when asked for
    cost_usd: dict[str, float] = field(default_factory=dict)
    unmet_pflops_hours: float = 0.0
    short_eflop: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    time_to_first_plan_s: float | None = None  # from the solver's progress reports (None: never had a plan)
    time_to_1pct_s: float | None = None  # first time the incumbent was proven within 1% of the bound
    instance_sha256: str | None = None  # the instance's fingerprint (Instance.sha256): whom the plan is for
    #: What the plan bought before the hours (reservations, blocks, commitment levels), by model
    #: column name, e.g. ``{"blocks_bought[aws-cb-1d,24]": 2.0}``: what a hedge holds.
    first_stage: dict[str, float] = field(default_factory=dict)
    check: Any = None  # optimizer.plans.checker.CheckReport, where the caller ran the checker on it
    infeasibility: Any = None  # optimizer.plans.diagnose.InfeasibilityReport when status is infeasible

    @property
    def has_plan(self) -> bool:
        return self.status.has_plan

    def summary(self) -> dict[str, Any]:
        """summary.json: exactly :data:`SUMMARY_KEYS`."""
        return {
            "instance": self.instance,
            "instance_sha256": self.instance_sha256,
            "engine": self.engine,
            # Which method ran and why: {asked, chosen, reason} (--method auto chooses; backends say).
            "method": self.details.get("solver", {}).get("method"),
            "status": self.status.value,
            "solve_seconds": round(float(self.solve_seconds), 3),
            "objective_usd": _json_number(self.objective_usd),
            "bound_usd": _json_number(self.bound_usd),
            "gap": _json_number(self.gap),
            "cost_usd": {key: float(self.cost_usd.get(key, 0.0)) for key in COST_KEYS},
            "unmet_pflops_hours": float(self.unmet_pflops_hours),
            "short_eflop": float(self.short_eflop),
            "energy": self.energy_summary,
            "economics": self.economics,
            "time_to_first_plan_s": _json_number(self.time_to_first_plan_s),
            "time_to_1pct_s": _json_number(self.time_to_1pct_s),
        }

    def write(self, directory: str | Path) -> Path:
        """Write the plan files into ``directory``, all at once: the files are written to a folder
        beside it that then takes its place in one step, so a reader (or a write killed half-way)
        never leaves old and new files mixed.  Other files in the folder stay."""
        if not self.has_plan:
            raise ChipmixError(f"no plan to write: the solve ended {self.status.value}")
        directory = Path(directory)
        staging = staging_folder(directory)
        try:
            self.allocations[ALLOCATION_COLUMNS].to_csv(staging / "allocations.csv", index=False)
            self.reservations[RESERVATION_COLUMNS].to_csv(staging / "reservations.csv", index=False)
            # Written exactly (repr), so the checker recomputes fees and coverage from the same numbers.
            self.purchases[PURCHASE_COLUMNS].to_csv(staging / "purchases.csv", index=False)
            self.coverage[COVERAGE_COLUMNS].to_csv(staging / "coverage.csv", index=False)
            # Written exactly (repr), so the checker recomputes prices and carbon from the same numbers.
            self.energy[ENERGY_COLUMNS].to_csv(staging / "energy.csv", index=False)
            self.routing[ROUTING_COLUMNS].to_csv(staging / "routing.csv", index=False)
            if self.duals is not None:
                self.duals.to_csv(staging / "duals.csv", index=False, float_format="%.10g")
            self.unmet.to_csv(staging / "unmet.csv", index=False, float_format="%.9g")
            self.shortfall.to_csv(staging / "shortfall.csv", index=False, float_format="%.9g")
            (staging / "summary.json").write_text(json.dumps(self.summary(), indent=2) + "\n")
            (staging / "details.json").write_text(json.dumps(self.details, indent=2, default=str) + "\n")
            replace_folder(staging, directory, drop=("duals.csv",))  # no stale shadow prices of an earlier solve
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory
