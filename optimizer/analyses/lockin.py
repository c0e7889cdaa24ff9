"""What vendor and cloud lock-in costs: the same demand planned on all pools and on restrictions.

``lockin_table(instance)`` solves the instance as given (``multi``), restricted to the pools of
one chip vendor (``vendor=nvidia`` ...) and of one cloud (``cloud=aws`` ...; owned campuses are
the cloud ``owned``), plus the ``greedy`` baseline, and returns one row per plan.  An instance
with procurement instruments gets each plan twice: view ``instruments`` (it may buy the blocks,
commitments and contracts its pools offer, as a locked-in buyer would) and view ``hourly`` (hourly
prices only: no instrument, no capacity-block pool), so the table shows what instruments are worth
to a multi-vendor and to a single-vendor buyer (``instruments_saving_usd``); the instruments view
adds the ``buy-to-average`` rule of thumb.
``sweep(instance, scenarios, restrictions)`` solves every scenario x restriction pair twice:
re-optimised from scratch, and with the reservations of the restriction's base plan held fixed
(the capacity already bought, hit by the shock); rows run in parallel in a process pool or on a
Dask cluster, and a failing row never stops the others.
"""

from __future__ import annotations

import itertools
import traceback
from typing import Any, Callable, Iterable

import pandas as pd

from optimizer.tasks import default_workers, run_tasks
from optimizer.errors import ChipmixError, FieldError, InputError
from optimizer.solvers.options import SolveOptions
from optimizer.input.schema import Instance
from optimizer.plans.accounting import COST_KEYS, total_demand, unit_economics

MULTI, GREEDY, BUY_TO_AVERAGE = "multi", "greedy", "buy-to-average"
#: Lock-in views: as given (no instruments), with instruments, on hourly prices only.
REOPTIMISED, INSTRUMENTS, HOURLY = "reoptimised", "instruments", "hourly"

ROW_COLUMNS = [
    "scenario", "view", "plan", "pools", "status", "gap", "total_usd",
    *(f"{key}_usd" for key in COST_KEYS if key != "total"), "unmet_pflops_hours", "short_eflop", "delivered_eflop",
    "usd_per_delivered_eflop", "carbon_t", "mtok", "usd_per_mtok", "compute_margin", "margin_vs_multi_pts",
    "premium_usd", "premium_pct", "instruments_saving_usd", "quota_usd", "vs_base_usd", "note", "solve_seconds",
]


def has_instruments(instance: Instance) -> bool:
    return bool(instance.capacity_blocks or instance.commitments or instance.contracts)


def hourly_only(instance: Instance) -> Instance:
    """The instance on hourly prices only: no capacity block (nor its pools), commitment or contract."""
    pools = [pool for pool in instance.pools if pool.pricing != "capacity_block"]
    return instance.model_copy(update={"pools": pools, "capacity_blocks": [], "commitments": [], "contracts": []})


def restrictions_of(instance: Instance) -> list[str]:
    """``multi``, one ``vendor=X`` per chip vendor with pools, one ``cloud=Y`` per cloud with pools."""
    vendor = {chip.id: chip.vendor for chip in instance.chips}
    cloud = {site.id: site.cloud for site in instance.sites}
    vendors = sorted({vendor[pool.chip] for pool in instance.pools})
    clouds = sorted({cloud[pool.site] for pool in instance.pools})
    return [MULTI] + [f"vendor={v}" for v in vendors] + [f"cloud={c}" for c in clouds]


def restrict(instance: Instance, restriction: str) -> Instance:
    """The instance with only the pools the restriction keeps (``multi`` keeps all)."""
    if restriction in (MULTI, GREEDY, BUY_TO_AVERAGE):
        return instance
    key, _, value = restriction.partition("=")
    if key not in ("vendor", "cloud") or not value:
        raise InputError("--restrictions", [FieldError(restriction, "use multi, greedy, vendor=NAME or cloud=NAME")])
    vendor = {chip.id: chip.vendor for chip in instance.chips}
    cloud = {site.id: site.cloud for site in instance.sites}
    kept = [p for p in instance.pools if (vendor[p.chip] if key == "vendor" else cloud[p.site]) == value]
    if not kept:
        raise InputError("--restrictions", [FieldError(restriction, f"keeps no pool of {instance.name}")])
    # Only pools go, and the instruments that cover none of the kept pools (a locked-in buyer has
    # no offer, commitment or contract with the others): every other check of the instance still
    # holds, so no re-validation is needed; demand that the kept pools cannot serve shows up as
    # unmet or infeasible in the solve.
    return instance.model_copy(update={"pools": kept, **instruments_on(instance, kept)})


def instruments_on(instance: Instance, pools: list) -> dict[str, list]:
    """The instance's instruments that cover at least one of ``pools``."""
    from optimizer.input.instruments import covered_pools

    kept_ids = {pool.id for pool in pools}
    narrowed = instance.model_copy(update={"pools": pools})
    return {
        "capacity_blocks": [offer for offer in instance.capacity_blocks if offer.pool in kept_ids],
        "commitments": [c for c in instance.commitments if covered_pools(c, narrowed)],
        "contracts": [c for c in instance.contracts if covered_pools(c, narrowed)],
    }


def plan_row(instance: Instance, plan, restriction: str, pools: int) -> dict[str, Any]:
    """One table row from a plan (solved or greedy), with no comparison yet."""
    row: dict[str, Any] = {"plan": restriction, "pools": pools, "status": plan.status.value, "gap": plan.gap,
                           "solve_seconds": round(plan.solve_seconds, 3), "note": ""}
    if plan.cost_usd:
        row.update(
            total_usd=plan.cost_usd["total"], **{f"{key}_usd": plan.cost_usd[key] for key in COST_KEYS if key != "total"},
            unmet_pflops_hours=plan.unmet_pflops_hours, short_eflop=plan.short_eflop,
            **unit_economics(instance, plan.cost_usd, plan.unmet_pflops_hours, plan.short_eflop),
        )
        energy = getattr(plan, "energy_summary", None) or {}
        if energy.get("carbon_t_by_site"):  # some site states its grid intensity
            row["carbon_t"] = energy["carbon_t"]
        econ = getattr(plan, "economics", None) or {}
        if econ.get("services"):  # some service speaks tokens
            row.update(mtok=econ["mtok"], usd_per_mtok=econ["usd_per_mtok"], compute_margin=econ["compute_margin"])
    check = getattr(plan, "check", None)
    if check is not None and not check.ok:
        # The independent checker rejects the plan: its figures are not a result to compare.
        row["status"] = "checker_violations"
        row["note"] = f"the checker rejects this plan: {check.violations[0]}" + (
            f" (and {len(check.violations) - 1} more)" if len(check.violations) > 1 else "")
        for key in ("total_usd", "premium_usd", "premium_pct", "usd_per_delivered_eflop", "usd_per_mtok", "compute_margin"):
            row.pop(key, None)
        return row
    if plan.status.value == "infeasible":
        report = plan.infeasibility
        if report is not None and not plan.cost_usd:
            row.update(unmet_pflops_hours=report.unserved_pflops_hours, short_eflop=report.unserved_eflop)
            parts = [f"{report.unserved_pflops_hours:,.4g} PFLOP/s-h"] if report.unserved_pflops_hours else []
            parts += [f"{report.unserved_eflop:,.4g} EFLOP"] if report.unserved_eflop else []
            row["note"] = f"cannot serve the hard demand: at least {' and '.join(parts) or 'some'} unserved"
        elif plan.cost_usd:
            row["note"] = "leaves hard demand unserved (greedy)"
    elif not plan.has_plan:
        row["note"] = f"no plan within the limits ({plan.details.get('solver_status', '')})"
    return row


#: A restriction "serves the same demand" when it leaves at most this share of the total demand
#: more unserved than the reference: block rounding leaves small priced remainders either way.
SERVED_TOLERANCE = 1e-3


def compare(rows: list[dict[str, Any]], reference: dict[str, Any], demand: tuple[float, float] | None = None) -> None:
    """Premium of each row against the reference (multi-vendor) row of the same scenario and view.

    A percentage only where the row serves the same demand as the reference (within
    :data:`SERVED_TOLERANCE` of the total inference demand and training work, ``demand``);
    otherwise the note says how much more it leaves unserved (a premium on less work means nothing).
    """
    base_total = reference.get("total_usd")
    total_pflops_hours, total_eflop = demand or (0.0, 0.0)
    for row in rows:
        if row is reference or row.get("total_usd") is None or base_total is None:
            continue
        row["premium_usd"] = row["total_usd"] - base_total
        if row.get("compute_margin") is not None and reference.get("compute_margin") is not None:
            # What single-vendor buying does to the margin on paying users, in percentage points.
            row["margin_vs_multi_pts"] = 100.0 * (row["compute_margin"] - reference["compute_margin"])
        more_unmet = row["unmet_pflops_hours"] - reference["unmet_pflops_hours"]
        more_short = row["short_eflop"] - reference["short_eflop"]
        if more_unmet <= SERVED_TOLERANCE * max(total_pflops_hours, 1.0) and more_short <= SERVED_TOLERANCE * max(total_eflop, 1.0):
            row["premium_pct"] = 100.0 * row["premium_usd"] / base_total if base_total else None
            # A row whose plan is also a plan of the reference's problem (fewer pools and the same
            # obligations, or a rule of thumb) and costs less says the reference stopped within its gap.
            extra = tighter_but_cheaper(row, reference, reference["plan"]) if row.get("_nested") else None
            if extra:
                add_note(row, extra)
        else:
            add_note(row, f"leaves {max(more_unmet, 0):,.4g} PFLOP/s-h more unmet and {max(more_short, 0):,.4g} "
                          "EFLOP more short than multi")


def run_plan(instance: Instance, restriction: str, options: SolveOptions, fixed_reservations=None):
    """Solve (or, for ``greedy`` and ``buy-to-average``, build) the plan of one restriction;
    returns (plan, pools kept)."""
    from optimizer.analyses.greedy import buy_to_average_plan, greedy_plan
    from optimizer.plans.solve import solve

    from optimizer.plans.outcome import check_plan_tables

    if restriction == GREEDY:
        plan, checked_on = greedy_plan(instance), instance
    elif restriction == BUY_TO_AVERAGE:
        plan, checked_on = buy_to_average_plan(instance), instance
    else:
        checked_on = restrict(instance, restriction)
        if fixed_reservations:
            kept = {p.id for p in checked_on.pools}
            fixed_reservations = {k: v for k, v in fixed_reservations.items() if k in kept}
        plan = solve(checked_on, options, fixed_reservations=fixed_reservations or None)
    # Every plan a row reports is checked by the independent checker (a greedy plan that leaves
    # hard demand unserved is infeasible by its own account and is not checked).
    plan.check = check_plan_tables(checked_on, plan, restriction) if plan.has_plan else None
    return plan, len(checked_on.pools)


def lockin_plan(instance: Instance, restrictions: Iterable[str] | None = None,
                greedy: bool = True) -> list[tuple[str, Instance, str]]:
    """The rows a lock-in table solves, in order: (view, the instance of that view, restriction)."""
    names = list(restrictions) if restrictions is not None else restrictions_of(instance)
    if MULTI not in names:
        names.insert(0, MULTI)
    if greedy and GREEDY not in names:
        names.append(GREEDY)
    views = [(INSTRUMENTS, instance), (HOURLY, hourly_only(instance))] if has_instruments(instance) else [
        (REOPTIMISED, instance)]
    rows = []
    for view, planned in views:
        wanted = names + ([BUY_TO_AVERAGE] if view == INSTRUMENTS and greedy else [])
        if view == INSTRUMENTS:  # greedy buys nothing: its row is the hourly view's
            wanted = [name for name in wanted if name != GREEDY]
        rows += [(view, planned, name) for name in wanted]
    return rows


def pool_set(instance: Instance, restriction: str) -> frozenset[str] | None:
    """The pools a restriction plans on (None for greedy and buy-to-average, which are rules, not
    restrictions): two restrictions with the same pools have the same plan."""
    if restriction in (GREEDY, BUY_TO_AVERAGE):
        return None
    return frozenset(pool.id for pool in restrict(instance, restriction).pools)


def keeps_obligations(instance: Instance, restriction: str) -> bool:
    """Whether the restriction's plans are plans of the whole instance too: it drops no purchase
    already made (bought blocks, a commitment's held level, a contract's minimum), which the whole
    instance pays whatever it does.  Rules of thumb (greedy) plan the whole instance."""
    if restriction in (MULTI, GREEDY, BUY_TO_AVERAGE):
        return True
    kept = restrict(instance, restriction)

    def held(inst: Instance) -> tuple:
        return (tuple(o.id for o in inst.capacity_blocks if o.bought), tuple(c.id for c in inst.commitments
                                                                               if c.level is not None),
                tuple(c.id for c in inst.contracts))

    return held(kept) == held(instance)


def same_pool_aliases(instance: Instance, names: list[str]) -> dict[str, str]:
    """Each restriction that keeps the same pools as an earlier one, mapped to that one: it plans
    the same instance, so it is solved once and shown under both names."""
    first_with: dict[frozenset[str], str] = {}
    alias: dict[str, str] = {}
    for name in names:
        pools = pool_set(instance, name)
        if pools is None:
            continue
        if pools in first_with:
            alias[name] = first_with[pools]
        else:
            first_with[pools] = name
    return alias


def alias_row(row: dict[str, Any], name: str) -> dict[str, Any]:
    """``row`` shown under another restriction that keeps the same pools."""
    copy = {**row, "plan": name, "solve_seconds": 0.0}
    add_note(copy, f"the same pools as {row['plan']}: solved once")
    return copy


def add_note(row: dict[str, Any], text: str) -> None:
    row["note"] = f"{row['note']}; {text}" if row.get("note") else text


def lockin_table(
    instance: Instance, options: SolveOptions | None = None, restrictions: Iterable[str] | None = None,
    greedy: bool = True, on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Multi-vendor, every single-vendor and single-cloud restriction, and greedy: one row each.

    Restrictions that keep the same pools (``vendor=google`` and ``cloud=gcp`` when every TPU is
    in GCP) are solved once; the row is shown under each name, with a note."""
    options = options or SolveOptions()
    rows: list[dict[str, Any]] = []
    for view, group in itertools.groupby(lockin_plan(instance, restrictions, greedy), key=lambda item: item[0]):
        group = list(group)
        planned = group[0][1]
        alias = same_pool_aliases(planned, [name for _, _, name in group])
        mine: dict[str, dict[str, Any]] = {}
        for _, _, name in group:
            if name in alias:
                row = alias_row(mine[alias[name]], name)
            else:
                result, count = run_plan(planned, name, options)
                row = {"scenario": "base", "view": view, **plan_row(planned, result, name, count),
                       "_nested": keeps_obligations(planned, name)}
                if planned.renewable_quotas and row.get("total_usd") is not None:
                    # What the quotas cost this restriction: the same plan solved without them.
                    free, _ = run_plan(planned.model_copy(update={"renewable_quotas": []}), name, options)
                    if free.has_plan and (free.check is None or free.check.ok):
                        row["quota_usd"] = row["total_usd"] - free.cost_usd["total"]
            mine[name] = row
            if on_row:
                on_row(row)
        compare(list(mine.values()), mine[group[0][2]], total_demand(instance))
        rows += mine.values()
    hourly_total = {row["plan"]: row.get("total_usd") for row in rows if row["view"] == HOURLY}
    for row in rows:
        # Against the same plan on hourly prices (buy-to-average: against greedy, whose allocations it keeps).
        base = hourly_total.get(GREEDY if row["plan"] == BUY_TO_AVERAGE else row["plan"])
        if row["view"] == INSTRUMENTS and row.get("total_usd") is not None and base is not None:
            row["instruments_saving_usd"] = base - row["total_usd"]
    return pd.DataFrame(rows).reindex(columns=ROW_COLUMNS)


def tighter_but_cheaper(tighter: dict[str, Any], looser: dict[str, Any], what: str) -> str | None:
    """A note when a more constrained plan (``tighter``) costs less than a less constrained one
    (``looser``) of the same demand: the looser problem's optimum is at most the tighter plan's
    cost, so its solve stopped within its gap above that.  Below the looser plan's bound, the
    tighter plan is not one the looser problem could choose (held purchases above what a shocked
    scenario offers), and that is said instead."""
    low, high = tighter.get("total_usd"), looser.get("total_usd")
    if low is None or high is None or not low < high - 1e-6 * max(abs(high), 1.0):
        return None
    gap = looser.get("gap")
    bound = None if gap in (None, "inf") else high * (1 - float(gap))
    if bound is not None and bound > low * (1 + 1e-9) + 1e-6:
        return (f"costs {high - low:,.0f} USD less than {what}, below that plan's bound {bound:,.0f}: this plan "
                f"is not one {what} could choose here")
    return (f"costs {high - low:,.0f} USD less than {what} (gap {format_cell(gap, 'gap')}): within that plan's gap, "
            f"so {what} could cost at most this much; the difference is the solvers', not the constraint's")


# -- sweeps ----------------------------------------------------------------------------------------


def _sweep_task(task: dict[str, Any]) -> dict[str, Any]:
    """Solve one scenario x restriction x view; never raises (a failure is reported in the row)."""
    from optimizer.input.loading import instance_from_data
    from optimizer.analyses.scenarios import Scenario, apply_scenario

    head = {"scenario": task["scenario"]["name"], "view": task["view"], "plan": task["restriction"]}
    try:
        instance = instance_from_data(task["instance"], source="sweep instance")
        if task.get("held_purchases"):
            instance = hold_purchases(instance, task["held_purchases"])
        scenario = Scenario.model_validate(task["scenario"])
        shocked = apply_scenario(instance, scenario)
        options = SolveOptions.model_validate(task["options"])
        plan, pools = run_plan(shocked, task["restriction"], options, task.get("fixed_reservations"))
        row = {**head, **plan_row(shocked, plan, task["restriction"], pools),
               "_nested": keeps_obligations(shocked, task["restriction"])}
        if plan.has_plan:
            row["_reservations"] = dict(zip(plan.reservations.pool, map(int, plan.reservations.chips)))
            row["_purchases"] = plan.purchases.to_dict("records")
        return row
    except InputError as exc:
        return {**head, "status": "infeasible", "note": exc.render().replace("\n", " ")}
    except ChipmixError as exc:
        return {**head, "status": "error", "note": str(exc).replace("\n", " ")}
    except Exception as exc:  # noqa: BLE001 - one broken row must not stop a sweep
        last = traceback.format_exc().strip().splitlines()[-1]
        return {**head, "status": "error", "note": f"{type(exc).__name__}: {exc} ({last})"}


def hold_purchases(instance: Instance, purchases: list[dict[str, Any]]) -> Instance:
    """The instance with a plan's purchases (purchases.csv rows) bought already: its blocks become
    each offer's ``bought``, its commitment levels each commitment's ``level`` (paid whatever the
    plan does next).  Contracts hold as they are."""
    from optimizer.input.schema import BoughtBlocks

    pools = {pool.id: pool for pool in instance.pools}
    blocks: dict[str, list] = {}
    levels: dict[str, float] = {}
    for row in purchases:
        if row["kind"] == "capacity_block":
            blocks.setdefault(row["instrument"], []).append((int(row["start_hour"]), int(row["quantity"])))
        elif row["kind"] in ("spend", "usage"):
            levels[row["instrument"]] = row["quantity"]
    offers = [offer.model_copy(update={"bought": [
        BoughtBlocks(start_hour=start, blocks=chips // pools[offer.pool].block) for start, chips in blocks[offer.id]]})
        if offer.id in blocks else offer for offer in instance.capacity_blocks]
    commitments = [c.model_copy(update={"level": float(levels[c.id])}) if c.id in levels else c
                   for c in instance.commitments]
    return instance.model_copy(update={"capacity_blocks": offers, "commitments": commitments})


def sweep(
    instance: Instance, scenarios: list, restrictions: list[str] | None = None, options: SolveOptions | None = None,
    workers: int | None = None, cluster: str | None = None, on_row: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Every scenario x restriction, re-optimised and with base reservations held; one tidy table."""
    from optimizer.analyses.scenarios import Scenario

    options = options or SolveOptions()
    if options.threads is None:
        options = options.model_copy(update={"threads": 1})  # parallelism comes from the workers
    names = list(restrictions) if restrictions else restrictions_of(instance)
    if MULTI not in names:
        names.insert(0, MULTI)
    for name in names:
        restrict(instance, name)  # fail fast on a bad restriction, before any solve
    payload = instance.model_dump(mode="json", exclude_none=True)
    base = Scenario(name="base", description="the instance as given")
    all_scenarios = [base] + [s for s in scenarios if s.name != "base"]

    def task(scenario, restriction, view, fixed=None, purchases=None):
        return {"instance": payload, "scenario": scenario.model_dump(mode="json"), "restriction": restriction,
                "view": view, "options": options.model_dump(), "fixed_reservations": fixed,
                "held_purchases": purchases}

    workers = workers or default_workers(options.threads)

    def run(tasks: list[dict], on_row) -> list[dict]:
        rows = []
        for index, row, error in run_tasks(_sweep_task, tasks, workers=workers, cluster=cluster):
            if error is not None:
                item = tasks[index]
                row = {"scenario": item["scenario"]["name"], "view": item["view"], "plan": item["restriction"],
                       "status": "error", "note": f"worker failed: {type(error).__name__}: {error}"}
            rows.append(row)
            if on_row:
                on_row(row)
        return rows
    # Restrictions that keep the same pools plan the same instance: solve the first, show it on each.
    alias = same_pool_aliases(instance, names)
    solved_names = [name for name in names if name not in alias]
    # Phase 1: every re-optimised row; the base rows also bring back their plan's reservations.
    rows = run([task(s, r, "reoptimised") for s in all_scenarios for r in solved_names], on_row)
    bought = {r["plan"]: r.get("_reservations") for r in rows if r["scenario"] == "base"}
    purchased = {r["plan"]: r.get("_purchases") for r in rows if r["scenario"] == "base"}
    # Phase 2: each shock hitting the capacity each restriction's base plan already reserved, and
    # every block and commitment level it bought.
    held = [
        task(s, r, "reservations_held", bought[r], purchased.get(r))
        for s in all_scenarios[1:]
        for r in solved_names
        if r != GREEDY and bought.get(r) is not None
    ]
    rows += run(held, on_row)
    for name, first in alias.items():
        for row in [r for r in rows if r["plan"] == first]:
            copy = alias_row(row, name)
            rows.append(copy)
            if on_row:
                on_row(copy)
    for scenario in all_scenarios:
        for view in ("reoptimised", "reservations_held"):
            group = [r for r in rows if r["scenario"] == scenario.name and r["view"] == view]
            reference = next((r for r in group if r["plan"] == MULTI), None)
            if reference is not None:
                compare(group, reference, total_demand(instance))
    # What each scenario adds to the restriction's base plan (a quota scenario: what the quota costs it).
    base_total = {r["plan"]: r.get("total_usd") for r in rows if r["scenario"] == "base" and r["view"] == "reoptimised"}
    for row in rows:
        if row["scenario"] != "base" and row.get("total_usd") is not None and base_total.get(row["plan"]) is not None:
            row["vs_base_usd"] = row["total_usd"] - base_total[row["plan"]]
    # Holding the base plan's purchases only constrains a plan: a held row below its re-optimised
    # row says the re-optimised solve stopped within its gap.
    reoptimised = {(r["scenario"], r["plan"]): r for r in rows if r["view"] == "reoptimised"}
    for row in rows:
        looser = reoptimised.get((row["scenario"], row["plan"])) if row["view"] == "reservations_held" else None
        extra = tighter_but_cheaper(row, looser, "the re-optimised plan") if looser is not None else None
        if extra:
            add_note(row, extra)
    order = {name: i for i, name in enumerate(names)}
    scen_order = {s.name: i for i, s in enumerate(all_scenarios)}
    frame = pd.DataFrame(rows).reindex(columns=ROW_COLUMNS)
    frame["_s"] = frame.scenario.map(scen_order)
    frame["_v"] = (frame.view != "reoptimised").astype(int)
    frame["_p"] = frame.plan.map(order)
    return frame.sort_values(["_s", "_v", "_p"]).drop(columns=["_s", "_v", "_p"]).reset_index(drop=True)


#: The lock-in and sweep tables' columns as the CLI and the report show them: (key, header, kind
#: for :func:`format_cell`).
TABLE_COLUMNS = (
    ("scenario", "scenario", ""), ("view", "view", ""), ("plan", "plan", ""), ("status", "status", ""),
    ("gap", "gap", "gap"), ("total_usd", "total USD", "usd"), ("premium_usd", "premium USD", "usd"),
    ("premium_pct", "premium", "pct"), ("instruments_saving_usd", "instruments save USD", "usd"),
    ("quota_usd", "quota USD", "usd"), ("vs_base_usd", "vs base USD", "usd"),
    ("unmet_pflops_hours", "unmet PFLOP/s-h", ""), ("carbon_t", "tCO2", ""),
    ("short_eflop", "short EFLOP", ""), ("usd_per_delivered_eflop", "USD/EFLOP", ""),
    ("usd_per_mtok", "USD/Mtok", "usd4"), ("compute_margin", "margin", "share"),
    ("margin_vs_multi_pts", "margin vs multi", "pts"), ("note", "note", ""),
)


def shown_columns(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The TABLE_COLUMNS a table of ``frame`` shows: scenario and view only when they vary, the
    instruments' saving, the quota's cost, a scenario's cost over base and tonnes of CO2 only
    when some row has one."""
    return [c for c in TABLE_COLUMNS if c[0] in frame.columns
            and (c[0] not in ("scenario", "view") or frame[c[0]].nunique() > 1)
            and (c[0] not in _WHEN_GIVEN or frame[c[0]].notna().any())]


#: Columns shown only where some row has a value.
_WHEN_GIVEN = ("instruments_saving_usd", "quota_usd", "vs_base_usd", "carbon_t", "usd_per_mtok", "compute_margin",
               "margin_vs_multi_pts")


def serves_less(frame: pd.DataFrame) -> pd.Series:
    """Rows that serve less demand than the multi-vendor plan of their scenario and view: compare()
    gives them a premium in USD but no percentage (a premium on less work means nothing)."""
    if "premium_usd" not in frame.columns or "premium_pct" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame.premium_usd.notna() & frame.premium_pct.isna() & frame.plan.ne(MULTI)


def format_cell(value: Any, kind: str = "") -> str:
    """One table cell as the CLI and docs/benchmarks.md show it (kind: usd, usd4, pct, share, pts, gap or plain)."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if kind == "usd":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{value:+.2f}%"
    if kind == "usd4":
        return f"{value:.4g}"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "pts":
        return f"{value:+.2f} pts"
    if kind == "gap":
        return "inf" if value == float("inf") else f"{value:.3%}"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)
