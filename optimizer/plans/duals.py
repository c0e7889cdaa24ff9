"""Shadow prices of a solved plan (``chipmix solve --duals``: duals.csv), the PyPSA habit.

A MILP has no duals.  The usual approach (PyPSA's unit commitment, electricity-market pricing):
hold the plan's discrete structure at its values and solve the LP that is left, whose row duals
price the rows at that structure.  Here every integer column is held at the plan's value except
those its variable declares otherwise (``Variable.dual_lp``): allocations (``blocks``) become
continuous chips with no upper bound, so that each limit on them sits in a row (the model is
rebuilt with ``keep_implied_rows``: the same columns, every row), and a usage commitment's
covered chips become continuous.  Purchases, gang starts, run on/off choices and single-site
choices stay as the plan has them.

So a shadow price says what one more unit of a limit is worth *at the margin, with the plan's
purchases and run structure fixed*: a site's power cap in USD per MW for one hour, a pool's
chips in USD per chip-hour, a service's demand in USD per PFLOP/s-hour, a run's work in USD per
EFLOP, a quota in USD per MWh.  Whole blocks are relaxed, so the LP's cost is at or below the
plan's (the difference is reported); a row that does not bind has a shadow price of zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.model.build import build_model
from optimizer.model.data import ModelData
from optimizer.model.families import FAMILIES
from optimizer.model.linear import LinearModel, ModelError
from optimizer.solvers.backends import SolverError
from optimizer.solvers.backends.highs.lp import solve_lp

DUALS_COLUMNS = ["family", "index", "hour", "value", "unit"]
#: Shadow prices smaller than this (in their unit) are solver noise: written as 0.
DUAL_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Duals:
    table: pd.DataFrame  # duals.csv: DUALS_COLUMNS, one row per row of the priced families
    lp_objective_usd: float  # the LP with the plan's structure held (at or below the plan's cost)
    plan_objective_usd: float


def dual_lp_bounds(model: LinearModel, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column bounds of the shadow-price LP: integer columns held at the plan's values unless
    their variable declares ``relax`` or ``relax_unbounded``; continuous columns within their bounds."""
    lower, upper = model.col_lower.copy(), model.col_upper.copy()
    whole = np.rint(values)
    for fam in model.variables.values():
        sl = fam.slice
        if not model.col_integer[sl].any():
            continue
        if fam.dual_lp == "hold":
            lower[sl] = upper[sl] = whole[sl]
        elif fam.dual_lp == "relax_unbounded":
            upper[sl] = np.inf
        elif fam.dual_lp != "relax":
            raise ModelError(f"{fam.name}: dual_lp {fam.dual_lp!r} is not hold, relax or relax_unbounded")
    return lower, upper


def shadow_prices(data: ModelData, model: LinearModel, values: np.ndarray,
                  fixed_reserved_blocks: dict[int, int] | None = None) -> Duals:
    """The shadow prices of the plan ``values`` (columns of ``model``, as solved)."""
    priced = build_model(data, fixed_reserved_blocks=fixed_reserved_blocks, keep_implied_rows=True)
    if priced.n_cols != model.n_cols:
        raise ModelError("the model with implied rows kept has other columns than the solved one")
    # The solved model's bounds (held purchases, a hedge's fixed values), then the LP's own.
    priced.col_lower, priced.col_upper = model.col_lower.copy(), model.col_upper.copy()
    lower, upper = dual_lp_bounds(priced, values)
    outcome = solve_lp(priced, lower, upper, threads=None)
    if outcome is None:
        raise SolverError("the shadow-price LP (the plan's structure held) has no solution: the plan breaks a row")
    worth = outcome.row_duals.copy()
    at_most = np.isinf(priced.row_lower) & np.isfinite(priced.row_upper)
    worth[at_most] = -worth[at_most]  # <= rows: what one more unit of the limit saves
    rows = [price for family in FAMILIES for price in family.shadow_prices(data, priced, worth)]
    table = pd.DataFrame([(p.family, p.index, p.hour, p.value, p.unit) for p in rows], columns=DUALS_COLUMNS)
    table["hour"] = table["hour"].astype("Int64")
    table["value"] = np.where(np.abs(table["value"].to_numpy(dtype=float)) < DUAL_TOLERANCE, 0.0,
                              table["value"].to_numpy(dtype=float))
    return Duals(table, outcome.objective, float(model.col_cost @ values))


def binding_sentences(table: pd.DataFrame, limit: int = 10) -> list[str]:
    """The binding rows in words, most valuable first: runs of consecutive hours of one row
    family and index, with their mean shadow price, e.g. "one more MW at owned-tx in hours 17-21
    is worth 412 USD/h"."""
    found = []
    for (family, index), part in table[table["value"] > 0].groupby(["family", "index"], sort=False):
        hours = part["hour"]
        if hours.isna().all():
            found.append((float(part["value"].iloc[0]), _sentence(family, index, None, float(part["value"].iloc[0]))))
            continue
        part = part.sort_values("hour")
        hour = part["hour"].to_numpy(dtype=int)
        value = part["value"].to_numpy(dtype=float)
        breaks = np.nonzero(np.diff(hour) != 1)[0] + 1
        for h, v in zip(np.split(hour, breaks), np.split(value, breaks)):
            found.append((float(v.mean()) * len(h), _sentence(family, index, (int(h[0]), int(h[-1])), float(v.mean()))))
    found.sort(key=lambda item: -item[0])
    return [text for _, text in found[:limit]]


_WORDS = {
    "site_power": ("one more MW at {index}", "is worth {value} USD/h"),
    "pool_capacity": ("one more chip of {index}", "is worth {value} USD/h"),
    "reserved_capacity": ("one more reserved chip of {index}", "is worth {value} USD/h"),
    "inference_demand": ("one more PFLOP/s of {index}", "costs {value} USD/h"),
    "training_work": ("one more EFLOP of {index}", "costs {value} USD"),
    "renewable_quota": ("one more MWh of quota {index}", "costs {value} USD"),
}


def _sentence(family: str, index: str, hours: tuple[int, int] | None, value: float) -> str:
    subject, verb = _WORDS.get(family, (f"{family}[{{index}}]", "is worth {value}"))
    when = "" if hours is None else (f" in hour {hours[0]}" if hours[0] == hours[1] else f" in hours {hours[0]}-{hours[1]}")
    amount = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.4g}"
    mean = " (mean)" if hours is not None and hours[0] != hours[1] else ""
    return f"{subject.format(index=index)}{when} {verb.format(value=amount)}{mean}"
