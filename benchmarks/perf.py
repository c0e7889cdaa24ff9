"""Performance: the decomposed solve against the plain model, on the same instances in one run.

    python benchmarks/perf.py [--sizes S,M,weeks,L,fleet-year,fleet-year-procurement] [--limit-scale 1.0]

Each (instance, method) is solved in its own process (so its peak memory is its own) with HiGHS:
``direct`` is the plain time-indexed model passed whole to highspy (the reference), ``decompose``
is ``--method decompose`` (optimizer/solvers/backends/highs/decompose.py).  Recorded per solve: model build seconds, time
to the first plan, to a plan proven within 1% and within 0.1% (from the solver's progress
reports), the gap at the time limit, the status, and peak resident memory.  Every plan is written
and passed through the independent checker.  Rows are appended to
benchmarks/results/perf.csv as they finish, and docs/performance.md is written from that file.
No timing is asserted anywhere.

Instances: S and M are `chipmix generate` instances (12 pools x 14 workloads x 168 h; 20 x 24 x
720 h; seed 0), the shipped weeks are default, frontier-lab-week and power-capped-campus, L is a
generated 40 x 90 x 720 h instance, fleet-year is instances/fleet-year.yaml and
fleet-year-procurement is fleet-year with capacity blocks, commitments and a take-or-pay minimum.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CSV = RESULTS / "perf.csv"
DOC = ROOT / "docs" / "performance.md"

# name -> (source, time limit s, target gap, target seconds); targets from the second performance
# issue (proven gap within the target seconds).  Each solve stops at its target gap.
CASES = {
    "S": ("gen:12,14,168", 60, 0.003, 60),
    "M": ("gen:20,24,720", 60, 0.003, 60),
    "default": ("instances/default.yaml", 60, 0.001, 60),
    "frontier-lab-week": ("instances/frontier-lab-week.yaml", 60, 0.001, 60),
    "power-capped-campus": ("instances/power-capped-campus.yaml", 60, 0.001, 60),
    "L": ("gen:40,90,720", 120, 0.02, 120),
    "fleet-year": ("instances/fleet-year.yaml", 300, 0.002, 300),
    "fleet-year-procurement": ("instances/fleet-year-procurement.yaml", 300, 0.002, 300),
}
#: Instances of the bound table (the issue's S, M, L and shipped weeks), and of the cluster probe,
#: with the share of hours the probe samples (every k-th hour; the sums are scaled back up).
BOUND_CASES = ("S", "M", "default", "frontier-lab-week", "power-capped-campus", "L")
CLUSTER_CASES = {"L": 4, "fleet-year": 20}
#: Each hour's cap in the probe's evaluation, s (the solve's own caps are of this order).
PROBE_HOUR_SECONDS = 0.25
METHOD_NOTES = """\
The model is separable by hour except for what couples hours: reservations, training work,
single-site choices, gang runs and the procurement families' horizon-wide purchases
(`optimizer/solvers/backends/highs/split.py` finds them from the matrix, so a new family's coupling
rows are dualized without being named).

1. **LP relaxation** of the whole model (HiGHS): a first valid bound.
2. **A rounded plan, in seconds.** The horizon-wide decisions are fixed from the LP (reservations
   rounded up, each single-site run's most used site, each gang run's most chosen start), each
   training run's blocks at the LP's values rounded down, and every other block rounded down too,
   and each upper row that leaves broken mended at least cost: an on/off column under its chips (a
   run's `runs`, rounded from 0.4 to 0 with blocks still in the hour) is raised, a commitment's
   covered chips above the chips left in use are given up; continuous decisions (routed shares,
   coverage) keep the LP's values, so the rows they feed ask for blocks;
   then each demand row still short gets whole blocks on the column that covers it most cheaply
   while every row that column touches keeps its bounds (or is left to priced unmet demand when
   that is cheaper), and one LP with every block fixed sets unmet demand and shortfall.
3. **Hour-by-hour MILPs.** What is left falls apart by hour: each hour's MILP (inference in whole
   blocks within capacity, power and the fixed reservations) is solved on its own, on the hour
   step's runner (`optimizer/solvers/backends/highs/hours.py`: a pool of fresh worker processes by
   default, this process's threads below 20,000 hour columns, a Dask cluster with `--cluster`), the
   hours where rounding paid most above the LP first, for half of the time left (all of it when
   the other half could not hold the training MILP below).
   Each hour gets the time left over the hours left, but at least 0.35 ms per column of the hour
   (a large hour needs that long to beat its rounding) and at most 2 s; an hour not reached, or
   not improved, keeps its rounded values. Then the training blocks and shortfall are re-solved
   with every hour's other allocations fixed, in a worker process killed at the deadline (HiGHS
   in process ran that MILP 72 s past a 26 s limit on envelope-quarter). Every plan is checked row
   by row before it is used.
4. **Lagrangian bound** (models of 500k columns or more, where the full MILP's root is out of
   reach; there it runs right after the rounding, before step 3): every row that couples hours is
   dualized, and each hour's MILP, with its integrality, is solved for its dual bound; the sum is
   a valid lower bound, at least the LP's at the LP's duals when the hours are solved to
   optimality. The first evaluation is at the LP's duals, each hour capped at its even share of
   half the time left; what fast hours leave goes to a projected subgradient search for better
   multipliers (`optimizer/solvers/backends/highs/lagrange.py`). It goes first because on L the
   bound is the weak side: the rounded plan is 7.3% above the LP, and the hours and training made
   it 0.2% cheaper in 75 s of the 120 s, which left no time for the bound (7.1% proven; 4.8% with
   the bound first, in a lone run). On smaller models HiGHS's root bound with its cuts is stronger
   (the bound table above), so this step is skipped.
5. **Warm-started MILP.** If the gap is still above the target, the full MILP starts from the
   hour-by-hour plan and is interrupted as soon as its incumbent is within the target of the best
   bound known (its own or the Lagrangian's), or at the time limit. It runs in a worker process
   that is killed at the time limit (optimizer/solvers/backends/highs/worker.py): HiGHS calls no callback
   and checks no limit during its root node's cut loop, which ran 130 s with 58 s left on M before
   the worker existed. Loading and presolving the whole model takes about as long as the LP did,
   so this step is skipped when less than twice the LP's time (plus a second to start the worker)
   is left. The plain model (`direct`) with a time limit runs in the same kind of worker.
6. **Settling.** The plan's blocks fixed, one LP sets unmet demand and shortfall at their least (a
   solve stopped early can leave them higher than they need be; the checker recomputes them).

The plan returned is the cheapest found, its cost re-evaluated from its values, and the bound is
the best valid one; the gap is honest whichever step ended the solve. Every HiGHS solve inside the
decomposition runs with 1e-9 feasibility tolerances, and every plan is checked row by row with the
checker's own slack before it is kept. The checker caught two kinds of wrong plan on L while this
was built: a plan whose summary cost was above the cost of its own files (unmet demand left
higher than its blocks needed by a solve stopped early: what step 6 is for), and, in an earlier
run, a failure whose message was not kept. That one was put down to a row broken by more than the
checker's slack (HiGHS accepts 1e-6 after its own scaling), hence the tighter tolerances and the
row check; it may as well have been the first kind."""

GROUPS = {"S": ["S"], "M": ["M"], "weeks": ["default", "frontier-lab-week", "power-capped-campus"], "L": ["L"],
          "fleet-year": ["fleet-year"], "fleet-year-procurement": ["fleet-year-procurement"]}
METHODS = ("direct", "decompose", "auto")
BOUNDS_CSV = RESULTS / "perf_bounds.csv"
CLUSTER_CSV = RESULTS / "perf_cluster.csv"


def load(source: str):
    import optimizer
    from optimizer.library.generate import generate_instance

    if source.startswith("gen:"):
        pools, workloads, hours = map(int, source[4:].split(","))
        return optimizer.instance_from_data(generate_instance(pools, workloads, hours, 0), source=source)
    return optimizer.load_instance(ROOT / source)


def _high_water_mb(pid: int | str) -> float | None:
    """A process's own peak resident memory (VmHWM), MB; None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak resident memory of this process and of every process it starts (the HiGHS worker, the
    hour step's pool), each from its own high-water mark in /proc (VmHWM), summed: an upper bound
    on what they held at once.  Processes started beside the solve are polled every ``interval``
    seconds while they live, so growth in a child's last ``interval`` before it exits is missed.
    (getrusage's RUSAGE_CHILDREN is not used: a child started by fork and exec keeps the parent's
    high-water mark at exec as its own maximum, so a 10 MB child of a 2 GB process counts as 2 GB;
    measured on this machine.)"""

    def __init__(self, interval: float = 0.2):
        self.interval, self.children = interval, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _descendants(self) -> list[str]:
        parent_of = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        parent_of[entry] = stat.read().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
        found, frontier = [], [str(os.getpid())]
        while frontier:
            frontier = [pid for pid, parent in parent_of.items() if parent in frontier]
            found += frontier
        return found

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pid in self._descendants():
                peak = _high_water_mb(pid)
                if peak is not None:
                    # The latest reading, not the largest: a child caught between fork and exec
                    # shows its parent's memory, and exec starts its high-water mark afresh.
                    self.children[pid] = peak
            self._stop.wait(self.interval)

    def children_gb(self) -> float:
        return round(sum(self.children.values()) / 1024, 2)

    def total_gb(self) -> float:
        return round(((_high_water_mb("self") or 0.0) + sum(self.children.values())) / 1024, 2)


def run_one(name: str, method: str, time_limit: float, gap: float) -> dict:
    """One solve in this process; returns its figures (called in a child process)."""
    import optimizer
    from optimizer.solvers.progress import Progress

    instance = load(CASES[name][0])
    progress = Progress()
    started = time.perf_counter()
    with PeakMemory() as memory:
        plan = optimizer.solve(instance, method=method, mip_rel_gap=gap, time_limit_s=time_limit, progress=progress)
    chosen = plan.details.get("solver", {}).get("method", {})
    wall = time.perf_counter() - started
    from optimizer.plans.outcome import check_plan_tables

    checked = check_plan_tables(instance, plan).ok if plan.has_plan else None
    return {
        "instance": name, "method": method, "time_limit_s": time_limit, "target_gap": gap,
        "columns": plan.details["model"]["columns"], "rows": plan.details["model"]["rows"],
        "build_seconds": plan.details["build_seconds"], "solve_seconds": round(plan.solve_seconds, 2),
        "wall_seconds": round(wall, 2), "status": plan.status.value, "objective_usd": plan.objective_usd,
        "bound_usd": plan.bound_usd, "gap": plan.gap,
        "time_to_first_plan_s": plan.time_to_first_plan_s, "time_to_1pct_s": progress.time_to_gap(0.01),
        "time_to_0.1pct_s": progress.time_to_gap(0.001), "time_to_target_s": progress.time_to_gap(gap),
        "chosen_method": chosen.get("chosen"), "method_reason": chosen.get("reason"),
        "hour_step": plan.details.get("solver", {}).get("decompose", {}).get("hour_step"),
        # This process's peak plus each of its children's (optimizer/solvers/backends/highs/worker.py,
        # the hour step's pool), summed: an upper bound on what they held at once.
        "peak_rss_gb": memory.total_gb(),
        "peak_rss_children_gb": memory.children_gb(),
        "checker_ok": checked,
        # The decomposition's own account of its steps (seconds per step, the rounded plan's cost,
        # why a step gave up), so a missing plan says where the time went.
        "steps": json.dumps(plan.details.get("solver", {}).get("decompose", {}), sort_keys=True),
    }


def _lp_and_model(name: str):
    from optimizer.model.build import build_model
    from optimizer.model.data import build_model_data
    from optimizer.solvers.backends.highs.decompose import lp_relaxation

    model = build_model(build_model_data(load(CASES[name][0])))
    started = time.perf_counter()
    lp_value, lp_values, duals = lp_relaxation(model, None)
    return model, lp_value, lp_values, duals, time.perf_counter() - started


def run_bounds(name: str, best_plan_usd: float) -> dict:
    """The bound table's row (in a child process): the LP bound, HiGHS's root bound (the whole
    MILP stopped after its root node), the Lagrangian at the LP's duals, and the optimised one, each
    with its seconds; ``best_plan_usd`` is the cheapest plan this run's solves found."""
    import highspy
    import numpy as np

    from optimizer.solvers.backends.highs.arrays import load_model
    from optimizer.solvers.backends.highs.hours import HourRunner
    from optimizer.solvers.backends.highs.lagrange import lagrangian_bound, optimise_multipliers
    from optimizer.solvers.backends.highs.options import apply_options
    from optimizer.solvers.backends.highs.split import split_by_hour

    _, limit, gap, _ = CASES[name]
    model, lp_value, lp_values, duals, lp_seconds = _lp_and_model(name)
    row = {"instance": name, "columns": model.n_cols, "best_plan_usd": best_plan_usd,
           "lp_bound_usd": lp_value, "lp_seconds": round(lp_seconds, 2)}
    highs = highspy.Highs()
    apply_options(highs, {"output_flag": False, "mip_max_nodes": 1, "time_limit": float(limit), "mip_rel_gap": gap})
    load_model(highs, model)
    started = time.perf_counter()
    highs.run()
    row["root_bound_usd"] = float(highs.getInfo().mip_dual_bound)
    row["root_seconds"] = round(time.perf_counter() - started, 2)
    row["root_status"] = highs.modelStatusToString(highs.getModelStatus())
    del highs
    split = split_by_hour(model)
    groups = len(np.unique(split.col_hour))
    workers = os.cpu_count() or 1
    slack = 0.1 * gap * abs(lp_value)
    # The Lagrangian at the LP's duals gets half the solve's limit (each hour its even share), as
    # decompose gives it; the search gets the whole limit, its first evaluation with the same caps.
    # The runner is sized as decompose sizes it: by the columns that sit in one hour.
    with HourRunner(workers, int(np.count_nonzero(split.col_hour >= 0))) as runner:
        fixed = lagrangian_bound(model, duals, split, time_limit_s=limit / 2, workers=workers, slack_usd=slack,
                                 runner=runner)
        row["lagrangian_lp_duals_usd"], row["lagrangian_lp_duals_seconds"] = fixed.bound, round(fixed.seconds, 2)
        search = optimise_multipliers(model, duals, best_plan_usd, float(limit), split=split, workers=workers,
                                      slack_usd=slack, fallback=lp_values, runner=runner,
                                      hour_seconds=max(limit / 2 * workers / groups, 0.05))
        row.update({"lagrangian_optimised_usd": search.bound, "lagrangian_optimised_seconds": round(search.seconds, 2),
                    "lagrangian_iterations": search.iterations, "lagrangian_history": json.dumps(search.history),
                    "hour_step": runner.describe()})
    return row


def run_cluster(name: str) -> list[dict]:
    """The cluster probe (in a child process): one Lagrangian evaluation at the LP's duals over a
    sample of the hours (every k-th), each hour capped at PROBE_HOUR_SECONDS, on this machine's
    process pool and on a Dask LocalCluster of 1 and of 2 workers; per run the wall time, the sum
    and the largest of the hours' own solve times."""
    import numpy as np
    from distributed import Client, LocalCluster

    from optimizer.solvers.backends.highs.hours import HourPolicy, HourRunner
    from optimizer.solvers.backends.highs.lagrange import Dualized
    from optimizer.solvers.backends.highs.split import split_by_hour

    every = CLUSTER_CASES[name]
    model, _, _, duals, _ = _lp_and_model(name)
    dualized = Dualized(model, split_by_hour(model))
    y = dualized.project(duals[dualized.coupling])
    problems = dualized.problems(y)
    hours = [i for i, g in enumerate(dualized.groups) if g >= 0]
    sample = [problems[i] for i in hours[::every]]
    rows = []

    def measure(label: str, workers: int, cluster: str | None) -> None:
        with HourRunner(workers, 10**9, cluster) as runner:
            now = time.time()
            policy = HourPolicy(deadline=np.inf, share_end=np.inf, gap=1e-4, least_s=PROBE_HOUR_SECONDS,
                                most_s=PROBE_HOUR_SECONDS)
            started = time.perf_counter()
            answers = runner.solve(sample, policy)
            wall = time.perf_counter() - started
            del now
            seconds = [a.seconds for a in answers]
            rows.append({"instance": name, "runner": label, "workers": runner.workers, "hours_total": len(hours),
                         "hours_sampled": len(sample), "sample_every": every, "tasks": runner.tasks,
                         "wall_seconds": round(wall, 3), "hour_seconds_sum": round(sum(seconds), 3),
                         "hour_seconds_max": round(max(seconds), 3),
                         "hour_seconds_median": round(float(np.median(seconds)), 4)})
            print(rows[-1], file=sys.stderr, flush=True)

    measure("process pool", 2, None)
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            measure(f"LocalCluster {n} worker{'s' if n > 1 else ''}", n, cluster.scheduler_address)
    return rows


def cluster_projection(rows: list[dict]) -> list[str]:
    """Projected wall time of one full hour step on W workers, from the probe's measured hours:
    between max(sum/W, longest hour) (perfect balance) and sum/W + longest hour (list scheduling's
    worst case), plus the dispatch cost per task measured on the 1-worker cluster."""
    lines = _header("instance", "hours", "measured on", "sum of hour solves (all hours)", "longest hour",
                    "dispatch per task", "16 workers (projected)", "64 workers (projected)")
    for name in CLUSTER_CASES:
        one = next((r for r in rows if r["instance"] == name and r["runner"].startswith("LocalCluster 1")), None)
        if one is None:
            continue
        scale = one["hours_total"] / one["hours_sampled"]
        total, longest = one["hour_seconds_sum"] * scale, one["hour_seconds_max"]
        dispatch = max(one["wall_seconds"] - one["hour_seconds_sum"], 0.0) / max(one["tasks"], 1)
        cells = []
        for workers in (16, 64):
            tasks = workers * 6  # BATCHES_PER_WORKER
            low = max(total / workers, longest) + dispatch * tasks / workers
            high = total / workers + longest + dispatch * tasks / workers
            cells.append(f"{low:.1f}-{high:.1f} s")
        lines.append(_row(name, f"{one['hours_total']:,}", f"every {one['sample_every']}th hour, 1-worker LocalCluster",
                          f"{total:.1f} s", f"{longest:.2f} s", f"{dispatch * 1000:.0f} ms", *cells))
    return lines


def _row(*cells) -> str:
    """One markdown table row."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _header(*columns) -> list[str]:
    """A markdown table's header and rule."""
    return [_row(*columns), "|" + "---|" * len(columns)]


def _fmt(value, unit="s") -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.1f} {unit}" if unit else f"{value}"


def _usd(value) -> str:
    return "-" if value is None or value != value else f"{value:,.0f}"


def write_doc(rows: list[dict], meta: dict, bounds: list[dict] = (), probes: list[dict] = ()) -> None:
    by = {(r["instance"], r["method"]): r for r in rows}
    lines = [
        "# Performance: the methods side by side, the bounds, and the hour step on a cluster",
        "",
        f"Written by `benchmarks/perf.py` from [benchmarks/results/perf.csv](../benchmarks/results/perf.csv), "
        f"run on {meta['date']} on {meta['machine']} ({meta['cores']} cores, {meta['memory_gb']} GiB, Python "
        f"{meta['python']}). Each solve ran alone in its own process, HiGHS with its default threads; the machine "
        "is shared and noisy, so compare the methods within an instance, not across runs. `direct` is the plain "
        "time-indexed model passed whole to highspy (the reference); `decompose` is `chipmix solve --method "
        "decompose`; `auto` is the default (`--method auto`), which chose the method in brackets. Each solve stops "
        "at its target gap. Times are from the solver's own progress reports; a dash means never reached within "
        "the limit. Peak RSS is each process's own high-water mark (VmHWM), the solve's process plus every "
        "process it started (its HiGHS worker, the hour step's pool), summed: an upper bound on what they held at "
        "once (benchmarks/perf.py `PeakMemory`).",
        "",
        *_header("instance", "columns", "method", "build", "first plan", "within 1%", "within target",
                 "gap at the end", "status (limit)", "peak RSS", "target"),
    ]
    for name, (_, limit, gap, seconds) in CASES.items():
        for method in METHODS:
            r = by.get((name, method))
            if r is None:
                continue
            target = f"{100 * gap:g}% in {seconds} s"
            label = method if method != "auto" or not r.get("chosen_method") else f"auto ({r['chosen_method']})"
            if r.get("columns") is None:  # killed or failed: nothing was measured
                lines.append(_row(name, "-", label, "-", "-", "-", "-", "-", f"{r['status']} ({limit:g} s)", "-",
                                  f"{target}: not met"))
                continue
            reached = r.get("time_to_target_s")
            met = "met" if reached is not None and reached <= seconds and r.get("checker_ok") else "not met"
            end_gap = "-" if r["gap"] is None else f"{100 * r['gap']:.3f}%"
            lines.append(_row(name, f"{int(r['columns']):,}", label, f"{r['build_seconds']:.2f} s",
                              _fmt(r['time_to_first_plan_s']), _fmt(r['time_to_1pct_s']), _fmt(reached), end_gap,
                              f"{r['status']} ({limit:g} s)", f"{r['peak_rss_gb']:.2f} GB", f"{target}: {met}"))
    def g(r):  # a plan with no bound has an unbounded gap; no plan, no gap
        if r is None or r.get("objective_usd") is None:
            return None
        return float("inf") if r.get("gap") is None else r["gap"]

    cell = lambda x: "no plan" if x is None else ("no bound" if x == float("inf") else f"{100 * x:.3f}%")  # noqa: E731
    # Where decompose did worse than direct, the rule's footing says so.
    worse = []
    for name in CASES:
        direct, decomposed = g(by.get((name, "direct"))), g(by.get((name, "decompose")))
        if direct is not None and (decomposed is None or decomposed > direct + 1e-9):
            worse.append(f"{name} (direct {cell(direct)}, decompose {cell(decomposed)})")
    lines += ["", "## auto against both methods (same run)", "",
              "`auto` is never worse than both when its gap at the end is no larger than the larger of the two "
              "methods' gaps; it is as good as the better one when it chose that method and matched it. The rule "
              "(optimizer/solvers/backends/highs/backend.py: a HiGHS MILP of 2 or more hours with at least half of "
              "its columns in one hour each is decomposed) comes from this table: decompose proved a gap no worse "
              "than direct on every instance here" + (f" except {', '.join(worse)}." if worse else "."), "",
              *_header("instance", "direct gap", "decompose gap", "auto chose", "auto gap", "never worse than both")]
    for name in CASES:
        d, c, a = by.get((name, "direct")), by.get((name, "decompose")), by.get((name, "auto"))
        if a is None or a.get("columns") is None:
            continue
        worst = max((x for x in (g(d), g(c)) if x is not None), default=None)
        if g(a) is None and g(d) is None and g(c) is None:
            ok = "no method found a plan"
        else:
            ok = "yes" if g(a) is not None and (worst is None or g(a) <= worst + 1e-9) else "no"
            if g(a) is not None and all(x is not None and g(a) <= x + 1e-9 for x in (g(d), g(c))):
                ok += ", and as good as the better"
        lines.append(_row(name, cell(g(d)), cell(g(c)), a.get("chosen_method"), cell(g(a)), ok))

    def run_of(rows) -> str:
        dates = sorted({str(r.get("run_date")) for r in rows if r.get("run_date")})
        return f"run of {', '.join(dates)}" if dates else "same run"
    if bounds:
        lines += ["", f"## Lower bounds ({run_of(bounds)})", "",
                  "Each bound as a gap below the cheapest plan any method found in the solves of its run, and what "
                  "it cost. LP: "
                  "the LP relaxation. Root: HiGHS on the whole MILP stopped after its root node (cuts included; "
                  "capped at the solve's limit). Lagrangian (LP duals): every hour-coupling row dualized at the LP's "
                  "duals, each hour's MILP solved for its own dual bound, half the solve's limit shared over the "
                  "hours. Optimised: projected subgradient (Polyak's step) from the LP's duals for the solve's whole "
                  "limit, its first evaluation with the same caps (optimizer/solvers/backends/highs/lagrange.py). "
                  "Every bound is valid, however early an hour stopped.", "",
                  *_header("instance", "best plan (USD)", "LP", "root", "Lagrangian, LP duals",
                           "Lagrangian, optimised", "evaluations")]
        for b in bounds:
            if b.get("lp_bound_usd") is None:
                lines.append(_row(b["instance"], "-", b.get("status", "-"), "", "", "", ""))
                continue
            best = b["best_plan_usd"]

            def cell(key, seconds):
                value = b.get(key)
                if value is None or value != value or value in (float("inf"), float("-inf")):
                    return f"- ({_fmt(b.get(seconds))})"
                if key == "root_bound_usd" and value < b["lp_bound_usd"] - 1e-6 * abs(b["lp_bound_usd"]):
                    return f"root not reached ({_fmt(b.get(seconds))})"  # HiGHS reports 0 before its root LP
                return f"{100 * (best - value) / best:.3f}% ({_fmt(b.get(seconds))})"

            lines.append(_row(b["instance"], _usd(best), cell("lp_bound_usd", "lp_seconds"),
                              cell("root_bound_usd", "root_seconds"),
                              cell("lagrangian_lp_duals_usd", "lagrangian_lp_duals_seconds"),
                              cell("lagrangian_optimised_usd", "lagrangian_optimised_seconds"),
                              b.get("lagrangian_iterations", "-")))
    if probes:
        lines += ["", f"## The hour step on a process pool and on a Dask cluster ({run_of(probes)})", "",
                  "One Lagrangian evaluation at the LP's duals over a sample of the hours (every k-th), each hour "
                  f"capped at {PROBE_HOUR_SECONDS} s, run through the hour step's runner "
                  "(optimizer/solvers/backends/highs/hours.py): this machine's process pool (the default) and a Dask "
                  "LocalCluster of 1 and 2 single-threaded worker processes (`--cluster ADDRESS`).", "",
                  *_header("instance", "runner", "workers", "hours sampled (of)", "tasks", "wall",
                           "sum of hour solves", "longest hour")]
        for r in probes:
            if r.get("wall_seconds") is None:
                lines.append(_row(r["instance"], r.get("status", "-"), "", "", "", "", "", ""))
                continue
            lines.append(_row(r["instance"], r["runner"], r["workers"], f"{r['hours_sampled']} ({r['hours_total']:,})",
                              r["tasks"], f"{r['wall_seconds']:.1f} s", f"{r['hour_seconds_sum']:.1f} s",
                              f"{r['hour_seconds_max']:.2f} s"))
        lines += ["", "**Projection, not a measurement**: one full hour step (every hour, same caps) on 16 and 64 "
                  "workers, from the 1-worker cluster's measured hour times scaled to all hours: between perfect "
                  "balance, max(sum / W, longest hour), and list scheduling's worst case, sum / W + longest hour, "
                  "each plus the measured dispatch cost per task spread over the workers.", ""]
        lines += cluster_projection(probes)
    if meta.get("notes"):
        lines += ["", "## Notes on this run", ""] + [f"- {note}" for note in meta["notes"]]
    lines += ["", "## How the decomposed solve works", "", METHOD_NOTES]
    lines += ["", "Every plan passed the independent checker unless the CSV's `checker_ok` says otherwise: "
              + ("all did." if all(r.get("checker_ok") in (True, None) for r in rows) else "see the CSV."), ""]
    DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M,weeks,L,fleet-year,fleet-year-procurement")
    parser.add_argument("--phases", default="solves,bounds,cluster",
                        help="solves (the three methods), bounds (the bound table), cluster (the hour-step probe)")
    parser.add_argument("--one", nargs=2, metavar=("INSTANCE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--one-bounds", nargs=2, metavar=("INSTANCE", "BEST_PLAN_USD"), help=argparse.SUPPRESS)
    parser.add_argument("--one-cluster", metavar="INSTANCE", help=argparse.SUPPRESS)
    parser.add_argument("--doc-only", action="store_true", help="Rewrite docs/performance.md from the CSVs.")
    args = parser.parse_args(argv)
    if args.one:
        name, method = args.one
        _, limit, gap, _ = CASES[name]
        print(json.dumps(run_one(name, method, limit, gap)))
        return 0
    if args.one_bounds:
        print(json.dumps(run_bounds(args.one_bounds[0], float(args.one_bounds[1]))))
        return 0
    if args.one_cluster:
        print(json.dumps(run_cluster(args.one_cluster)))
        return 0
    import pandas as pd

    meta = {"date": f"{dt.date.today():%Y-%m-%d}", "machine": platform.machine(), "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3),
            "python": platform.python_version()}
    RESULTS.mkdir(parents=True, exist_ok=True)

    def read(path: Path) -> list[dict]:
        if not path.exists():
            return []
        frame = pd.read_csv(path)
        return frame.astype(object).where(frame.notna(), None).to_dict("records")

    if args.doc_only:
        write_doc(read(CSV), json.loads((RESULTS / "perf.run.json").read_text()), read(BOUNDS_CSV), read(CLUSTER_CSV))
        return 0
    # Rows of instances not re-run now are kept (with their own run date); an instance re-run here
    # replaces all its rows, so the methods of one instance always come from the same run.
    rows, bounds, probes = read(CSV), read(BOUNDS_CSV), read(CLUSTER_CSV)
    meta = {**json.loads((RESULTS / "perf.run.json").read_text()), **meta} if (RESULTS / "perf.run.json").exists() else meta
    phases = set(args.phases.split(","))

    def save() -> None:
        pd.DataFrame(rows).to_csv(CSV, index=False)
        if bounds:
            pd.DataFrame(bounds).to_csv(BOUNDS_CSV, index=False)
        if probes:
            pd.DataFrame(probes).to_csv(CLUSTER_CSV, index=False)
        (RESULTS / "perf.run.json").write_text(json.dumps(meta, indent=2) + "\n")
        write_doc(rows, meta, bounds, probes)

    for group in args.sizes.split(","):
        for name in GROUPS[group]:
            if "solves" in phases:
                rows = [row for row in rows if row["instance"] != name]
                for method in METHODS:
                    rows.append(run_child(name, method, ["--one", name, method]))
                    print(rows[-1], file=sys.stderr, flush=True)
                    save()
            if "bounds" in phases and name in BOUND_CASES:
                plans = [r["objective_usd"] for r in rows if r["instance"] == name and r.get("objective_usd") is not None]
                if plans:
                    bounds = [row for row in bounds if row["instance"] != name]
                    bounds.append(run_child(name, "bounds", ["--one-bounds", name, repr(min(plans))],
                                            extra=3 * CASES[name][1]))
                    print(bounds[-1], file=sys.stderr, flush=True)
                    save()
            if "cluster" in phases and name in CLUSTER_CASES:
                result = run_child(name, "cluster", ["--one-cluster", name], extra=1200)
                probes = [row for row in probes if row["instance"] != name]
                probes += result if isinstance(result, list) else [result]
                save()
    return 0


def run_child(name: str, method: str, flags: list[str], extra: float = 0.0):
    """One solve (or probe) in a child process.  HiGHS can run far past its time limit on the
    largest models; a child still running 300 s (plus ``extra``) after its limit is killed and
    recorded as such, not waited for."""
    limit = CASES[name][1] + extra
    row = {"instance": name, "method": method, "time_limit_s": CASES[name][1], "target_gap": CASES[name][2],
           "run_date": f"{dt.date.today():%Y-%m-%d}"}
    try:
        result = subprocess.run([sys.executable, __file__, *flags], capture_output=True, text=True,
                                cwd=ROOT, timeout=limit + 300)
    except subprocess.TimeoutExpired:
        return {**row, "status": f"killed: no answer {limit + 300:g} s after the start"}
    if result.returncode != 0:
        return {**row, "status": "error: " + result.stderr.strip().splitlines()[-1][:200]}
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    if isinstance(answer, list):
        return [{**item, "run_date": row["run_date"]} for item in answer]
    return {**answer, "run_date": row["run_date"]}


if __name__ == "__main__":
    sys.exit(main())
