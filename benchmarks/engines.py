"""Engine benchmark: HiGHS, CP-SAT and PuLP+CBC on a week with 0, 5 and 20 gang-scheduled runs.

    python benchmarks/engines.py [--time-limit 60] [--gangs 0,5,20] [--engines highs,cpsat,pulp-cbc]

The week is instances/default.yaml (its shape is read from the file); the gang runs are added to it
by :func:`with_gang_runs` from a fixed seed (H100/H200 runs of 32-128 chips, spans of 12-48 hours,
windows with 6-48 hours of slack, priced at 10 USD per EFLOP short).  For each instance and engine
two solves, each under the same time limit:

- ``to_1pct``: stop at a 1% gap; the time it took, or the gap left at the limit;
- ``to_opt``: stop at a zero gap; the time to a proven optimum, or the gap left at the limit.

Every plan is written and passed through the independent checker.  Writes
benchmarks/results/engines.csv and docs/engines.md; every number in that page comes from this run.
No timing is asserted anywhere: the page states the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import optimizer
from optimizer.analyses.scenarios import without_routing
from optimizer.units import EFLOP_PER_TFLOPS_HOUR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "engines.md"
BASE = ROOT / "instances" / "default.yaml"
GANG_CHIPS = (32, 64, 128)
GANG_EFFICIENCY = {"h100": 0.4, "h200": 0.4}
SHORT_USD_PER_EFLOP = 10.0


def with_gang_runs(instance: optimizer.Instance, count: int, seed: int = 0) -> optimizer.Instance:
    """The instance plus ``count`` priced gang runs on H100/H200 pools (all 8-chip blocks)."""
    data = instance.model_dump(mode="json", exclude_none=True)
    if count == 0:
        return instance
    chips = {chip["id"]: chip for chip in data["chips"]}
    rate_tflops = chips["h100"]["peak_tflops"] * GANG_EFFICIENCY["h100"]
    rng = random.Random(seed)
    hours = data["hours"]
    for g in range(count):
        size = rng.choice(GANG_CHIPS)
        span = rng.randint(12, 48)
        slack = rng.randint(6, 48)
        release = rng.randint(0, max(0, hours - span - slack))
        work = round(size * rate_tflops * EFLOP_PER_TFLOPS_HOUR * span * 0.95, 1)
        data["workloads"].append({
            "type": "training", "id": f"gang-{g:02d}", "work_eflop": work, "gang_chips": size,
            "release_hour": release, "deadline_hour": min(hours, release + span + slack),
            "efficiency": dict(GANG_EFFICIENCY), "short_usd_per_eflop": SHORT_USD_PER_EFLOP,
        })
    data["name"] = f"{data['name']}+{count}gangs"
    return optimizer.instance_from_data(data, source=f"{BASE.name} + {count} gang runs")


def run_one(instance, engine: str, gap: float, time_limit: float, scratch: Path) -> dict:
    started = time.perf_counter()
    plan = optimizer.solve(instance, engine=engine, mip_rel_gap=gap, time_limit_s=time_limit)
    wall = time.perf_counter() - started
    checked = None
    if plan.has_plan:
        target = plan.write(scratch / f"{instance.name}-{engine}-{gap}")
        checked = optimizer.check_plan(instance, target).ok
    return {
        "status": plan.status.value,
        "solve_seconds": round(plan.solve_seconds, 2),
        "wall_seconds": round(wall, 2),
        "objective_usd": plan.objective_usd,
        "bound_usd": plan.bound_usd,
        "gap": plan.gap,
        "checker_ok": checked,
        "scaling_bound_usd": plan.details.get("solver", {}).get("scaling_bound_usd"),
        "columns": plan.details["model"]["columns"],
        "rows": plan.details["model"]["rows"],
    }


def _pct(value) -> str:
    if value is None or value != value:
        return "-"
    return "inf" if value == float("inf") else f"{100 * value:.3f}%"


def _reached(row: dict, target_gap: float) -> str:
    if row["status"] == "optimal":
        return f"{row['solve_seconds']:.1f} s"
    return f"not in {row['time_limit_s']:.0f} s (gap {_pct(row['gap'])})" if row["status"] == "feasible" else row["status"]


def describe(instance: optimizer.Instance) -> str:
    """The base week's shape, read from the file so that the page follows the instance."""
    kinds = [w.type for w in instance.workloads]
    parts = [f"{instance.hours} hours", f"{len(instance.pools)} pools",
             f"{kinds.count('inference')} inference services", f"{kinds.count('training')} training runs"]
    for label, items in (("capacity-block offer", instance.capacity_blocks), ("commitment", instance.commitments),
                         ("contract", instance.contracts)):
        if items:
            parts.append(f"{len(items)} {label}{'' if len(items) == 1 else 's'}")
    return ", ".join(parts)


def write_doc(frame: pd.DataFrame, args, started: dt.datetime, seconds: float) -> None:
    lines = [
        "# Engines: HiGHS, CP-SAT and PuLP+CBC, with and without gang-scheduled runs",
        "",
        f"Written by `benchmarks/engines.py --time-limit {args.time_limit:g} --gangs {args.gangs} --engines {args.engines}` "
        f"on {started:%Y-%m-%d}" + ("" if seconds != seconds else f" ({seconds / 60:.1f} min in all)") + f". Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}. Each engine used its "
        "default threads (HiGHS: its default; CP-SAT: 8 workers interleaved, deterministic). The machine is "
        "shared and noisy: compare ratios within this run, not with other runs. Raw figures: "
        "[benchmarks/results/engines.csv](../benchmarks/results/engines.csv).",
        "",
        f"The week is `instances/default.yaml` ({describe(optimizer.load_instance(BASE))}) with chat served by its "
        "flagship alone (`without_routing`: CP-SAT refuses routing rows, and every engine solves one model). "
        "The gang runs are added by `with_gang_runs` with a fixed seed: H100/H200 runs of 32, 64 or 128 chips, "
        f"spans of 12-48 hours, 6-48 hours of slack in their window, {SHORT_USD_PER_EFLOP:g} USD per EFLOP if not run. "
        "Every plan below passed the independent checker (column `checker_ok` in the CSV).",
        "",
        "| gang runs | engine | columns | to a 1% gap | to a proven optimum | objective (USD) at the optimum run | bound (USD) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (gangs, engine), group in frame.groupby(["gang_runs", "engine"], sort=False):
        one = group[group.target == "to_1pct"].iloc[0].to_dict()
        opt = group[group.target == "to_opt"].iloc[0].to_dict()
        objective = "-" if opt["objective_usd"] is None or opt["objective_usd"] != opt["objective_usd"] else f"{opt['objective_usd']:,.0f}"
        bound = "-" if opt["bound_usd"] is None or opt["bound_usd"] != opt["bound_usd"] else f"{opt['bound_usd']:,.0f}"
        lines.append(
            f"| {gangs} | {engine} | {opt['columns']:,} | {_reached(one, 0.01)} | {_reached(opt, 0.0)} | {objective} | {bound} |"
        )
    lines += ["", "## Reading it", ""]
    lines += notes(frame)
    DOC.write_text("\n".join(lines) + "\n")


def notes(frame: pd.DataFrame) -> list[str]:
    """Observations computed from the figures of this run (no numbers typed by hand)."""
    out = []
    opt = frame[frame.target == "to_opt"].set_index(["gang_runs", "engine"])
    for gangs in frame.gang_runs.unique():
        row = opt.loc[gangs]
        if "highs" in row.index and "cpsat" in row.index:
            h, c = row.loc["highs"], row.loc["cpsat"]
            if h["objective_usd"] == h["objective_usd"] and c["objective_usd"] == c["objective_usd"]:
                diff = (c["objective_usd"] - h["objective_usd"]) / h["objective_usd"]
                out.append(
                    f"- {gangs} gang runs: CP-SAT's plan costs {100 * diff:+.3f}% against HiGHS's, "
                    f"after {c['solve_seconds']:.0f} s and {h['solve_seconds']:.0f} s; its scaling bound is "
                    f"{c['scaling_bound_usd']:.2g} USD."
                )
    one = frame[(frame.target == "to_1pct") & (frame.status == "optimal")]
    for gangs in frame.gang_runs.unique():
        reached = one[one.gang_runs == gangs].sort_values("solve_seconds")
        if len(reached):
            fastest = reached.iloc[0]
            others = ", ".join(f"{r.engine} {r.solve_seconds:.1f} s" for r in reached.iloc[1:].itertuples()) or "no other engine"
            out.append(f"- {gangs} gang runs: first to a proven 1% gap: {fastest.engine} ({fastest.solve_seconds:.1f} s; "
                       f"then {others}).")
        else:
            out.append(f"- {gangs} gang runs: no engine proved a 1% gap within the limit.")
    out.append(
        "- Where CP-SAT's two rows are identical it stopped at the time limit in both: its interleaved search "
        "is deterministic, so the same limit gives the same plan."
    )
    out.append(
        "- CP-SAT's bound is its own bound on the integer-scaled model, lowered by the scaling bound, so it is a "
        "valid bound on the MILP's optimum; its objective is the plan's exact cost, never the scaled objective."
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--gangs", default="0,5,20")
    parser.add_argument("--engines", default="highs,cpsat,pulp-cbc")
    parser.add_argument("--doc-only", action="store_true",
                        help="Rewrite docs/engines.md from benchmarks/results/engines.csv without solving.")
    args = parser.parse_args(argv)
    if args.doc_only:
        frame = pd.read_csv(RESULTS / "engines.csv")
        frame = frame.astype(object).where(frame.notna(), None)
        run = json.loads((RESULTS / "engines.run.json").read_text())
        args = argparse.Namespace(**run["args"])
        write_doc(frame, args, dt.datetime.fromisoformat(run["started"]), run["seconds"])
        return 0
    started = dt.datetime.now()
    clock = time.perf_counter()
    # Without routing: CP-SAT refuses routing rows, and the engines are compared on one model.
    base = without_routing(optimizer.load_instance(BASE))
    rows = []
    with tempfile.TemporaryDirectory(prefix="chipmix-engines-") as scratch:
        for count in (int(c) for c in args.gangs.split(",")):
            instance = with_gang_runs(base, count)
            for engine in args.engines.split(","):
                for target, gap in (("to_1pct", 0.01), ("to_opt", 0.0)):
                    row = {"gang_runs": count, "engine": engine, "target": target, "mip_rel_gap": gap,
                           "time_limit_s": args.time_limit}
                    row.update(run_one(instance, engine, gap, args.time_limit, Path(scratch)))
                    print(row, file=sys.stderr, flush=True)
                    rows.append(row)
    frame = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    frame.to_csv(RESULTS / "engines.csv", index=False)
    seconds = time.perf_counter() - clock
    run = {"args": {k: v for k, v in vars(args).items() if k != "doc_only"}, "started": started.isoformat(), "seconds": seconds}
    (RESULTS / "engines.run.json").write_text(json.dumps(run, indent=2) + "\n")
    write_doc(frame, args, started, seconds)
    print(f"wrote {RESULTS / 'engines.csv'} and {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
