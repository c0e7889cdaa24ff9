"""Errors a user can act on: which file, which field, what is wrong, how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

#: Exit codes of every command, and the outcome of a solve (optimizer/plans/outcome.py): a plan
#: that passes the checker; checker violations or a solver failure; bad input or infeasible hard
#: demand (nothing written); no plan within the limits (nothing written).
EXIT_OK, EXIT_VIOLATIONS, EXIT_INPUT, EXIT_NO_PLAN = 0, 1, 2, 3


@dataclass(frozen=True)
class FieldError:
    """One problem in an input file, located by a field path such as ``pools[2].available``."""

    path: str
    reason: str
    hint: str | None = None

    def render(self) -> str:
        text = f"{self.path}: {self.reason}" if self.path else self.reason
        return f"{text} (fix: {self.hint})" if self.hint else text


class ChipmixError(Exception):
    """Base of the errors chipmix raises on purpose (the CLI turns them into exit codes)."""


class InputError(ChipmixError):
    """An input file (instance, plan, scenario) is invalid.  Carries every problem found."""

    def __init__(self, source: str, errors: list[FieldError]):
        self.source = source
        self.errors = list(errors)
        super().__init__(self.render())

    def __reduce__(self):  # a worker process sends it back whole (pickle calls __init__ with args)
        return (type(self), (self.source, self.errors))

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.errors)} error(s)"]
        lines += [f"  {self.source}: {error.render()}" for error in self.errors]
        return "\n".join(lines)


class InfeasibleError(ChipmixError):
    """Hard demand cannot be met; ``report`` explains which workloads, hours and sites."""

    def __init__(self, source: str, report: str):
        self.source = source
        self.report = report
        super().__init__(f"{source}: infeasible\n{report}")

    def __reduce__(self):
        return (type(self), (self.source, self.report))
