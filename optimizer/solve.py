"""From an instance to a :class:`~optimizer.plan.Plan`: data, model, backend, accounting."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from typing import Mapping

from optimizer.backends import SolverError, get_backend
from optimizer.errors import FieldError, InputError
from optimizer.data import EFLOP_PER_TFLOPS_HOUR, ModelData, build_model_data
from optimizer.formulation import build_model
from optimizer.model import LinearModel
from optimizer.options import SolveOptions
from optimizer.plan import Plan
from optimizer.progress import Progress
from optimizer.result import SolveResult
from optimizer.schema import Instance

#: Solver values further than this from an integer mean a backend bug, not rounding noise.
INTEGRALITY_TOLERANCE = 1e-4


#: Demand or work missed by no more than this is served (the checker's slack, stated again here:
#: the checker shares no code with the solve path).
SERVED_SLACK_ABS, SERVED_SLACK_REL = 1e-6, 1e-7


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
    progress: Progress | None = None,
    **overrides,
) -> Plan:
    """Solve ``instance`` and return its plan (or the reason there is none).

    ``overrides`` are :class:`SolveOptions` fields, e.g. ``solve(inst, engine="pulp-cbc")``.
    ``fixed_reservations`` (pool id -> chips) holds reservations already bought: they are paid
    for whether used or not, and the plan may use no more reserved chips than that.
    ``progress`` receives the incumbent and bound while the solver runs (HiGHS, CP-SAT).
    """
    options = options or SolveOptions()
    if overrides:
        options = SolveOptions.model_validate({**options.model_dump(), **overrides})
    if options.method == "decompose" and options.engine != "highs":
        raise InputError("options", [FieldError("method", f"decompose runs on the highs engine, not {options.engine}",
                                                "use --engine highs with --method decompose")])
    started = time.perf_counter()
    data = build_model_data(instance)
    fixed = fixed_reserved_blocks(data, fixed_reservations) if fixed_reservations else None
    model = build_model(data, fixed_reserved_blocks=fixed)
    build_seconds = time.perf_counter() - started
    progress = progress if progress is not None else Progress()
    result = get_backend(options.engine).solve(model, options, progress)
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
    elif result.status.value == "infeasible" and options.diagnose_infeasible:
        from optimizer.diagnose import diagnose_infeasibility

        plan.infeasibility = diagnose_infeasibility(data, options, fixed_reserved_blocks=fixed)
    return plan


def _fill_plan(plan: Plan, data: ModelData, model: LinearModel, result: SolveResult) -> None:
    """Round the solver's values to whole blocks, then account the plan from them."""
    values = result.values
    raw_blocks = model.values(values, "blocks")
    blocks = np.rint(raw_blocks).astype(np.int64)
    worst = float(np.max(np.abs(raw_blocks - blocks), initial=0.0))
    if worst > INTEGRALITY_TOLERANCE:
        raise SolverError(f"{plan.engine} returned an allocation {worst:.2g} away from a whole block")
    chips = np.maximum(blocks, 0) * data.pool_block[data.alloc_pool]
    reserved_fam = model.variables["reserved_blocks"]
    reserved_chips = np.zeros(len(data.pool_ids), dtype=np.int64)
    reserved_chips[reserved_fam.coords[0]] = (
        np.rint(model.values(values, "reserved_blocks")).astype(np.int64) * data.pool_block[reserved_fam.coords[0]]
    )
    raw_starts = model.values(values, "gang_start")
    started = np.rint(raw_starts) > 0
    if len(raw_starts) and float(np.max(np.abs(raw_starts - started))) > INTEGRALITY_TOLERANCE:
        raise SolverError(f"{plan.engine} returned a gang start that is neither 0 nor 1")
    account_plan(plan, data, chips, reserved_chips, gang_started=started)


def account_plan(
    plan: Plan,
    data: ModelData,
    chips: np.ndarray,
    reserved_chips: np.ndarray,
    gang_started: np.ndarray | None = None,
) -> None:
    """Fill the plan's frames, costs and unmet demand from whole chips per eligible allocation.

    ``chips`` is aligned with ``data.alloc_*``; ``reserved_chips`` with ``data.pool_ids``;
    ``gang_started`` (bool) with ``data.gang_*``: a started gang run holds its chips in every
    hour of its span.  Every number is recomputed from these, never taken from a solver's
    objective.
    """
    if gang_started is None:
        gang_started = np.zeros(len(data.gang_workload), dtype=bool)
    option, span_hour = data.gang_spans(np.nonzero(gang_started)[0])
    pool = np.concatenate([data.alloc_pool, data.gang_pool[option]])
    hour = np.concatenate([data.alloc_hour, span_hour])
    workload = np.concatenate([data.alloc_workload, data.gang_workload[option]])
    rate_tflops = np.concatenate([data.alloc_rate_tflops, data.gang_rate_tflops[option]])
    chips = np.concatenate([chips, data.gang_chips[data.gang_workload[option]]]).astype(np.int64)
    used = chips > 0
    plan.allocations = pd.DataFrame(
        {
            "hour": hour[used],
            "workload": np.asarray(data.workload_ids, dtype=object)[workload[used]],
            "pool": np.asarray(data.pool_ids, dtype=object)[pool[used]],
            "chips": chips[used],
            "_w": workload[used],
            "_p": pool[used],
        }
    ).sort_values(["hour", "_w", "_p"], kind="stable").drop(columns=["_w", "_p"]).reset_index(drop=True)
    (reserved_pools,) = np.nonzero(data.pool_reserved)
    plan.reservations = pd.DataFrame(
        {"pool": [data.pool_ids[p] for p in reserved_pools], "chips": reserved_chips[reserved_pools]}
    )

    # Delivered compute, from the rounded plan.
    delivered_pflops = np.zeros((len(data.workload_ids), data.hours))
    np.add.at(delivered_pflops, (workload, hour), chips * rate_tflops / 1000.0)
    unmet = np.where(
        data.workload_is_inference[:, None],
        np.maximum(data.inference_demand_pflops - delivered_pflops, 0.0),
        0.0,
    )
    # A gap within the rows' slack (1e-6 + 1e-7 of the demand, as the checker allows) is served:
    # counting it as unmet would price float noise, and the checker would not recompute it.
    unmet[unmet <= SERVED_SLACK_ABS + SERVED_SLACK_REL * data.inference_demand_pflops] = 0.0
    delivered_eflop = np.zeros(len(data.workload_ids))
    np.add.at(delivered_eflop, workload, chips * rate_tflops * EFLOP_PER_TFLOPS_HOUR)
    short = np.where(data.workload_is_inference, 0.0, np.maximum(data.training_work_eflop - delivered_eflop, 0.0))
    short[short <= SERVED_SLACK_ABS + SERVED_SLACK_REL * data.training_work_eflop] = 0.0

    w_unmet, t_unmet = np.nonzero(unmet)
    plan.unmet = pd.DataFrame(
        {
            "workload": [data.workload_ids[w] for w in w_unmet],
            "hour": t_unmet,
            "unmet_pflops": unmet[w_unmet, t_unmet],
        }
    )
    (training,) = np.nonzero(~data.workload_is_inference)
    plan.shortfall = pd.DataFrame(
        {"workload": [data.workload_ids[w] for w in training], "short_eflop": short[training]}
    )

    usage_price = np.where(data.pool_reserved[pool], 0.0, data.pool_usd_per_chip_hour[pool])
    usage = float(np.sum(chips * usage_price))
    reserved = float(np.sum(reserved_chips * data.pool_usd_per_chip_hour) * data.hours)
    energy = float(
        np.sum(chips * data.pool_chip_power_kw[pool] * data.site_energy_usd_per_kwh[data.pool_site[pool], hour])
    )
    penalty = float(
        np.sum(unmet.sum(axis=1) * np.nan_to_num(data.unmet_usd_per_pflops_hour))
        + np.sum(short * np.nan_to_num(data.short_usd_per_eflop))
    )
    plan.cost_usd = {
        "usage": usage,
        "reserved": reserved,
        "energy": energy,
        "penalty": penalty,
        "total": usage + reserved + energy + penalty,
    }
    plan.unmet_pflops_hours = float(unmet.sum())
    plan.short_eflop = float(short.sum())
