"""Lock-in benchmark: what depending on one vendor or one cloud costs, on the instance library.

    python benchmarks/lockin.py [--time-limit 30] [--gap 0.001] [--workers 2]

For each instance: the multi-vendor plan, every single-vendor and single-cloud restriction and the
greedy baseline (one table each); on frontier-lab-week also a shock sweep (Nvidia halved for three
days; demand up 20%), re-optimised and with the base plan's reservations held.  Writes
benchmarks/results/lockin.{csv,json}, benchmarks/results/*.png and docs/benchmarks.md; every number
in that page comes from this run.  Needs the `bench` extra (matplotlib).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import optimizer  # noqa: E402
from optimizer.analyses.lockin import GREEDY, format_cell, restrictions_of, sweep  # noqa: E402
from optimizer.analyses.scenarios import load_scenarios  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
INSTANCES = ["default", "frontier-lab-week", "power-capped-campus", "inference-month"]
SHOCKED = "frontier-lab-week"
#: The shipped sweep example (instances/scenarios/), read as a user's file would be.
SHOCKS_FILE = ROOT / "instances" / "scenarios" / f"{SHOCKED}-shocks.yaml"


def markdown(frame: pd.DataFrame) -> str:
    cols = [("plan", "plan", ""), ("status", "status", ""), ("gap", "gap", "gap"), ("total_usd", "total USD", "usd"),
            ("premium_usd", "premium USD", "usd"), ("premium_pct", "premium", "pct"),
            ("unmet_pflops_hours", "unmet PFLOP/s-h", ""), ("short_eflop", "short EFLOP", ""),
            ("usd_per_delivered_eflop", "USD per delivered EFLOP", "")]
    # The token currencies where the instance speaks them: USD per million tokens, the margin on
    # paying users, and what the restriction does to it against multi.
    cols += [c for c in (("usd_per_mtok", "USD/Mtok", "usd4"), ("compute_margin", "margin", "share"),
                         ("margin_vs_multi_pts", "margin vs multi", "pts"))
             if c[0] in frame.columns and frame[c[0]].notna().any()]
    cols.append(("note", "note", ""))
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(format_cell(row.get(k), kind) for k, _, kind in cols) + " |")
    return "\n".join(lines)


def _save(fig, name: str) -> str:
    fig.tight_layout()
    fig.savefig(RESULTS / name, dpi=110)
    plt.close(fig)
    return name


def chart_costs(frame: pd.DataFrame, name: str) -> str:
    rows = frame[frame.total_usd.notna()]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    colours = ["#1f77b4" if p == "multi" else "#7f7f7f" if p == GREEDY else "#ff7f0e" for p in rows.plan]
    ax.barh(rows.plan, rows.total_usd / 1e6, color=colours)
    ax.set_xlabel("total cost, million USD (penalties for unserved demand included)")
    ax.set_title(f"{name}: cost by plan")
    ax.invert_yaxis()
    return _save(fig, f"cost-by-plan-{name}.png")


def chart_vendor_hours(instance, plan) -> str:
    vendor = {c.id: c.vendor for c in instance.chips}
    chip_of = {p.id: p.chip for p in instance.pools}
    alloc = plan.allocations.assign(vendor=lambda d: d.pool.map(chip_of).map(vendor))
    table = alloc.pivot_table(index="hour", columns="vendor", values="chips", aggfunc="sum").reindex(
        range(instance.hours), fill_value=0).fillna(0)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.stackplot(table.index, [table[c] for c in table.columns], labels=list(table.columns))
    ax.set_xlabel("hour of the week")
    ax.set_ylabel("chips in use")
    ax.set_title(f"{instance.name}: chips by vendor per hour, multi-vendor plan")
    ax.legend(loc="upper right")
    return _save(fig, f"chips-by-vendor-{instance.name}.png")


def chart_shock(frame: pd.DataFrame) -> str:
    shock = frame[(frame.scenario == "nvidia-half-3d")]
    pivot = shock.pivot_table(index="plan", columns="view", values="unmet_pflops_hours", aggfunc="first")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    pivot.plot.barh(ax=ax)
    ax.set_xlabel("unmet inference under the shock, PFLOP/s-hours")
    ax.set_title(f"{SHOCKED}: Nvidia halved for three days")
    ax.invert_yaxis()
    return _save(fig, f"shock-unmet-{SHOCKED}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--gap", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    options = optimizer.SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap, threads=1)
    started = time.time()
    frames, sections = [], []
    for name in INSTANCES:
        instance = optimizer.load_instance(ROOT / "instances" / f"{name}.yaml")
        scenarios = load_scenarios(SHOCKS_FILE, instance) if name == SHOCKED else []
        t0 = time.perf_counter()
        frame = sweep(instance, scenarios, restrictions_of(instance) + [GREEDY], options, workers=args.workers)
        frame.insert(0, "instance", name)
        frames.append(frame)
        print(f"{name}: {len(frame)} rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        base = frame[frame.scenario == "base"]
        text = [f"### {name}\n", markdown(base), "", f"![cost by plan](../benchmarks/results/{chart_costs(base, name)})", ""]
        if name == SHOCKED:
            plan = optimizer.solve(instance, options)
            text += [f"![chips by vendor](../benchmarks/results/{chart_vendor_hours(instance, plan)})", ""]
            for scenario in scenarios:
                for view in ("reoptimised", "reservations_held"):
                    part = frame[(frame.scenario == scenario.name) & (frame.view == view)]
                    text += [f"#### {name} under `{scenario.name}` ({scenario.description}), {view.replace('_', ' ')}\n",
                             markdown(part), ""]
            text += [f"![unmet under the shock](../benchmarks/results/{chart_shock(frame)})", ""]
        sections.append("\n".join(text))
    result = pd.concat(frames, ignore_index=True)
    result.to_csv(RESULTS / "lockin.csv", index=False, float_format="%.10g")
    (RESULTS / "lockin.json").write_text(result.to_json(orient="records", indent=2) + "\n")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    header = f"""# Benchmarks: what lock-in costs

Generated by `python benchmarks/lockin.py --time-limit {args.time_limit:g} --gap {args.gap:g} --workers {args.workers}`
on {when}, on {machine}; the whole run took {time.time() - started:.0f} s. Every number below comes from
that run (also in `benchmarks/results/lockin.csv` and `.json`); do not edit this page by hand.

How to read the tables
- `multi` plans over every pool; `vendor=X` keeps only chips of vendor X, `cloud=Y` only pools in
  cloud Y (owned campuses are the cloud `owned`); `greedy` is the rule of thumb "route each hour's
  demand to the lowest $/FLOP device available" (see `optimizer/analyses/greedy.py`).
- Each solve stops at a {args.gap:.1%} gap or {args.time_limit:g} s; `status` and `gap` say which.
  A premium smaller than the gaps involved is noise, and can even be negative.
- `premium` is a percentage only where the plan serves the same demand as `multi` (within 0.1% of
  the total); otherwise the note says how much more it leaves unserved, and the total includes the
  penalties priced in the instance. `infeasible` rows cannot serve hard demand; the note gives the
  least amount any plan under that restriction must leave unserved.
- USD per delivered EFLOP is spend (usage, reserved, energy, capacity blocks, commitments,
  contract shortfalls and owned pools' fixed cost; no penalties, no restart prices) over useful compute delivered (served inference x 3.6 EFLOP
  per PFLOP/s-hour + training work done).
- frontier-lab-week (and nvidia-shortage) offer instruments to buy: every plan here may buy the
  ones its pools offer; docs/procurement.md compares plans with and without them.
- Restrictions that keep the same pools are solved once and shown under each name (the note says
  so). A plan that is also a plan of a looser problem (a restriction, greedy, a held row) but
  costs less than that problem's plan says the looser plan stopped within its gap.
- `reservations held`: the shock hits the plan whose reservations, capacity blocks and commitment
  levels were already bought in the base case (same restriction); `reoptimised`: the plan is made
  again from scratch for the shocked week.

"""
    # The gang and quota sections are benchmarks/gang.py's and quota.py's: keep them as those runs wrote them.
    text = DOC.read_text() if DOC.exists() else ""
    kept = [m.group(0) for m in re.finditer(r"<!-- (\w+):begin -->.*?<!-- \1:end -->", text, flags=re.S)]
    DOC.write_text(header + "\n".join(sections) + "".join("\n" + section + "\n" for section in kept))
    print(f"wrote {DOC} and {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
