"""Performance: the decomposed solve against the plain model, on the same instances in one run.

    python benchmarks/perf.py [--sizes S,M,weeks,L,fleet-year] [--limit-scale 1.0]

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
generated 40 x 90 x 720 h instance, and fleet-year is instances/fleet-year.yaml.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CSV = RESULTS / "perf.csv"
DOC = ROOT / "docs" / "performance.md"

# name -> (source, time limit s, target gap, target seconds); targets from the performance issue.
CASES = {
    "S": ("gen:12,14,168", 60, 0.001, 20),
    "M": ("gen:20,24,720", 120, 0.001, 20),
    "default": ("instances/default.yaml", 60, 0.001, 20),
    "frontier-lab-week": ("instances/frontier-lab-week.yaml", 60, 0.001, 20),
    "power-capped-campus": ("instances/power-capped-campus.yaml", 60, 0.001, 20),
    "L": ("gen:40,90,720", 120, 0.01, 45),
    "fleet-year": ("instances/fleet-year.yaml", 600, 0.01, 600),
}
METHOD_NOTES = """\
The model is separable by hour except for what couples hours: reservations, training work,
single-site choices and gang runs (`optimizer/solvers/backends/highs/decompose.py`).

1. **LP relaxation** of the whole model (HiGHS): a first valid bound.
2. **A rounded plan, in seconds.** The horizon-wide decisions are fixed from the LP (reservations
   rounded up, each single-site run's most used site, each gang run's most chosen start), each
   training run's blocks at the LP's values rounded down, and every other block rounded down too;
   then each demand row still short gets whole blocks on the column that covers it most cheaply
   while every row that column touches keeps its bounds (or is left to priced unmet demand when
   that is cheaper), and one LP with every block fixed sets unmet demand and shortfall.
3. **Hour-by-hour MILPs.** What is left falls apart by hour: each hour's MILP (inference in whole
   blocks within capacity, power and the fixed reservations) is solved on its own, in parallel
   threads, the hours where rounding paid most above the LP first, for half of the time left.
   Each hour gets the time left over the hours left, but at least 0.35 ms per column of the hour
   (a large hour needs that long to beat its rounding) and at most 2 s; an hour not reached, or
   not improved, keeps its rounded values. Then the training blocks and shortfall are re-solved
   with every hour's other allocations fixed. Every plan is checked row by row before it is used.
4. **Lagrangian bound** (models of 500k columns or more, where the full MILP's root is out of
   reach): every row that couples hours is dualized with the LP's duals, and each hour's MILP, with
   its integrality, is solved for its dual bound; the sum is a valid lower bound at least as good as
   the LP's when the hours are solved to optimality. On smaller models HiGHS's root bound with its
   cuts is stronger, so this step is skipped.
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
          "fleet-year": ["fleet-year"]}
METHODS = ("direct", "decompose")


def load(source: str):
    import optimizer
    from optimizer.library.generate import generate_instance

    if source.startswith("gen:"):
        pools, workloads, hours = map(int, source[4:].split(","))
        return optimizer.instance_from_data(generate_instance(pools, workloads, hours, 0), source=source)
    return optimizer.load_instance(ROOT / source)


def run_one(name: str, method: str, time_limit: float, gap: float) -> dict:
    """One solve in this process; returns its figures (called in a child process)."""
    import optimizer
    from optimizer.solvers.progress import Progress

    instance = load(CASES[name][0])
    progress = Progress()
    started = time.perf_counter()
    plan = optimizer.solve(instance, method=method, mip_rel_gap=gap, time_limit_s=time_limit, progress=progress)
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
        "time_to_0.1pct_s": progress.time_to_gap(0.001),
        # This process's peak plus its HiGHS worker's (optimizer/solvers/backends/highs/worker.py): the
        # sum bounds what both held at once from above.
        "peak_rss_gb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                              + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024**2, 2),
        "checker_ok": checked,
        # The decomposition's own account of its steps (seconds per step, the rounded plan's cost,
        # why a step gave up), so a missing plan says where the time went.
        "steps": json.dumps(plan.details.get("solver", {}).get("decompose", {}), sort_keys=True),
    }


def _fmt(value, unit="s") -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.1f} {unit}" if unit else f"{value}"


def write_doc(rows: list[dict], meta: dict) -> None:
    by = {(r["instance"], r["method"]): r for r in rows}
    lines = [
        "# Performance: the decomposed solve against the plain model",
        "",
        f"Written by `benchmarks/perf.py` from [benchmarks/results/perf.csv](../benchmarks/results/perf.csv), "
        f"run on {meta['date']} on {meta['machine']} ({meta['cores']} cores, {meta['memory_gb']} GiB, Python "
        f"{meta['python']}). Each solve ran alone in its own process, HiGHS with its default threads; the machine "
        "is shared and noisy, so compare the two methods within a row, not across runs. `direct` is the plain "
        "time-indexed model passed whole to highspy (the reference); `decompose` is `chipmix solve --method "
        "decompose`. Times are from the solver's own progress reports; a dash means never reached within the limit. "
        "Peak RSS is the solve's process plus its HiGHS worker process, summed (an upper bound on both at once).",
        "",
        "| instance | columns | method | build | first plan | within 1% | within 0.1% | gap at the end | status (limit) | peak RSS | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (_, limit, gap, seconds) in CASES.items():
        for method in METHODS:
            r = by.get((name, method))
            if r is None:
                continue
            target = f"{100 * gap:g}% in {seconds} s"
            if r.get("columns") is None:  # killed or failed: nothing was measured
                lines.append(f"| {name} | - | {method} | - | - | - | - | - | {r['status']} ({limit:g} s) | - | "
                             f"{target}: not met |")
                continue
            reached = r["time_to_1pct_s"] if gap >= 0.01 else r["time_to_0.1pct_s"]
            met = "met" if reached is not None and reached <= seconds else "not met"
            end_gap = "-" if r["gap"] is None else f"{100 * r['gap']:.3f}%"
            lines.append(
                f"| {name} | {int(r['columns']):,} | {method} | {r['build_seconds']:.2f} s | "
                f"{_fmt(r['time_to_first_plan_s'])} | {_fmt(r['time_to_1pct_s'])} | {_fmt(r['time_to_0.1pct_s'])} | "
                f"{end_gap} | {r['status']} ({limit:g} s) | {r['peak_rss_gb']:.2f} GB | {target}: {met} |"
            )
    lines += ["", "## Ratios (direct / decompose, same instance, same run)", ""]
    for name in CASES:
        a, b = by.get((name, "direct")), by.get((name, "decompose"))
        if a is None or b is None:
            continue
        parts = []
        for key, label in (("time_to_first_plan_s", "time to first plan"), ("time_to_1pct_s", "time to 1%"),
                           ("time_to_0.1pct_s", "time to 0.1%")):
            a.setdefault(key, None), b.setdefault(key, None)
            if a[key] is not None and b[key] is not None and b[key] > 0:
                parts.append(f"{label} x{a[key] / b[key]:.2f}")
            elif b[key] is not None and a[key] is None:
                parts.append(f"{label}: only decompose reached it")
            elif a[key] is not None and b[key] is None:
                parts.append(f"{label}: only direct reached it")
        if a.get("gap") is not None and b.get("gap") is not None:
            parts.append(f"final gap {100 * a['gap']:.3f}% vs {100 * b['gap']:.3f}%")
        lines.append(f"- {name}: " + ("; ".join(parts) if parts else "nothing to compare"))
    if meta.get("notes"):
        lines += ["", "## Notes on this run", ""] + [f"- {note}" for note in meta["notes"]]
    lines += ["", "## How the decomposed solve works", "", METHOD_NOTES]
    lines += ["", "Every plan passed the independent checker unless the CSV's `checker_ok` says otherwise: "
              + ("all did." if all(r.get("checker_ok") in (True, None) for r in rows) else "see the CSV."), ""]
    DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M,weeks,L,fleet-year")
    parser.add_argument("--one", nargs=2, metavar=("INSTANCE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--doc-only", action="store_true", help="Rewrite docs/performance.md from perf.csv.")
    args = parser.parse_args(argv)
    if args.one:
        name, method = args.one
        _, limit, gap, _ = CASES[name]
        print(json.dumps(run_one(name, method, limit, gap)))
        return 0
    import pandas as pd

    meta = {"date": f"{dt.date.today():%Y-%m-%d}", "machine": platform.machine(), "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3),
            "python": platform.python_version()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.doc_only:
        frame = pd.read_csv(CSV)
        write_doc(frame.astype(object).where(frame.notna(), None).to_dict("records"),
                  json.loads((RESULTS / "perf.run.json").read_text()))
        return 0
    # Rows of instances not re-run now are kept (with their own run date); an instance re-run here
    # replaces both its rows, so the two methods of one instance always come from the same run.
    rows = []
    if CSV.exists():
        kept = pd.read_csv(CSV)
        rows = kept.astype(object).where(kept.notna(), None).to_dict("records")
    meta = {**json.loads((RESULTS / "perf.run.json").read_text()), **meta} if (RESULTS / "perf.run.json").exists() else meta
    for group in args.sizes.split(","):
        for name in GROUPS[group]:
            rows = [row for row in rows if row["instance"] != name]
            for method in METHODS:
                rows.append(run_child(name, method))
                print(rows[-1], file=sys.stderr, flush=True)
                pd.DataFrame(rows).to_csv(CSV, index=False)
                (RESULTS / "perf.run.json").write_text(json.dumps(meta, indent=2) + "\n")
                write_doc(rows, meta)
    return 0


def run_child(name: str, method: str) -> dict:
    """One solve in a child process.  HiGHS can run far past its time limit on the largest models;
    a child still running 300 s after its limit is killed and recorded as such, not waited for."""
    limit = CASES[name][1]
    row = {"instance": name, "method": method, "time_limit_s": limit, "target_gap": CASES[name][2],
           "run_date": f"{dt.date.today():%Y-%m-%d}"}
    try:
        result = subprocess.run([sys.executable, __file__, "--one", name, method], capture_output=True, text=True,
                                cwd=ROOT, timeout=limit + 300)
    except subprocess.TimeoutExpired:
        return {**row, "status": f"killed: no answer {limit + 300} s after the start"}
    if result.returncode != 0:
        return {**row, "status": "error: " + result.stderr.strip().splitlines()[-1][:200]}
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "run_date": row["run_date"]}


if __name__ == "__main__":
    sys.exit(main())
