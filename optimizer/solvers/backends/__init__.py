"""Solver backends: each turns a :class:`~optimizer.model.linear.LinearModel` into a
:class:`~optimizer.solvers.result.SolveResult`.  Solver quirks stay inside the backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace

import numpy as np

from optimizer.model.linear import LinearModel
from optimizer.solvers.options import ENGINES, SolveOptions
from optimizer.solvers.progress import Progress
from optimizer.solvers.result import SolveResult, SolveStatus


class SolverError(RuntimeError):
    """The solver failed in a way that says nothing about the instance (a bug or a crash)."""


class Backend(ABC):
    """One solver behind one interface."""

    name: str
    #: The methods this backend registers (optimizer.solvers.options.ENGINE_METHODS says the same
    #: to the options' validation; a test keeps the two in step).
    methods: tuple[str, ...] = ("auto", "direct")

    def solve(self, model: LinearModel, options: SolveOptions, progress: Progress | None = None) -> SolveResult:
        """Solve ``model`` (minimisation) and report status, objective, bound and values.

        With ``progress``, a backend that can report its incumbent and bound while it runs does so.
        """
        if options.method not in self.methods:
            raise SolverError(f"the {self.name} backend has no method {options.method!r}")
        if options.method == "auto":
            chosen, reason = self.choose_method(model, options)
        else:
            chosen, reason = options.method, "asked for"
        method = {"asked": options.method, "chosen": chosen, "reason": reason}
        if model.n_cols == 0:
            # Nothing to decide (no demand anywhere, or no eligible chip and nothing priced):
            # the empty plan is optimal at zero cost.  Solvers call such a model an error.
            return SolveResult(SolveStatus.OPTIMAL, 0.0, 0.0, np.zeros(0), 0.0, "empty model: nothing to decide",
                               {"method": method})
        result = self._solve(model, options.model_copy(update={"method": chosen}), progress)
        return replace(result, extra={"method": method, **result.extra})

    def choose_method(self, model: LinearModel, options: SolveOptions) -> tuple[str, str]:
        """What ``--method auto`` runs on ``model``, and why in a sentence.  A backend with one
        method runs it; one with more says how it chooses."""
        return "direct", f"the {self.name} engine has one method"

    @abstractmethod
    def _solve(self, model: LinearModel, options: SolveOptions, progress: Progress | None) -> SolveResult:
        """Solve a model with at least one column."""


def get_backend(engine: str) -> Backend:
    """The backend for an engine name (see :data:`optimizer.solvers.options.ENGINES`)."""
    # Imported here so that choosing one engine never loads another's solver.
    if engine == "highs":
        from optimizer.solvers.backends.highs import HighsBackend

        return HighsBackend()
    if engine in ("pulp-cbc", "pulp-highs"):
        from optimizer.solvers.backends.pulp_backend import PulpBackend

        return PulpBackend(solver=engine.removeprefix("pulp-"))
    if engine == "cpsat":
        from optimizer.solvers.backends.cpsat import CpSatBackend

        return CpSatBackend()
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
