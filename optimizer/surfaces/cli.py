"""The ``chipmix`` command: a thin layer over the Python API.

Exit codes: 0 a plan (optimal or feasible) that passes the checker; 1 the
checker found violations, or a solver failed; 2 bad input or infeasible hard
demand (nothing written); 3 no plan within the limits (nothing written).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from optimizer.errors import EXIT_INPUT, EXIT_NO_PLAN, EXIT_OK, EXIT_VIOLATIONS, ChipmixError, InputError
from optimizer.solvers.options import ENGINES

app = typer.Typer(
    name="chipmix",
    help="Cheapest feasible plans for AI compute across chips, clouds and power-capped sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help texts are plain text: "[/plan]" in a docstring is a URL path, not rich markup.
    rich_markup_mode=None,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)



def _fail(message: str, code: int) -> None:
    err.print(message, markup=False, highlight=False)
    raise typer.Exit(code)


def _load(path: Path):
    from optimizer.input.loading import load_instance
    from optimizer.input.validate import instance_warnings

    try:
        instance = load_instance(path)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    for warning in instance_warnings(instance):
        err.print(f"warning: {path}: {warning.render()}", markup=False, highlight=False)
    return instance


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _summary_table(plan) -> Table:
    table = Table(title=f"chipmix plan: {plan.instance}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    gap = "-" if plan.gap is None else f"{plan.gap:.4%}"
    chosen = plan.details.get("solver", {}).get("method", {})
    method = chosen.get("chosen", plan.details.get("options", {}).get("method", "direct"))
    engine = plan.engine if method == "direct" else f"{plan.engine}, {method}"
    table.add_row("status", f"{plan.status.value} ({engine}, gap {gap})")
    if chosen.get("asked") == "auto":
        table.add_row("method", f"{method} (auto: {chosen.get('reason', '')})")
    table.add_row("objective (USD)", _money(plan.objective_usd))
    table.add_row("best bound (USD)", _money(plan.bound_usd))
    scaling = plan.details.get("solver", {}).get("scaling_bound_usd")
    if scaling is not None:
        table.add_row("CP-SAT scaling bound (USD)", f"{scaling:,.6g}")
    from optimizer.plans.accounting import COST_KEYS

    for key in COST_KEYS:
        table.add_row(f"cost {key} (USD)", _money(plan.cost_usd.get(key)))
    table.add_row("unmet inference (PFLOP/s-hours)", f"{plan.unmet_pflops_hours:,.4g}")
    table.add_row("training shortfall (EFLOP)", f"{plan.short_eflop:,.4g}")
    energy = plan.energy_summary
    if energy:
        table.add_row("facility energy (MWh)", f"{energy['facility_mwh']:,.6g}")
        if energy["renewable_mwh"] or energy["certificates_mwh"] or energy["quotas"]:
            table.add_row("renewable / certificates (MWh)",
                          f"{energy['renewable_mwh']:,.6g} / {energy['certificates_mwh']:,.6g}")
        for quota, entry in energy["quotas"].items():
            achieved = "-" if entry["achieved_share"] is None else f"{entry['achieved_share']:.2%}"
            table.add_row(f"quota {quota} (renewable share)", f"{achieved} (at least {entry['share']:.0%})")
        unstated = energy["sites_without_carbon_intensity"]
        carbon = f"{energy['carbon_t']:,.6g}"
        if energy["carbon_t_by_site"] and unstated:
            carbon += f" ({len(unstated)} site(s) state no intensity)"
        table.add_row("carbon (tCO2)", carbon if energy["carbon_t_by_site"] else "- (no site states an intensity)")
        if len(energy["carbon_t_by_site"]) > 1:
            table.add_row("carbon by site (tCO2)", ", ".join(f"{site} {t:,.4g}" for site, t in energy["carbon_t_by_site"].items()))
    econ = plan.economics
    if econ:
        for category, eflop in econ["eflop_by_category"].items():
            if eflop:
                table.add_row(f"compute {category} (EFLOP)", f"{eflop:,.6g}")
        if econ.get("budget_usd") is not None:
            from optimizer.plans.accounting import spend_usd

            table.add_row("envelope: spend / budget (USD)", f"{spend_usd(plan.cost_usd):,.2f} / {econ['budget_usd']:,.2f}")
        if econ["services"]:
            table.add_row("tokens served (M)", f"{econ['mtok']:,.6g}")
            table.add_row("USD per M tokens", _ratio_text(econ["usd_per_mtok"], ".4g"))
            table.add_row("tokens per kWh / per USD", f"{_ratio_text(econ['tokens_per_kwh'], ',.0f')} / "
                          f"{_ratio_text(econ['tokens_per_usd'], ',.0f')}")
        if econ["revenue_usd"]:
            table.add_row("revenue (USD)", _money(econ["revenue_usd"]))
            table.add_row("compute margin (paying users)", _ratio_text(econ["compute_margin"], ".1%"))
            table.add_row("P&L ex-research / full (USD)", f"{econ['pnl_ex_research_usd']:,.2f} / {econ['pnl_full_usd']:,.2f}")
    table.add_row("solve time (s)", f"{plan.solve_seconds:.2f}")
    first, one_pct = plan.time_to_first_plan_s, plan.time_to_1pct_s
    table.add_row("first plan / within 1% (s)", f"{'-' if first is None else f'{first:.2f}'} / "
                  f"{'-' if one_pct is None else f'{one_pct:.2f}'}")
    return table


def _ratio_text(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _economics_tables(plan) -> list[Table]:
    """Unit economics per service, and each routed service's routing (mean share per variant)."""
    econ = plan.economics
    tables = []
    if econ and econ["services"]:
        table = Table(title="services: tokens and unit economics", title_justify="left")
        for column in ("service", "M tokens", "cost USD", "USD/M tok", "revenue USD", "tokens/kWh", "tokens/USD"):
            table.add_column(column, justify="left" if column == "service" else "right")
        for service, row in econ["services"].items():
            table.add_row(service, f"{row['mtok']:,.6g}", _money(row["cost_usd"]), _ratio_text(row["usd_per_mtok"], ".4g"),
                          _money(row["revenue_usd"]), _ratio_text(row["tokens_per_kwh"], ",.0f"),
                          _ratio_text(row["tokens_per_usd"], ",.0f"))
        tables.append(table)
    if len(plan.routing):
        table = Table(title="routing: share of tokens per variant", title_justify="left")
        for column in ("service", "variant", "mean share", "min", "max", "hours"):
            table.add_column(column, justify="left" if column in ("service", "variant") else "right")
        for (service, variant), rows in plan.routing.groupby(["workload", "variant"], sort=False):
            table.add_row(service, variant, f"{rows.share.mean():.1%}", f"{rows.share.min():.1%}",
                          f"{rows.share.max():.1%}", str(len(rows)))
        tables.append(table)
    return tables


def _purchase_tables(instance, plan) -> list[Table]:
    """What the plan buys, and how much of each commitment it uses (none for a plan that buys
    nothing and has no instrument to buy)."""
    from optimizer.plans.instruments import commitment_utilisation

    tables = []
    if len(plan.purchases):
        buy = Table(title="what to buy", title_justify="left")
        for column in ("instrument", "kind", "start hour", "quantity", "unit", "USD"):
            buy.add_column(column, justify="right" if column in ("start hour", "quantity", "USD") else "left")
        for row in plan.purchases.itertuples():
            quantity = f"{row.quantity:,.4f}".rstrip("0").rstrip(".") if isinstance(row.quantity, float) else f"{row.quantity:,}"
            buy.add_row(row.instrument, row.kind, str(row.start_hour), quantity, row.unit, _money(row.usd))
        tables.append(buy)
    use = commitment_utilisation(instance, plan.purchases, plan.coverage)
    if len(use):
        table = Table(title="commitment use per hour", title_justify="left")
        for column in ("commitment", "level", "mean used", "hours fully used", "hours with unused", "utilisation"):
            table.add_column(column, justify="left" if column == "commitment" else "right")
        for commitment, rows in use.groupby("commitment", sort=False):
            level = float(rows.level.iloc[0])
            if level <= 0:  # nothing committed: nothing to use
                table.add_row(commitment, "0", "-", "-", "-", "-")
                continue
            full = int((rows.unused <= 1e-9 * level).sum())
            share = f"{rows.used.sum() / (level * len(rows)):.1%}"
            table.add_row(commitment, f"{level:,.4g}", f"{rows.used.mean():,.4g}", str(full), str(len(rows) - full), share)
        tables.append(table)
    return tables


@app.command()
def solve(
    instance: Annotated[Path, typer.Argument(help="Instance file (.yaml, .yml or .json).")],
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Plan folder (default: plans/<instance name>).")
    ] = None,
    engine: Annotated[str, typer.Option(help=f"Solver engine: {' | '.join(ENGINES)}.")] = "highs",
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Solver time limit, s.")] = None,
    gap: Annotated[float, typer.Option("--gap", help="Relative MIP gap to stop at (0.001 = 0.1%).")] = 1e-3,
    threads: Annotated[
        Optional[int],
        typer.Option("--threads", "--workers", help="Solver threads (CP-SAT: workers; default 8, interleaved)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the solver log.")] = False,
    method: Annotated[
        str,
        typer.Option(help="auto (default: chosen from the model, summary.json says why) | direct (the whole MILP) | "
                     "decompose (HiGHS: LP, hour-by-hour plan, Lagrangian bound, warm-started MILP; "
                     "docs/performance.md)."),
    ] = "auto",
    cluster: Annotated[
        Optional[str], typer.Option(help="Dask scheduler address: the decomposition's hour step runs on its workers "
                                    "(needs chipmix[dask]; default: a process pool here).")
    ] = None,
    show_progress: Annotated[
        bool, typer.Option("--progress", help="Show the incumbent, bound and gap while the solver runs (HiGHS, CP-SAT).")
    ] = False,
    check: Annotated[bool, typer.Option(help="Run the independent checker on the written plan.")] = True,
    write_model: Annotated[
        Optional[Path], typer.Option("--write-model", help="Also write the model as .lp or .mps with its names.")
    ] = None,
    duals: Annotated[
        bool, typer.Option("--duals", help="Also write duals.csv: shadow prices of power caps, pools, demand and "
                           "quotas (the LP with the plan's purchases and run structure held; docs/formulation.md).")
    ] = False,
) -> None:
    """Solve an instance and write allocations.csv, reservations.csv and summary.json."""
    from optimizer.plans.outcome import run_solve

    options = _solve_options(engine, time_limit, gap, threads, seed, verbose, method, duals, cluster)
    loaded = _load(instance)
    if write_model is not None:
        _write_model(loaded, write_model)
    target = out_dir if out_dir is not None else Path("plans") / loaded.name
    try:
        if show_progress:
            outcome = _solve_with_progress(loaded, options, source=str(instance), label=str(target), check=check)
        else:
            outcome = run_solve(loaded, options, source=str(instance), label=str(target), check=check)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    plan = outcome.plan
    if plan is None or not plan.has_plan:
        _fail(outcome.message, outcome.exit_code)
    plan.write(target)
    out.print(_summary_table(plan))
    for table in _purchase_tables(loaded, plan) + _economics_tables(plan):
        out.print(table)
    if plan.duals is not None:
        from optimizer.plans.duals import binding_sentences

        sentences = binding_sentences(plan.duals)
        out.print("what binds (shadow prices, duals.csv):" if sentences else "no row binds (every shadow price is 0)",
                  markup=False, highlight=False)
        for sentence in sentences:
            out.print(f"  {sentence}", markup=False, highlight=False)
    if outcome.warning:
        err.print(outcome.warning, markup=False)
    out.print(f"plan written to {target}", markup=False, highlight=False)
    if check:
        out.print(f"checker: {outcome.message}", markup=False, highlight=False)
    if outcome.exit_code != EXIT_OK:
        raise typer.Exit(outcome.exit_code)


def _progress_line(seconds: float, objective: float | None, bound: float | None) -> str:
    from optimizer.solvers.result import relative_gap

    gap = relative_gap(objective, bound)
    return (f"{seconds:8.1f} s   incumbent {_money(objective):>18}   bound {_money(bound):>18}   "
            f"gap {'-' if gap is None else f'{gap:.4%}':>10}")


def _solve_with_progress(instance, options, **outcome_options):
    """Solve with a live line (stderr) of incumbent, bound and gap; each change also printed."""
    from rich.live import Live

    from optimizer.plans.outcome import run_solve
    from optimizer.solvers.progress import Progress

    with Live("solving...", console=err, refresh_per_second=4, transient=True) as live:
        def show(seconds, objective, bound):
            live.console.print(_progress_line(seconds, objective, bound), markup=False, highlight=False)
            live.update(_progress_line(seconds, objective, bound))

        return run_solve(instance, options, progress=Progress(on_record=show), **outcome_options)


def _write_model(instance, path: Path) -> None:
    from optimizer.solvers.backends.highs import write_model_file
    from optimizer.model.data import build_model_data
    from optimizer.model.build import build_model

    if path.suffix.lower() not in (".lp", ".mps"):
        _fail(f"--write-model: {path}: use a .lp or .mps file name", EXIT_INPUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_model_file(build_model(build_model_data(instance)), path)
    out.print(f"model written to {path}", markup=False, highlight=False)


@app.command()
def check(
    instance: Annotated[Path, typer.Argument(help="Instance file the plan was made for.")],
    plan_dir: Annotated[Path, typer.Argument(help="Folder with allocations.csv, reservations.csv, summary.json.")],
) -> None:
    """Recompute capacity, power, demand and every cost from the plan files; exit 1 on any violation."""
    from optimizer.plans.checker import check_plan, made_for_another_instance

    loaded = _load(instance)
    if not plan_dir.is_dir():
        _fail(f"{plan_dir}: not a folder", EXIT_INPUT)
    other = made_for_another_instance(loaded, plan_dir)
    if other:
        _fail(f"{plan_dir}: {other}", EXIT_INPUT)
    report = check_plan(loaded, plan_dir)
    if report.ok:
        out.print(report.render(), markup=False, highlight=False)
    else:
        _fail(report.render(), EXIT_VIOLATIONS)


@app.command()
def diff(
    plan_a: Annotated[Path, typer.Argument(help="The first plan folder (A).")],
    plan_b: Annotated[Path, typer.Argument(help="The second plan folder (B); every change is B - A.")],
    instance: Annotated[Path, typer.Option("--instance", help="Instance file PLAN_A was made for (and PLAN_B, "
                                                              "unless --instance-b).")],
    instance_b: Annotated[Optional[Path], typer.Option("--instance-b", help="Instance file PLAN_B was made for, "
                                                                            "if another (a scenario, a restriction).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the comparison as JSON.")] = None,
) -> None:
    """Compare two plans: cost by term, chip-hours moved by vendor, cloud and pricing, the hours that
    changed most, and what each buys."""
    from optimizer.analyses.diff import diff_plans, within_gaps
    from optimizer.analyses.lockin import format_cell

    loaded_a = _load(instance)
    loaded_b = _load(instance_b) if instance_b is not None else None
    for folder in (plan_a, plan_b):
        if not folder.is_dir():
            _fail(f"{folder}: not a folder", EXIT_INPUT)
    try:
        result = diff_plans(loaded_a, plan_a, plan_b, loaded_b)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    head = result.headline
    out.print(f"A: {plan_a} ({head['a']['status']}, gap {format_cell(head['a']['gap'], 'gap')}, "
              f"{format_cell(head['a']['total_usd'], 'usd')} USD)", markup=False, highlight=False)
    out.print(f"B: {plan_b} ({head['b']['status']}, gap {format_cell(head['b']['gap'], 'gap')}, "
              f"{format_cell(head['b']['total_usd'], 'usd')} USD)", markup=False, highlight=False)
    change = head["change_usd"]
    note = " (within the two plans' gaps: the solvers may account for it)" if within_gaps(result) and change else ""
    out.print(f"B - A: {change:+,.2f} USD, {head['chips_moved']:,} chip-hours moved{note}", markup=False, highlight=False)

    def show(title: str, frame, kinds: dict[str, str]) -> None:
        table = Table(title=title, title_justify="left")
        for column in frame.columns:
            table.add_column(column, justify="right" if column in kinds else "left")
        for record in frame.to_dict("records"):
            table.add_row(*(format_cell(record[c], kinds.get(c, "")) if c in kinds else str(record[c])
                            for c in frame.columns))
        out.print(table)

    show("cost by term (USD)", result.cost, {"a_usd": "usd", "b_usd": "usd", "change_usd": "usd"})
    show("chip-hours by vendor, cloud and pricing", result.chip_hours, {"a": "usd", "b": "usd", "change": "usd"})
    show("hours that changed most (chips moved between workloads and pools)", result.hours,
         {"a_chips": "usd", "b_chips": "usd", "moved_chips": "usd"})
    if len(result.purchases):
        show("what each buys (reserved chips, blocks' chips, commitment levels, contract shortfalls)",
             result.purchases, {"a": "", "b": "", "change": ""})
    if json_out is not None:
        from optimizer.files import write_text_atomic

        write_text_atomic(json_out, json.dumps(result.to_json(), indent=2))
        out.print(f"wrote {json_out}", markup=False, highlight=False)


@app.command()
def validate(instance: Annotated[Path, typer.Argument(help="Instance file.")]) -> None:
    """Validate an instance file without solving it."""
    loaded = _load(instance)
    out.print(
        f"{instance}: valid ({loaded.hours} hours, {len(loaded.pools)} pools, {len(loaded.workloads)} workloads)",
        markup=False,
        highlight=False,
    )


@app.command()
def schema(
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file instead.")] = None,
    scenarios: Annotated[bool, typer.Option(
        "--scenarios", help="The scenario file's schema (chipmix sweep and chipmix hedge) instead.")] = False,
) -> None:
    """Print the JSON Schema of the instance file (or, with --scenarios, of a scenario file)."""
    if scenarios:
        from optimizer.analyses.scenarios import ScenarioFile as model
    else:
        from optimizer.input.schema import Instance as model

    text = json.dumps(model.model_json_schema(), indent=2)
    if out_file is None:
        sys.stdout.write(text + "\n")
    else:
        out_file.write_text(text + "\n")


def _solve_options(engine: str, time_limit, gap: float, threads, seed: int = 0, verbose: bool = False,
                   method: str = "auto", duals: bool = False, cluster: str | None = None):
    """SolveOptions from the command line's flags; exit 2 naming the flag otherwise."""
    from optimizer.solvers.options import solve_options

    flags = {"engine": "--engine", "method": "--method", "time_limit_s": "--time-limit", "mip_rel_gap": "--gap",
             "threads": "--threads", "random_seed": "--seed", "cluster": "--cluster"}
    try:
        return solve_options(engine=engine, method=method, time_limit_s=time_limit, mip_rel_gap=gap, threads=threads,
                             random_seed=seed, verbose=verbose, duals=duals, cluster=cluster)
    except InputError as exc:
        _fail("\n".join(f"{flags.get(e.path, e.path)} ({e.path}): {e.reason}" for e in exc.errors), EXIT_INPUT)


# Wide tables stay readable when piped (rich assumes 80 columns off a terminal).
_TABLE_WIDTH = None if sys.stdout.isatty() else 220


class _RowProgress:
    """Progress of a table of solves: on a terminal a bar (rows done, the last row, elapsed, an
    estimate of what is left); otherwise one plain line per row on stderr, for logs and CI."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done = total, label, 0
        self.started = time.monotonic()
        self.bar = None
        if err.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                                console=err, transient=True)

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task(f"{self.label}: starting", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def row(self, row: dict) -> None:
        self.done += 1
        name = " / ".join(str(row[k]) for k in ("scenario", "view", "plan") if row.get(k) not in (None, "base"))
        what = f"{name} ({row.get('status')})"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=f"{self.label}: {what}")
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        err.print(f"{self.label} [{self.done}/{self.total}] {what}, elapsed {_clock(elapsed)}, "
                  f"about {_clock(left)} left", markup=False, highlight=False)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def _rows_table(frame, title: str) -> Table:
    from optimizer.analyses.lockin import format_cell, shown_columns

    shown = shown_columns(frame)
    table = Table(title=title, title_justify="left")
    for _, header, kind in shown:
        table.add_column(header, justify="left" if kind == "" and header in ("plan", "status", "note", "scenario", "view") else "right")
    for record in frame.to_dict("records"):
        table.add_row(*(format_cell(record.get(key), kind) for key, _, kind in shown))
    return table


def _write_rows(frame, out_dir: Path, stem: str) -> None:
    from optimizer.files import write_text_atomic

    write_text_atomic(out_dir / f"{stem}.csv", frame.to_csv(index=False, float_format="%.10g"))
    write_text_atomic(out_dir / f"{stem}.json", frame.to_json(orient="records", indent=2) + "\n")
    out.print(f"wrote {out_dir / (stem + '.csv')} and {stem}.json", markup=False, highlight=False)


@app.command()
def lockin(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write lockin.csv and lockin.json here.")] = None,
    restrictions: Annotated[
        Optional[str], typer.Option(help="Comma-separated: multi, vendor=NAME, cloud=NAME (default: all present).")
    ] = None,
    greedy: Annotated[bool, typer.Option(help="Add the greedy lowest-$/FLOP baseline.")] = True,
    engine: Annotated[str, typer.Option(help=f"Solver engine: {' | '.join(ENGINES)}.")] = "highs",
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Time limit per solve, s (a row that hits it says so, with its gap).")
    ] = 60.0,
    gap: Annotated[float, typer.Option("--gap", help="Relative MIP gap per solve.")] = 1e-3,
    threads: Annotated[
        Optional[int],
        typer.Option("--threads", "--workers", help="Solver threads (CP-SAT: workers; default 8, interleaved)."),
    ] = None,
) -> None:
    """Price lock-in: the multi-vendor plan beside each single-vendor and single-cloud plan, and greedy."""
    from optimizer.analyses.lockin import lockin_plan, lockin_table

    options = _solve_options(engine, time_limit, gap, threads)
    loaded = _load(instance)
    names = [r.strip() for r in restrictions.split(",")] if restrictions else None
    try:
        total = len(lockin_plan(loaded, names, greedy))
        with _RowProgress(total, "lock-in") as progress:
            frame = lockin_table(loaded, options, names, greedy=greedy, on_row=progress.row)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    Console(width=_TABLE_WIDTH).print(_rows_table(frame, f"lock-in: {loaded.name}"))
    if out_dir is not None:
        _write_rows(frame, out_dir, "lockin")


@app.command()
def sweep(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    scenarios: Annotated[Path, typer.Argument(help="Scenario file (YAML or JSON).")],
    restrictions: Annotated[
        Optional[str], typer.Option(help="Comma-separated: multi, greedy, vendor=NAME, cloud=NAME (default: all).")
    ] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write sweep.csv and sweep.json here.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: cores / threads).")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Dask scheduler address (needs chipmix[dask]).")] = None,
    engine: Annotated[str, typer.Option(help=f"Solver engine: {' | '.join(ENGINES)}.")] = "highs",
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Time limit per solve, s (a row that hits it says so, with its gap).")
    ] = 60.0,
    gap: Annotated[float, typer.Option("--gap", help="Relative MIP gap per solve.")] = 1e-3,
    threads: Annotated[Optional[int], typer.Option(help="Solver threads per solve (default 1).")] = None,
) -> None:
    """Solve every scenario x restriction, re-optimised and with the base plan's reservations held."""
    from optimizer.analyses.lockin import restrictions_of, sweep as run_sweep
    from optimizer.analyses.scenarios import load_scenarios

    options = _solve_options(engine, time_limit, gap, threads)
    loaded = _load(instance)
    try:
        parsed = load_scenarios(scenarios, loaded)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    names = [r.strip() for r in restrictions.split(",")] if restrictions else restrictions_of(loaded)
    expected = (len(parsed) + 1) * len(names) + len(parsed) * len([n for n in names if n != "greedy"])
    try:
        with _RowProgress(expected, "sweep") as progress:
            frame = run_sweep(loaded, parsed, names, options, workers=workers, cluster=cluster, on_row=progress.row)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    except ChipmixError as exc:
        _fail(str(exc), EXIT_INPUT)
    Console(width=_TABLE_WIDTH).print(_rows_table(frame, f"sweep: {loaded.name} x {scenarios.name}"))
    if out_dir is not None:
        _write_rows(frame, out_dir, "sweep")


@app.command()
def hedge(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    scenarios: Annotated[Path, typer.Argument(help="Scenario file with a probability per scenario (YAML or JSON).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Write purchases.csv, hedge.json and scenarios/ here.")],
    method: Annotated[str, typer.Option(help="auto | extensive (one model) | l-shaped (scenario subproblems).")] = "auto",
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: cores / threads).")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Dask scheduler address (needs chipmix[dask]).")] = None,
    engine: Annotated[str, typer.Option(help=f"Engine for the scenario plans: {' | '.join(ENGINES)}.")] = "highs",
    time_limit: Annotated[Optional[float], typer.Option(
        "--time-limit", help="Time limit per scenario solve, s (and the first stage's, unless --first-stage-limit).")] = 300.0,
    first_stage_limit: Annotated[Optional[float], typer.Option(
        "--first-stage-limit", help="Time limit of the first stage as a whole, s.")] = None,
    gap: Annotated[float, typer.Option("--gap", help="Relative MIP gap per solve.")] = 1e-3,
    threads: Annotated[Optional[int], typer.Option(help="Solver threads per solve (default 1 with workers).")] = None,
    references: Annotated[bool, typer.Option(
        help="Also solve the base case and every scenario alone (VSS, EVPI, regret).")] = True,
) -> None:
    """Choose purchases once for every scenario (two-stage), play each scenario's hours with them."""
    from optimizer.analyses.hedge import hedge as run_hedge
    from optimizer.analyses.scenarios import load_hedge_scenarios

    options = _solve_options(engine, time_limit, gap, threads)
    loaded = _load(instance)
    try:
        parsed, risk = load_hedge_scenarios(scenarios, loaded)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    try:
        result = run_hedge(loaded, parsed, risk, options, method=method, workers=workers, cluster=cluster,
                           references=references, first_stage_time_limit_s=first_stage_limit, on_event=lambda text: err.print(text, markup=False, highlight=False))
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    except ChipmixError as exc:
        _fail(str(exc), EXIT_INPUT)
    console = Console(width=_TABLE_WIDTH)
    for table in _hedge_tables(result):
        console.print(table)
    failed = [o for o in result.hedged if not o.ok]
    if failed:  # a failed outcome's exit code is never 0
        _fail("\n".join(o.message for o in failed), failed[0].exit_code)
    result.write(out_dir)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, highlight=False)
    out.print(f"hedge written to {out_dir}; every scenario's plan passed the checker", markup=False, highlight=False)


def _hedge_tables(result) -> list[Table]:
    from optimizer.analyses.lockin import format_cell

    head = Table(title=f"chipmix hedge: {result.instance} over {len(result.scenarios)} scenarios", show_header=False,
                 title_justify="left")
    head.add_column("what", style="bold")
    head.add_column("value", justify="right")
    risk = result.risk
    objective = "expected cost" if risk.cvar_weight == 0 else (
        f"{1 - risk.cvar_weight:g} x expected + {risk.cvar_weight:g} x CVaR {risk.cvar_alpha:g}")
    head.add_row("objective", objective)
    head.add_row("first stage", f"{result.method} ({result.method_reason})")
    head.add_row("purchases from", result.chosen_from)
    head.add_row("hedge (USD)", _money(result.objective_usd))
    head.add_row("best bound (USD)", _money(result.bound_usd))
    head.add_row("gap", format_cell(result.gap, "gap"))
    for label, interval in (("VSS (USD)", result.vss_usd), ("EVPI (USD)", result.evpi_usd)):
        if interval is not None:
            head.add_row(label, f"{interval.value:,.2f} (between {interval.low:,.2f} and {interval.high:,.2f})")
    head.add_row("seconds", f"{result.seconds:.1f}")
    buy = Table(title="what to buy (USD: probability-weighted fee)", title_justify="left")
    frame = result.purchase_table()
    for column in frame.columns:
        buy.add_column(column, justify="left" if column in ("instrument", "kind", "unit") else "right")
    for row in frame.itertuples(index=False):
        buy.add_row(*(format_cell(v, "usd") if c == "usd" else format_cell(v) for c, v in zip(frame.columns, row)))
    rows = Table(title="per scenario (USD)", title_justify="left")
    columns = [("scenario", "scenario", ""), ("probability", "p", ""), ("hedged_usd", "hedged", "usd"),
               ("hedged_status", "status", ""), ("base_held_usd", "base-case purchases", "usd"),
               ("foresight_usd", "foresight", "usd"), ("base_regret_usd", "base regret", "usd"),
               ("hedged_regret_usd", "hedge regret", "usd")]
    records = result.scenario_rows()
    shown = [c for c in columns if any(c[0] in r for r in records)]
    for key, header, kind in shown:
        rows.add_column(header, justify="left" if key in ("scenario", "hedged_status") else "right")
    for record in records:
        rows.add_row(*(format_cell(record.get(key), kind) for key, _, kind in shown))
    return [head, buy, rows]


@app.command("build-instance")
def build_instance(
    specs: Annotated[list[Path], typer.Argument(help="Scenario spec files (instances/specs/*.yaml).")],
    out_file: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output file (one spec only; default: <spec folder>/../<name>.yaml)."),
    ] = None,
) -> None:
    """Build instance files from scenario specs and the public data in instances/data."""
    from optimizer.library.build import load_spec, render
    from optimizer.files import write_text_atomic

    if out_file is not None and len(specs) != 1:
        _fail("--out: give exactly one spec with --out", EXIT_INPUT)
    rendered = []
    for spec_path in specs:  # build every file first: nothing is written if any spec is bad
        try:
            target = out_file or spec_path.parent.parent / f"{load_spec(spec_path).name}.yaml"
            rendered.append((target, render(spec_path)))
        except InputError as exc:
            _fail(exc.render(), EXIT_INPUT)
    for target, text in rendered:
        write_text_atomic(target, text)
        out.print(f"wrote {target}", markup=False, highlight=False)


@app.command()
def generate(
    pools: Annotated[int, typer.Option(min=1, help="Number of pools.")],
    workloads: Annotated[int, typer.Option(min=1, help="Number of workloads (60% inference, 40% training).")],
    hours: Annotated[int, typer.Option(min=1, help="Horizon, hours.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same arguments give the same file.")] = 0,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Generate a synthetic instance of any size (always has a plan: all demand is priced)."""
    from optimizer.library.generate import render_generated
    from optimizer.files import write_text_atomic

    text = render_generated(pools, workloads, hours, seed)
    if out_file is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(out_file, text)
        out.print(f"wrote {out_file}", markup=False, highlight=False)


@app.command()
def report(
    plan_dir: Annotated[Path, typer.Argument(help="Plan folder written by chipmix solve (or a chipmix hedge folder).")],
    instance: Annotated[Optional[Path], typer.Option(
        "--instance", "-i", help="The instance the plan solves (a hedge folder holds its own).")] = None,
    out_file: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="HTML file (default: PLAN_DIR/report.html); PNGs go beside it.")
    ] = None,
    lockin_file: Annotated[
        Optional[Path], typer.Option("--lockin", help="lockin.csv (or its folder) from chipmix lockin --out, to compare vendors.")
    ] = None,
    xlsx: Annotated[Optional[Path], typer.Option("--xlsx", help="Also write the tables as an Excel workbook with charts.")] = None,
) -> None:
    """Write a self-contained HTML report (and PNG charts, and optionally an xlsx) of a plan."""
    try:
        from optimizer.surfaces.report import build_tables, write_report, write_xlsx
        import matplotlib  # noqa: F401
        import openpyxl  # noqa: F401
    except ImportError as exc:
        _fail(f"chipmix report needs the report extra: pip install 'chipmix[report]' ({exc})", EXIT_INPUT)
    if (plan_dir / "hedge.json").exists():
        from optimizer.surfaces.hedge_report import write_hedge_report

        target = out_file if out_file is not None else plan_dir / "report.html"
        try:
            charts = write_hedge_report(plan_dir, target)
        except InputError as exc:
            _fail(exc.render(), EXIT_INPUT)
        out.print(f"wrote {target} (the hedge page; {len(charts)} charts)", markup=False, highlight=False)
        return
    if instance is None:
        _fail("--instance: give the instance the plan solves", EXIT_INPUT)
    loaded = _load(instance)
    try:
        tables = build_tables(loaded, plan_dir, lockin_file)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    target = out_file if out_file is not None else plan_dir / "report.html"
    charts = write_report(tables, target)
    out.print(f"wrote {target} ({len(charts)} charts in {target.parent / (target.stem + '_charts')})", markup=False, highlight=False)
    if xlsx is not None:
        sheets = write_xlsx(tables, xlsx)
        out.print(f"wrote {xlsx} (sheets: {', '.join(sheets)})", markup=False, highlight=False)
    if tables.violations:
        err.print(f"the checker found {len(tables.violations)} violation(s); the report lists them", markup=False)
        raise typer.Exit(EXIT_VIOLATIONS)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    db: Annotated[Path, typer.Option(help="SQLite file that keeps the jobs across restarts.")] = Path("chipmix-jobs.sqlite"),
    workers: Annotated[int, typer.Option(min=1, help="Solves running at once (one process each).")] = 2,
    max_queued: Annotated[int, typer.Option(min=1, help="Waiting jobs beyond this get 429.")] = 32,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Request bodies over this get 413, MB.")] = 20.0,
    default_time_limit: Annotated[float, typer.Option(min=0.001, help="Solver time limit when a request gives none, s.")] = 60.0,
    max_time_limit: Annotated[float, typer.Option(min=0.001, help="Largest time_limit_s a request may ask for, s.")] = 600.0,
    grace: Annotated[float, typer.Option(min=0.0, help="A job is killed this long after its solver time limit, s.")] = 60.0,
    job_memory_mb: Annotated[int, typer.Option(min=64, help="Address space each job (and its solvers) may use, MB.")] = 8192,
    api_keys: Annotated[
        Optional[Path],
        typer.Option("--api-keys", help="File of hashed API keys, one tenant:sha256 per line (chipmix api-key makes one); "
                     "or set CHIPMIX_API_KEYS."),
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without keys (loopback addresses only).")] = False,
    allowed_hosts: Annotated[
        Optional[str], typer.Option(help="Comma-separated Host headers to accept (default: loopback names and --host); '*' for any.")
    ] = None,
    docs: Annotated[bool, typer.Option("--docs/--no-docs", help="Serve the interactive API docs at /docs.")] = False,
    cluster: Annotated[
        Optional[str], typer.Option(help="Dask scheduler address: run jobs on its workers (needs chipmix[dask] there and here).")
    ] = None,
) -> None:
    """Run the HTTP service (POST /v1/solves, GET /v1/solves/{id}[/plan], /v1/check, /v1/validate)."""
    import os

    try:
        import uvicorn

        from optimizer.surfaces.service.app import ServiceSettings, create_app
        from optimizer.surfaces.service.auth import ENV_KEYS, ApiKeys, default_allowed_hosts, is_loopback
    except ImportError as exc:
        _fail(f"chipmix serve needs the server extra: pip install 'chipmix[server]' ({exc})", EXIT_INPUT)
    keys = ApiKeys()
    try:
        if api_keys is not None:
            keys = ApiKeys.parse(api_keys.read_text(), str(api_keys))
        elif os.environ.get(ENV_KEYS):
            keys = ApiKeys.parse(os.environ[ENV_KEYS], ENV_KEYS)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    except OSError as exc:
        _fail(f"--api-keys: {exc}", EXIT_INPUT)
    if no_auth and keys:
        _fail("--no-auth: API keys are given as well; drop one of the two", EXIT_INPUT)
    if no_auth and not is_loopback(host):
        _fail(f"--no-auth serves anyone who can reach {host}: only on a loopback address (127.0.0.1, ::1)", EXIT_INPUT)
    if not no_auth and not keys:
        _fail(f"chipmix serve needs API keys (--api-keys FILE or {ENV_KEYS}; chipmix api-key TENANT makes one), "
              "or --no-auth on a loopback address", EXIT_INPUT)
    hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()] if allowed_hosts else default_allowed_hosts(host)
    settings = ServiceSettings(
        db_path=str(db), workers=workers, max_queued=max_queued, max_body_bytes=int(max_body_mb * 1_000_000),
        default_time_limit_s=default_time_limit, max_time_limit_s=max_time_limit, grace_s=grace,
        job_memory_mb=job_memory_mb, api_keys=keys.tenants, no_auth=no_auth, allowed_hosts=hosts, docs=docs,
        cluster=cluster,
    )
    try:
        service = create_app(settings)
    except ChipmixError as exc:  # the cluster is out of reach
        _fail(str(exc), EXIT_INPUT)
    uvicorn.run(service, host=host, port=port, log_level="warning")


@app.command("api-key")
def api_key(tenant: Annotated[str, typer.Argument(help="The tenant the key's jobs belong to.")]) -> None:
    """Make a new API key for the service: prints the key (give it to the client, once) and the
    line to add to the --api-keys file (the key hashed; the server never stores the key)."""
    import re

    from optimizer.surfaces.service.auth import new_key

    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", tenant):
        _fail(f"{tenant!r}: a tenant is letters, digits and _ . - (at most 64)", EXIT_INPUT)
    key, line = new_key(tenant)
    out.print(f"key (give to the client): {key}", markup=False, highlight=False)
    out.print(f"line for the --api-keys file: {line}", markup=False, highlight=False)


export_app = typer.Typer(help="Export a plan in other formats.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(export_app, name="export")


@export_app.command("focus")
def export_focus_command(
    plan_dir: Annotated[Path, typer.Argument(help="Plan folder written by chipmix solve (or a chipmix hedge folder).")],
    instance: Annotated[Optional[Path], typer.Option(
        "--instance", "-i", help="The instance the plan solves (a hedge folder holds its own).")] = None,
    period: Annotated[str, typer.Option(help="Charge period: hour | day.")] = "hour",
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """The plan as a FinOps FOCUS 1.2 cost and usage CSV (one row per pool, workload and period)."""
    from optimizer.files import write_text_atomic
    from optimizer.plans.focus import export_focus

    loaded = _load(instance)
    summary_path = plan_dir / "summary.json"
    if not summary_path.is_file():
        _fail(f"{plan_dir}: no summary.json; give a folder chipmix solve wrote", EXIT_INPUT)
    made_for = json.loads(summary_path.read_text()).get("instance_sha256")
    if made_for is not None and made_for != loaded.sha256():
        _fail(f"{plan_dir}: the plan was made for another instance than {instance}; solve it again", EXIT_INPUT)
    try:
        text = export_focus(loaded, plan_dir, period)
    except InputError as exc:
        _fail(exc.render(), EXIT_INPUT)
    if out_file is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(out_file, text)
        out.print(f"wrote {out_file} ({text.count(chr(10)) - 1} rows, FOCUS 1.2)", markup=False, highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
