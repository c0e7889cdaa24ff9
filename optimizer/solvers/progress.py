"""Incumbent and bound over time, as the solver reports them while it runs.

A backend that can (HiGHS through its MIP callbacks, CP-SAT through its solution callback) calls
:meth:`Progress.record` with the elapsed time, its incumbent and its bound; anyone may watch (the
CLI's ``--progress`` display).  From the records come the figures in summary.json: the time to
the first plan and the time to a plan proven within 1% of the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from optimizer.solvers.result import relative_gap


@dataclass
class Progress:
    """Records (seconds, best incumbent, best bound); incumbents only fall and bounds only rise."""

    on_record: Callable[[float, float | None, float | None], None] | None = None
    records: list[tuple[float, float | None, float | None]] = field(default_factory=list)

    def record(self, seconds: float, objective: float | None, bound: float | None) -> None:
        if objective is not None and not math.isfinite(objective):
            objective = None
        if bound is not None and not math.isfinite(bound):
            bound = None
        if self.records:
            _, best, highest = self.records[-1]
            objective = best if objective is None else objective if best is None else min(best, objective)
            bound = highest if bound is None else bound if highest is None else max(highest, bound)
            if self.records[-1][1:] == (objective, bound):
                return
        self.records.append((round(seconds, 3), objective, bound))
        if self.on_record is not None:
            self.on_record(seconds, objective, bound)

    def time_to_first_plan(self) -> float | None:
        return next((t for t, objective, _ in self.records if objective is not None), None)

    def time_to_gap(self, gap: float) -> float | None:
        for t, objective, bound in self.records:
            reached = relative_gap(objective, bound)
            if reached is not None and reached <= gap:
                return t
        return None
