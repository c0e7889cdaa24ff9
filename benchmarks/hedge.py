"""Hedge benchmark: the extensive form against the L-shaped method on 3, 10 and 30 scenarios.

    python benchmarks/hedge.py [--counts 3,10,30] [--first-stage-limit 60] [--time-limit 20] [--gap 0.002] [--workers 2]

The week is instances/default.yaml without its spot pools and with its TPU v6e CUD's level left to
choose (:func:`week`: a week whose hours solve in seconds, so that the run measures the first
stage, and whose purchase is a real decision); its scenarios are drawn from a fixed seed (:func:`draw`):
serving demand scaled by 0.8-1.4, and in each scenario one vendor's rented pools (Nvidia, Google
or AWS) cut to 60-100% of their chips, equally likely.  For each count and method one hedge with
``--no-references`` (the first stage and the play of every scenario; the references are the same
for both methods and are left out to keep the run short): first-stage seconds, its bound, the
hedge's value after play, the gap between them, and every scenario plan's checker verdict.
Each method is given the same limit for its first stage (--first-stage-limit) and for each
scenario's play (--time-limit).  Writes
benchmarks/results/hedge.csv and docs/hedge-benchmark.md; every number there comes from this run.
No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optimizer  # noqa: E402
from optimizer.analyses.hedge import hedge  # noqa: E402
from optimizer.analyses.lockin import format_cell  # noqa: E402
from optimizer.analyses.scenarios import Risk, hedge_scenarios_from_data  # noqa: E402
from optimizer.errors import ChipmixError  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "hedge-benchmark.md"
BASE = ROOT / "instances" / "default.yaml"
VENDORS = ("nvidia", "google", "aws")


def week() -> optimizer.Instance:
    data = optimizer.load_instance(BASE).model_dump(mode="json", exclude_none=True)
    data["pools"] = [p for p in data["pools"] if p["pricing"] != "spot"]
    for commitment in data["commitments"]:
        if commitment["kind"] == "usage":  # the held CUD becomes one to choose, up to 1024 chips
            commitment.pop("level", None)
            commitment["max_level"] = 1024
    data["name"] = "default-no-spot-cud-free"
    return optimizer.instance_from_data(data, source="benchmarks/hedge.py: week()")


def draw(instance: optimizer.Instance, count: int, seed: int = 0) -> dict:
    """``count`` equally likely scenarios of demand and one vendor's supply."""
    rng = random.Random(seed)
    serving = [w.id for w in instance.workloads if w.type == "inference"]
    scenarios = []
    for k in range(count):
        demand = round(rng.uniform(0.8, 1.4), 3)
        vendor, supply = rng.choice(VENDORS), round(rng.uniform(0.6, 1.0), 3)
        changes = [{"kind": "demand", "workload": w, "scale": demand} for w in serving]
        changes.append({"kind": "availability", "match": {"vendor": vendor}, "scale": supply})
        scenarios.append({"name": f"s{k:02d}", "probability": 1.0 / count, "changes": changes,
                          "description": f"serving x{demand}, {vendor} supply x{supply}"})
    # Probabilities of 1/count summing to 1 within float noise.
    scenarios[-1]["probability"] = 1.0 - sum(s["probability"] for s in scenarios[:-1])
    return {"scenarios": scenarios}


def run_one(instance, count: int, method: str, args) -> dict:
    scenarios, _ = hedge_scenarios_from_data(draw(instance, count), instance, "drawn")
    started = time.perf_counter()
    try:
        result = hedge(instance, scenarios, Risk(), method=method, workers=args.workers, references=False,
                       first_stage_time_limit_s=args.first_stage_limit, time_limit_s=args.time_limit,
                       mip_rel_gap=args.gap)
    except ChipmixError as exc:  # e.g. the extensive form found no plan within its limit
        return {"scenarios": count, "method": method, "first_stage_status": f"failed: {str(exc)[:120]}",
                "checker_ok": False, "wall_s": round(time.perf_counter() - started, 1)}
    return {
        "scenarios": count, "method": method, "columns": result.first_stage.get("columns"),
        "first_stage_status": result.first_stage.get("status"), "first_stage_s": result.first_stage.get("seconds"),
        "rounds": result.first_stage.get("rounds"), "first_stage_bound_usd": result.first_stage.get("bound_usd"),
        "hedge_usd": result.objective_usd, "bound_usd": result.bound_usd, "gap": result.gap,
        "scenario_gap_max": max(o.plan.gap for o in result.hedged if o.plan is not None and o.plan.gap is not None),
        "checker_ok": result.ok, "wall_s": round(time.perf_counter() - started, 1),
        "bought": json.dumps({k: v for k, v in result.purchases.items() if v}),
    }


def write_doc(frame: pd.DataFrame, args, started: dt.datetime, seconds: float) -> None:
    def cell(value, kind=""):  # as the CLI and docs/benchmarks.md show cells, plus seconds and counts
        if value is None or (isinstance(value, float) and value != value) or kind in ("usd", "gap"):
            return format_cell(value, kind)
        if kind == "s":
            return f"{value:,.1f} s"
        if isinstance(value, float) and value.is_integer():
            return f"{int(value):,}"  # a count read back from the CSV beside missing ones
        return str(value)

    lines = [
        "# Hedge benchmark: extensive form against L-shaped",
        "",
        f"Written by `benchmarks/hedge.py --counts {args.counts} --first-stage-limit {args.first_stage_limit:g} "
        f"--time-limit {args.time_limit:g} --gap {args.gap:g} "
        f"--workers {args.workers}` on {started:%Y-%m-%d} ({seconds / 60:.1f} min in all). Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. The machine is shared and "
        "noisy: compare the two methods within a scenario count, not across runs. Raw figures: "
        "[benchmarks/results/hedge.csv](../benchmarks/results/hedge.csv). How the methods work: [hedge.md](hedge.md).",
        "",
        "The week is `instances/default.yaml` without its spot pools and with its TPU v6e CUD's level to choose "
        "(up to 1024 chips; `benchmarks/hedge.py: week`), so that its hours solve in seconds and the run measures the "
        "first stage; its scenarios are drawn by `benchmarks/hedge.py: draw` from seed 0 "
        "(serving demand x0.8-1.4, one vendor's rented pools at 60-100%, equally likely). First stage: the extensive "
        "form (one model) or the L-shaped rounds, each within the first-stage limit; then every scenario is played with "
        "the purchases (each solve within --time-limit and --gap) and checked. The hedge's bound is the first stage's "
        "(no references were solved here). `gap` is between the hedge's value after play and that bound.",
        "",
        "| scenarios | method | first stage | its columns | rounds | first-stage bound (USD) | hedge (USD) | gap | "
        "worst scenario gap | wall | checker |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in frame.to_dict("records"):
        row = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        lines.append(
            f"| {row['scenarios']} | {row['method']} | {row['first_stage_status']}, {cell(row.get('first_stage_s'), 's')} | "
            f"{cell(row.get('columns'))} | {cell(row.get('rounds'))} | "
            f"{cell(row.get('first_stage_bound_usd'), 'usd')} | {cell(row.get('hedge_usd'), 'usd')} | "
            f"{cell(row.get('gap'), 'gap')} | {cell(row.get('scenario_gap_max'), 'gap')} | {cell(row['wall_s'], 's')} | "
            f"{'OK' if row['checker_ok'] else 'violations'} |")
    lines += ["", "## Reading it", ""]
    for count, group in frame.groupby("scenarios", sort=False):
        by = {row["method"]: row for row in group.to_dict("records")}
        if {"extensive", "l-shaped"} <= set(by):
            e, s = by["extensive"], by["l-shaped"]
            lines.append(
                f"- {count} scenarios: first stage {cell(e['first_stage_s'], 's')} (extensive) against "
                f"{cell(s['first_stage_s'], 's')} (L-shaped, {cell(s['rounds'])} rounds); hedge value "
                f"{cell(e['hedge_usd'], 'usd')} against {cell(s['hedge_usd'], 'usd')} USD; gap "
                f"{cell(e['gap'], 'gap')} against {cell(s['gap'], 'gap')}.")
    DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="3,10,30")
    parser.add_argument("--first-stage-limit", type=float, default=60.0)
    parser.add_argument("--time-limit", type=float, default=20.0, help="per scenario play, s")
    parser.add_argument("--gap", type=float, default=2e-3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--doc-only", action="store_true", help="Rewrite docs/hedge-benchmark.md from hedge.csv.")
    args = parser.parse_args(argv)
    if args.doc_only:
        run = json.loads((RESULTS / "hedge.run.json").read_text())
        write_doc(pd.read_csv(RESULTS / "hedge.csv"), argparse.Namespace(**run["args"]),
                  dt.datetime.fromisoformat(run["started"]), run["seconds"])
        return 0
    instance = week()
    started, clock = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    for count in (int(c) for c in args.counts.split(",")):
        for method in ("extensive", "l-shaped"):
            rows.append(run_one(instance, count, method, args))
            print(rows[-1], file=sys.stderr, flush=True)
            frame = pd.DataFrame(rows)
            frame.to_csv(RESULTS / "hedge.csv", index=False)
            seconds = time.perf_counter() - clock
            run = {"args": {k: v for k, v in vars(args).items() if k != "doc_only"},
                   "started": started.isoformat(), "seconds": round(seconds, 1)}
            (RESULTS / "hedge.run.json").write_text(json.dumps(run, indent=2) + "\n")
            write_doc(frame, args, started, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
