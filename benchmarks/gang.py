"""What gang scheduling and cluster-shaped runs cost: frontier-lab-week as shipped against the same
week with its pre-training run preemptible, and with no min_chips or restart price.

    python benchmarks/gang.py [--time-limit 300] [--gap 0.001] [--doc-only]

Variants of instances/frontier-lab-week.yaml, each solved once (HiGHS, direct) and checked by the
independent checker:

- ``shipped``: the pre-training segment is a gang run (8192 chips of one pool, one unbroken
  span); the other runs have min_chips and a restart price;
- ``preemptible``: the pre-training run takes any chips in any hours (up to 8192, in one site,
  as its single-site ancestor did), the other runs as shipped;
- ``no-shape``: the pre-training run preemptible and no min_chips or restart price anywhere:
  the ragged plan a cluster could not run.

A difference between two plans each stopped at a gap is an interval, from the plans and their
bounds: [bound_a - plan_b, plan_a - bound_b].  Writes benchmarks/results/gang.{csv,run.json}
and the section of docs/benchmarks.md between its gang markers.
"""

from __future__ import annotations

import argparse
import copy
import time

import pandas as pd
from sections import ROOT, interval, load_run, save_run, table, write_section

import optimizer
from optimizer.analyses.lockin import format_cell
from optimizer.input.loading import read_document
from optimizer.plans.outcome import check_plan_tables

INSTANCE = "frontier-lab-week"
GANG_RUN = "pretrain-frontier"


def variants(data: dict) -> dict[str, dict]:
    shipped = copy.deepcopy(data)
    preemptible = copy.deepcopy(data)
    for workload in preemptible["workloads"]:
        if workload["id"] == GANG_RUN:
            chips = workload.pop("gang_chips")
            workload.update(max_chips=chips, single_site=True)
    no_shape = copy.deepcopy(preemptible)
    for workload in no_shape["workloads"]:
        workload.pop("min_chips", None)
        workload.pop("restart_usd_per_chip", None)
    return {"shipped": shipped, "preemptible": preemptible, "no-shape": no_shape}


def ragged_hours(plan, workload: str, hours: int) -> int:
    """Hours (from hour 1) in which the run's chips change from the hour before: a resize or a restart."""
    held = plan.allocations[plan.allocations.workload == workload].groupby("hour").chips.sum()
    held = held.reindex(range(hours), fill_value=0)
    return int((held.diff().iloc[1:] != 0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=300.0, help="per solve, s")
    parser.add_argument("--gap", type=float, default=1e-3)
    parser.add_argument("--doc-only", action="store_true", help="Rewrite the docs section from gang.csv.")
    args = parser.parse_args()
    if args.doc_only:
        write_doc(*load_run("gang"))
        return
    data = read_document(ROOT / "instances" / f"{INSTANCE}.yaml")
    rows = []
    started = time.perf_counter()
    for name, variant in variants(data).items():
        instance = optimizer.instance_from_data(variant, source=f"{INSTANCE} ({name})")
        plan = optimizer.solve(instance, time_limit_s=args.time_limit, mip_rel_gap=args.gap)
        check = check_plan_tables(instance, plan, name)
        runs = [w.id for w in instance.workloads if w.type == "training"]
        rows.append({
            "variant": name, "status": plan.status.value, "checker": "OK" if check.ok else check.violations[0],
            "total_usd": plan.cost_usd["total"], "bound_usd": plan.bound_usd, "gap": plan.gap,
            "restarts_usd": plan.cost_usd.get("restarts", 0.0), "unmet_pflops_hours": plan.unmet_pflops_hours,
            "resizes": sum(ragged_hours(plan, run, instance.hours) for run in runs if run != GANG_RUN),
            "pretrain_resizes": ragged_hours(plan, GANG_RUN, instance.hours), "seconds": round(plan.solve_seconds, 1),
        })
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    run = save_run("gang", frame, instance=INSTANCE, time_limit_s=args.time_limit, gap=args.gap,
                   seconds=round(time.perf_counter() - started, 1))
    write_doc(frame, run)


def write_doc(frame: pd.DataFrame, run: dict) -> None:
    columns = [("variant", ""), ("status", ""), ("gap", "gap"), ("total_usd", "usd"), ("bound_usd", "usd"),
               ("restarts_usd", "usd"), ("unmet_pflops_hours", ""), ("resizes", ""), ("pretrain_resizes", ""),
               ("seconds", ""), ("checker", "")]
    lines = ["## What gang scheduling and cluster-shaped runs cost", "",
             f"Written by `python benchmarks/gang.py --time-limit {run['time_limit_s']:g} --gap {run['gap']:g}` on "
             f"{run['date']} ({run['cores']} cores; {run['seconds']:.0f} s in all): `{INSTANCE}` as shipped (its "
             "pre-training segment a gang run of 8192 chips of one pool; the research runs and the fine-tune with "
             "min_chips and a 1 USD restart price per chip added), the same week with the pre-training run "
             "preemptible (up to 8192 chips, one site), and with no min_chips or restart price at all. "
             "`resizes` counts the hours in which a preemptible run's chips change from the hour before.", "",
             *table(frame, columns)]
    rows = frame.set_index("variant")
    gang_low, gang_high = interval(rows.loc["shipped"], rows.loc["preemptible"])
    shape_low, shape_high = interval(rows.loc["preemptible"], rows.loc["no-shape"])
    total = frame.set_index("variant").total_usd["shipped"]
    lines += ["", f"- Gang-scheduling the pre-training segment costs between {format_cell(gang_low, 'usd')} and "
                  f"{format_cell(gang_high, 'usd')} USD over the week ({100 * gang_low / total:.2f}% to "
                  f"{100 * gang_high / total:.2f}% of the plan), the interval the two plans' gaps leave.",
              f"- min_chips and the restart price together cost between {format_cell(shape_low, 'usd')} and "
              f"{format_cell(shape_high, 'usd')} USD, restart fees included (a lower end of 0 means the gaps "
              "cannot tell it from nothing: a constraint never lowers the optimum).",
              "- Each interval is [bound of the constrained plan - the looser plan, the constrained plan - bound "
              "of the looser], so it holds whatever the solvers left open."]
    lines += [f"- {note}" for note in run.get("notes", [])]
    write_section("gang", lines)


if __name__ == "__main__":
    main()
