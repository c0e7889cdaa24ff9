"""Solve options shared by the Python API, the CLI and (later) the HTTP service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from optimizer.errors import FieldError, InputError

Engine = Literal["highs", "pulp-cbc", "pulp-highs", "cpsat"]
ENGINES: tuple[str, ...] = ("highs", "pulp-cbc", "pulp-highs", "cpsat")
Method = Literal["auto", "direct", "decompose"]
#: The methods each engine's backend registers (optimizer/solvers/backends): "direct" hands the
#: whole model to the solver; "decompose" is the hour decomposition (backends/highs/decompose.py);
#: "auto" lets the backend choose from the model (optimizer/solvers/method.py).
ENGINE_METHODS: dict[str, tuple[str, ...]] = {
    "highs": ("auto", "direct", "decompose"), "pulp-cbc": ("auto", "direct"), "pulp-highs": ("auto", "direct"),
    "cpsat": ("auto", "direct"),
}


class SolveOptions(BaseModel):
    """How to solve.  Defaults suit the bundled instances on a 2-core machine."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    engine: Engine = Field(
        default="highs", description="highs (highspy, default) | pulp-cbc | pulp-highs | cpsat (OR-Tools CP-SAT)."
    )
    method: Method = Field(
        default="auto",
        description=(
            "auto (default): the engine chooses from the model's size and structure, and says why "
            "(summary.json).  direct: the whole MILP to the solver.  decompose (HiGHS only): LP "
            "relaxation, an hour-by-hour plan, a Lagrangian bound that keeps each hour's "
            "integrality, then the MILP warm-started from that plan (see docs/performance.md)."
        ),
    )
    cluster: str | None = Field(
        default=None,
        description=("Dask scheduler address: the decomposition's hour step runs on its workers "
                     "(default: a process pool on this machine; needs chipmix[dask])."),
    )
    time_limit_s: float | None = Field(default=None, gt=0, description="Wall-clock limit for the solver, s.")
    mip_rel_gap: float = Field(
        default=1e-3,
        ge=0,
        le=1,
        description="Stop when (objective - bound) / |objective| is at most this (default 0.1%).",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Solver threads; CP-SAT: search workers (None: solver default; CP-SAT: 8 workers "
            "interleaved, deterministic; an explicit count runs them in parallel, deterministic only with 1)."
        ),
    )
    random_seed: int = Field(
        default=0,
        ge=0,
        description="Solver seed; same seed and options give the same plan.",
    )
    verbose: bool = Field(default=False, description="Show the solver's own log.")
    duals: bool = Field(
        default=False,
        description=("Also compute shadow prices (duals.csv): the LP with the plan's purchases and run structure "
                     "held and its allocations relaxed (plans/duals.py)."),
    )
    diagnose_infeasible: bool = Field(
        default=True, description="On infeasibility, re-solve with elastic slack to name the short workloads and hours."
    )

    @field_validator("engine", mode="before")
    @classmethod
    def _known_engine(cls, value):
        if isinstance(value, str) and value not in ENGINES:
            raise PydanticCustomError("engine", "Input should be one of {engines} (unknown engine '{value}')",
                                      {"engines": ", ".join(ENGINES), "value": value})
        return value

    @field_validator("method")
    @classmethod
    def _engine_has_method(cls, method: str, info: ValidationInfo) -> str:
        engine = info.data.get("engine")  # validated first (declared first); absent if it was invalid
        if engine is not None and method not in ENGINE_METHODS[engine]:
            engines = [name for name, methods in ENGINE_METHODS.items() if method in methods]
            raise PydanticCustomError(
                "method", "{method} runs on the {engines} engine, not {engine} (use --engine {first} with --method {method})",
                {"method": method, "engines": " or ".join(engines), "engine": engine, "first": engines[0]})
        return method


def solve_options(options: SolveOptions | None = None, **overrides) -> SolveOptions:
    """``options`` (default: the defaults) with ``overrides`` (SolveOptions fields) applied;
    InputError naming each bad field otherwise."""
    options = options or SolveOptions()
    if not overrides:
        return options
    try:
        return SolveOptions.model_validate({**options.model_dump(), **overrides})
    except ValidationError as exc:
        errors = [FieldError(".".join(str(part) for part in error["loc"]) or "options",
                             error["msg"].removeprefix("Value error, ")) for error in exc.errors()]
        raise InputError("options", errors) from None
