"""A solved plan as DataFrames, and its files: the contract other tools read.

``plan.write(dir)`` writes

- ``allocations.csv``: ``hour,workload,pool,chips``, one row per non-zero allocation;
- ``reservations.csv``: ``pool,chips``, one row per reserved-pricing pool (0 if none held);
- ``summary.json``: exactly the keys of :data:`SUMMARY_KEYS`;

and, beside them, ``unmet.csv`` (``workload,hour,unmet_pflops``), ``shortfall.csv``
(``workload,short_eflop``) and ``details.json`` (model size, solver's words, options).
Files are written to a temporary folder first and moved into place, so a
failed write leaves nothing half-way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import ChipmixError
from optimizer.plans.accounting import COST_KEYS
from optimizer.solvers.result import SolveStatus

SUMMARY_KEYS = (
    "instance",
    "engine",
    "status",
    "solve_seconds",
    "objective_usd",
    "bound_usd",
    "gap",
    "cost_usd",
    "unmet_pflops_hours",
    "short_eflop",
    "time_to_first_plan_s",
    "time_to_1pct_s",
)
ALLOCATION_COLUMNS = ["hour", "workload", "pool", "chips"]
RESERVATION_COLUMNS = ["pool", "chips"]
PLAN_FILES = ("allocations.csv", "reservations.csv", "summary.json", "unmet.csv", "shortfall.csv", "details.json")


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
    unmet: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["workload", "hour", "unmet_pflops"]))
    shortfall: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["workload", "short_eflop"]))
    cost_usd: dict[str, float] = field(default_factory=dict)
    unmet_pflops_hours: float = 0.0
    short_eflop: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    time_to_first_plan_s: float | None = None  # from the solver's progress reports (None: never had a plan)
    time_to_1pct_s: float | None = None  # first time the incumbent was proven within 1% of the bound
    infeasibility: Any = None  # optimizer.plans.diagnose.InfeasibilityReport when status is infeasible

    @property
    def has_plan(self) -> bool:
        return self.status.has_plan

    def summary(self) -> dict[str, Any]:
        """summary.json: exactly :data:`SUMMARY_KEYS`."""
        return {
            "instance": self.instance,
            "engine": self.engine,
            "status": self.status.value,
            "solve_seconds": round(float(self.solve_seconds), 3),
            "objective_usd": _json_number(self.objective_usd),
            "bound_usd": _json_number(self.bound_usd),
            "gap": _json_number(self.gap),
            "cost_usd": {key: float(self.cost_usd.get(key, 0.0)) for key in COST_KEYS},
            "unmet_pflops_hours": float(self.unmet_pflops_hours),
            "short_eflop": float(self.short_eflop),
            "time_to_first_plan_s": _json_number(self.time_to_first_plan_s),
            "time_to_1pct_s": _json_number(self.time_to_1pct_s),
        }

    def write(self, directory: str | Path) -> Path:
        """Write the plan files into ``directory`` (created if needed); all or nothing."""
        if not self.has_plan:
            raise ChipmixError(f"no plan to write: the solve ended {self.status.value}")
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self.allocations[ALLOCATION_COLUMNS].to_csv(staging / "allocations.csv", index=False)
            self.reservations[RESERVATION_COLUMNS].to_csv(staging / "reservations.csv", index=False)
            self.unmet.to_csv(staging / "unmet.csv", index=False, float_format="%.9g")
            self.shortfall.to_csv(staging / "shortfall.csv", index=False, float_format="%.9g")
            (staging / "summary.json").write_text(json.dumps(self.summary(), indent=2) + "\n")
            (staging / "details.json").write_text(json.dumps(self.details, indent=2, default=str) + "\n")
            if not directory.exists():
                os.replace(staging, directory)
            else:
                for name in PLAN_FILES:
                    os.replace(staging / name, directory / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory
