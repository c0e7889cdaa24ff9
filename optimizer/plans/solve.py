"""From an instance to a :class:`~optimizer.plans.plan.Plan`: data, model, backend, accounting."""

from __future__ import annotations

import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from typing import Mapping

import numpy as np

from optimizer.errors import FieldError, InputError
from optimizer.input.schema import Instance
from optimizer.model.build import build_model
from optimizer.model.data import ModelData, build_model_data
from optimizer.model.families import FAMILIES
from optimizer.model.families.allocation import BLOCKS
from optimizer.model.families.block_capacity import BLOCKS_BOUGHT
from optimizer.model.families.commitment_cover import SPEND_COVERED, SPEND_LEVEL, USAGE_COVERED, USAGE_LEVEL
from optimizer.model.families.gang import GANG_START
from optimizer.model.families.renewable_quota import CERTIFICATE, RENEWABLE
from optimizer.model.families.reserved_capacity import RESERVED_BLOCKS
from optimizer.model.families.routing import ROUTED
from optimizer.model.linear import LinearModel
from optimizer.plans.accounting import account_plan
from optimizer.plans.economics import Routing, routing_from_values
from optimizer.plans.energy import EnergySplit, split_from_values
from optimizer.plans.instruments import Bought
from optimizer.plans.plan import Plan
from optimizer.solvers.backends import SolverError, get_backend
from optimizer.solvers.options import SolveOptions, solve_options
from optimizer.solvers.progress import Progress
from optimizer.solvers.result import SolveResult

#: Solver values further than this from an integer mean a backend bug, not rounding noise.
INTEGRALITY_TOLERANCE = 1e-4


def _chipmix_version() -> str:
    try:
        return version("chipmix")
    except PackageNotFoundError:
        return "unknown"


def fixed_reserved_blocks(data: ModelData, reservations: Mapping[str, int]) -> dict[int, int]:
    """Pool id -> chips already reserved, as pool index -> blocks; InputError on anything invalid."""
    index = {pool_id: p for p, pool_id in enumerate(data.pool_ids)}
    errors, fixed = [], {}
    for pool_id, chips in reservations.items():
        p = index.get(pool_id)
        if p is None or not data.pool_reserved[p]:
            errors.append(FieldError(str(pool_id), "not a reserved pool of this instance"))
        elif chips < 0 or chips % data.pool_block[p]:
            errors.append(FieldError(str(pool_id), f"{chips} chips is not a whole number of {data.pool_block[p]}-chip blocks"))
        elif chips // data.pool_block[p] > data.pool_available_blocks[p, 0]:
            errors.append(FieldError(str(pool_id), f"{chips} chips is more than the pool can reserve"))
        else:
            fixed[p] = int(chips // data.pool_block[p])
    if errors:
        raise InputError("fixed_reservations", errors)
    return fixed


def solve(
    instance: Instance,
    options: SolveOptions | None = None,
    *,
    fixed_reservations: Mapping[str, int] | None = None,
    fixed_purchases: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    **overrides,
) -> Plan:
    """Solve ``instance`` and return its plan (or the reason there is none).

    ``overrides`` are :class:`SolveOptions` fields, e.g. ``solve(inst, engine="pulp-cbc")``.
    ``fixed_reservations`` (pool id -> chips) holds reservations already bought: they are paid
    for whether used or not, and the plan may use no more reserved chips than that.
    ``fixed_purchases`` (purchase column name -> value, as :attr:`Plan.first_stage` has them)
    holds every purchase given at that value: how a hedge plays one scenario's hours.
    ``progress`` receives the incumbent and bound while the solver runs (HiGHS, CP-SAT).
    """
    options = solve_options(options, **overrides)
    started = time.perf_counter()
    data = build_model_data(instance)
    fixed = fixed_reserved_blocks(data, fixed_reservations) if fixed_reservations else None
    model = build_model(data, fixed_reserved_blocks=fixed)
    if fixed_purchases:
        fix_purchases(model, fixed_purchases)
    build_seconds = time.perf_counter() - started
    progress = progress if progress is not None else Progress()
    result = get_backend(options.engine).solve(model, options, progress)
    if result.status.has_plan:
        result = _settled(data, model, result)
    progress.record(result.solve_seconds, result.objective, result.bound)
    details = {
        "chipmix_version": _chipmix_version(),
        "options": options.model_dump(),
        "model": model.stats(),
        "build_seconds": round(build_seconds, 3),
        "solver_status": result.solver_status,
    }
    if result.extra:
        details["solver"] = result.extra
    details["progress"] = [list(record) for record in progress.records]
    plan = Plan(
        instance=instance.name,
        instance_sha256=instance.sha256(),
        engine=options.engine,
        status=result.status,
        solve_seconds=result.solve_seconds,
        objective_usd=result.objective,
        bound_usd=result.bound,
        gap=result.gap,
        details=details,
        time_to_first_plan_s=progress.time_to_first_plan() if result.status.has_plan else None,
        time_to_1pct_s=progress.time_to_gap(0.01) if result.status.has_plan else None,
    )
    if result.status.has_plan:
        _fill_plan(plan, data, model, result)
        if options.duals:
            from optimizer.plans.duals import shadow_prices

            started = time.perf_counter()
            duals = shadow_prices(data, model, result.values, fixed_reserved_blocks=fixed)
            plan.duals = duals.table
            plan.details["duals"] = {
                "method": "LP with the plan's purchases and run structure held, allocations relaxed",
                "lp_objective_usd": duals.lp_objective_usd, "plan_objective_usd": duals.plan_objective_usd,
                "seconds": round(time.perf_counter() - started, 3)}
    elif result.status.value == "infeasible" and options.diagnose_infeasible:
        from optimizer.plans.diagnose import diagnose_infeasibility

        plan.infeasibility = diagnose_infeasibility(data, options, fixed_reserved_blocks=fixed)
    return plan


def fix_purchases(model: LinearModel, purchases: Mapping[str, float]) -> None:
    """Fix the named purchase columns of ``model`` (bounds edited in place); InputError naming
    each name that is not a purchase of the model or whose value is below what it must buy
    (what is already bought) or negative.  A value above what the instance could buy now is
    held: the purchase was made before (a shock cut the supply since), and it is paid in full;
    the chips in use stay within what the pools have, by their own rows."""
    columns = model.purchase_labels()
    errors = []
    for label, value in purchases.items():
        j = columns.get(label)
        if j is None:
            errors.append(FieldError(label, "not a purchase of this instance"))
            continue
        value = float(np.rint(value)) if model.col_integer[j] else float(value)
        lower = model.col_lower[j]
        if value < lower - 1e-6 * max(1.0, abs(lower)):
            errors.append(FieldError(label, f"{value:g} is below what this instance has bought already ({lower:g})"))
            continue
        model.col_lower[j] = model.col_upper[j] = max(value, lower)
    if errors:
        raise InputError("fixed_purchases", errors)


def first_stage(model: LinearModel, values: np.ndarray) -> dict[str, float]:
    """Every purchase of a solution by its column name: whole numbers for integer columns."""
    return {label: float(np.rint(values[j])) if model.col_integer[j] else float(values[j])
            for label, j in model.purchase_labels().items()}


def _settled(data: ModelData, model: LinearModel, result: SolveResult) -> SolveResult:
    """The solver's plan with its whole blocks as they are and every continuous column (unmet
    demand, shortfall) at the least its row needs; its objective is then exactly the plan's cost.
    A solver's incumbent can carry slack above need (see LinearModel.settle_continuous), which
    would report an objective above what the plan costs.  The bound is untouched: it stays valid."""
    integer = model.col_integer
    off = np.abs(result.values[integer] - np.rint(result.values[integer]))
    if len(off) and float(off.max()) > INTEGRALITY_TOLERANCE:
        worst = np.nonzero(integer)[0][int(np.argmax(off))]
        fam, k = model.column_family(worst)
        raise SolverError(f"the solver returned {fam.label(k, model.ids)} = {result.values[worst]:.6g}, "
                          f"{float(off.max()):.2g} away from a whole number")
    whole = np.where(integer, np.rint(result.values), result.values)
    for family in FAMILIES:  # decisions that follow the whole ones (routed tokens), then the slack
        family.settle(data, model, whole)
    values = model.settle_continuous(whole)
    objective = float(model.col_cost @ values)
    extra = dict(result.extra)
    if result.objective is not None and abs(result.objective - objective) <= 1e-9 * max(1.0, abs(objective)):
        objective = result.objective  # float noise between two sums of the same plan: the solver's words
    elif result.objective is not None:
        extra["solver_objective_usd"] = result.objective  # what the solver said, before settling
    return replace(result, objective=objective, values=values, extra=extra)


def _fill_plan(plan: Plan, data: ModelData, model: LinearModel, result: SolveResult) -> None:
    """Round the solver's values to whole blocks, then account the plan from them."""
    values = result.values
    blocks = np.rint(model.values(values, BLOCKS.name)).astype(np.int64)  # whole already (_settled)
    chips = np.maximum(blocks, 0) * data.pool_block[data.alloc_pool]
    reserved_fam = model.variables[RESERVED_BLOCKS.name]
    reserved_chips = np.zeros(len(data.pool_ids), dtype=np.int64)
    reserved_chips[reserved_fam.coords[0]] = (
        np.rint(model.values(values, RESERVED_BLOCKS.name)).astype(np.int64) * data.pool_block[reserved_fam.coords[0]]
    )
    started = np.rint(model.values(values, GANG_START.name)) > 0
    # The model's own cost terms at the plan's values: what the objective is made of (a plan's
    # costs are recomputed from whole chips; this says where a difference from the objective is).
    model_costs = model.cost_breakdown(values)
    plan.details["objective_terms_usd"] = {key: round(value, 6) for key, value in model_costs.items()}
    plan.first_stage = first_stage(model, values)
    plan.details["first_stage"] = plan.first_stage
    account_plan(plan, data, chips, reserved_chips, gang_started=started, model_costs=model_costs,
                 bought=_bought(data, model, values), energy_split=_energy_split(data, model, values),
                 routing=_routing(data, model, values))


def _routing(data: ModelData, model: LinearModel, values: np.ndarray) -> Routing:
    """The shares of each routed service's tokens the solver chose."""
    fam = model.variables.get(ROUTED.name)
    if fam is None or fam.size == 0:
        return Routing.none(data)
    return routing_from_values(data, fam.coords[0], fam.coords[1], values[fam.slice])


def _energy_split(data: ModelData, model: LinearModel, values: np.ndarray) -> EnergySplit:
    """The renewable energy and certificates the solver chose (decisions, kept as chosen)."""
    parts = []
    for var in (RENEWABLE, CERTIFICATE):
        fam = model.variables.get(var.name)
        parts.append((fam.coords[0], fam.coords[1], values[fam.slice]) if fam is not None and fam.size
                     else (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)))
    return split_from_values(data, *parts)


def _bought(data: ModelData, model: LinearModel, values: np.ndarray) -> Bought:
    """The plan's instrument decisions from the solver's values: whole blocks and usage levels,
    spend levels and coverage as the solver chose them (never below 0)."""
    i = data.instruments
    start_blocks = np.zeros(len(i.start_offer), dtype=np.int64)
    if len(i.start_offer):
        start_blocks[:] = np.rint(model.values(values, BLOCKS_BOUGHT.name)).astype(np.int64)
    levels = np.zeros(len(i.commitment_ids))
    parts = []
    for level_var, cover_var, whole in ((USAGE_LEVEL, USAGE_COVERED, True), (SPEND_LEVEL, SPEND_COVERED, False)):
        fam = model.variables.get(level_var.name)
        if fam is not None and fam.size:
            level = np.maximum(values[fam.slice], 0.0)
            levels[fam.coords[0]] = np.rint(level) if whole else level
        fam = model.variables.get(cover_var.name)
        if fam is not None and fam.size:
            chips = np.maximum(values[fam.slice], 0.0)
            parts.append((*fam.coords, np.rint(chips) if whole else chips))
    if parts:
        commitment, pool, hour, chips = (np.concatenate(x) for x in zip(*parts))
    else:
        commitment = pool = hour = np.zeros(0, dtype=np.int64)
        chips = np.zeros(0)
    return Bought(start_blocks, levels, commitment.astype(np.int64), pool.astype(np.int64), hour.astype(np.int64), chips)
