"""What a backend returns: our own status enum and a result dataclass, read from the solver itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from enum import Enum

import numpy as np


class SolveStatus(str, Enum):
    """Outcome of a solve, the same for every engine.

    - ``optimal``: a plan proven optimal within the requested relative gap (CP-SAT: proven on
      its integer-scaled model; the bound it reports is lowered by the scaling bound, so the
      gap may exceed the requested one by at most ``scaling_bound_usd / objective``).
    - ``feasible``: a plan, but the solver stopped (time limit) before proving the gap.
    - ``infeasible``: the solver proved that no plan meets the hard demand.
    - ``no_solution``: the solver stopped without a plan and without a proof.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"

    @property
    def has_plan(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass(frozen=True)
class SolveResult:
    """A backend's answer.  ``values`` is None unless ``status.has_plan``."""

    status: SolveStatus
    objective: float | None
    bound: float | None
    values: np.ndarray | None
    solve_seconds: float
    solver_status: str  # the solver's own words, for the record
    extra: dict[str, Any] = field(default_factory=dict)  # engine-specific figures (CP-SAT: scaling)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.bound)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """(objective - bound) / |objective|, the one gap definition used for every engine.

    Objective and bound both come from the solver; 0 when both are 0.
    """
    if objective is None or bound is None:
        return None
    if not np.isfinite(bound):
        return float("inf")
    difference = max(objective - bound, 0.0)
    if difference <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return difference / abs(objective) if objective != 0 else float("inf")
