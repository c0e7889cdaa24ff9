"""What routing and the envelope do, in tokens, USD per million tokens and margin.

    python benchmarks/economics.py [--time-limit 120] [--gap 0.001] [--doc-only]

- Routing: default and frontier-lab-week as shipped (chat routed between a flagship and an 8B
  draft) against the same instance without routing (the flagship alone, `without_routing`).
- The envelope: envelope-quarter as shipped (2.5M USD budget, research floor 45%), without its
  floor, and at budgets of 2.0M and 3.5M: revenue served, research's share, what the floor costs.

Every plan is solved with HiGHS (direct) and checked by the independent checker. Writes
benchmarks/results/economics.{csv,run.json} and the section of docs/benchmarks.md between its
economics markers.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from sections import ROOT, load_run, save_run, table, write_section

import optimizer
from optimizer.analyses.lockin import format_cell
from optimizer.analyses.scenarios import without_routing
from optimizer.plans.accounting import spend_usd
from optimizer.plans.outcome import check_plan_tables


def cases() -> list[tuple[str, str, optimizer.Instance]]:
    out = []
    for name in ("default", "frontier-lab-week"):
        instance = optimizer.load_instance(ROOT / "instances" / f"{name}.yaml")
        out += [(name, "routed (as shipped)", instance), (name, "flagship only", without_routing(instance))]
    quarter = optimizer.load_instance(ROOT / "instances" / "envelope-quarter.yaml")
    envelope = quarter.envelope

    def variant(**update):
        return quarter.model_copy(update={"envelope": envelope.model_copy(update=update)})

    out += [("envelope-quarter", "budget 2.5M, floor 45% (as shipped)", quarter),
            ("envelope-quarter", "budget 2.5M, no floor", variant(floors={})),
            ("envelope-quarter", "budget 2.0M, floor 45%", variant(budget_usd=2.0e6)),
            ("envelope-quarter", "budget 3.5M, floor 45%", variant(budget_usd=3.5e6))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=120.0, help="per solve, s")
    parser.add_argument("--gap", type=float, default=1e-3)
    parser.add_argument("--doc-only", action="store_true", help="Rewrite the docs section from economics.csv.")
    args = parser.parse_args()
    if args.doc_only:
        write_doc(*load_run("economics"))
        return
    rows = []
    started = time.perf_counter()
    for name, variant, instance in cases():
        plan = optimizer.solve(instance, time_limit_s=args.time_limit, mip_rel_gap=args.gap)
        check = check_plan_tables(instance, plan, variant)
        econ = plan.economics
        eflop = econ["eflop_by_category"]
        draft = plan.routing[plan.routing.variant == "draft"]
        rows.append({
            "instance": name, "variant": variant, "status": plan.status.value, "gap": plan.gap,
            "checker": "OK" if check.ok else check.violations[0],
            "total_usd": plan.cost_usd["total"], "spend_usd": spend_usd(plan.cost_usd),
            "penalty_usd": plan.cost_usd["penalty"], "mtok": econ["mtok"], "usd_per_mtok": econ["usd_per_mtok"],
            "tokens_per_kwh": econ["tokens_per_kwh"], "revenue_usd": econ["revenue_usd"],
            "compute_margin": econ["compute_margin"], "pnl_full_usd": econ["pnl_full_usd"],
            "draft_share_mean": float(draft.share.mean()) if len(draft) else None,
            "research_share": eflop["research"] / sum(eflop.values()) if sum(eflop.values()) else None,
            "research_eflop": eflop["research"], "internal_eflop": eflop["internal"],
            "seconds": round(plan.solve_seconds, 1),
        })
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    run = save_run("economics", frame, time_limit_s=args.time_limit, gap=args.gap,
                   seconds=round(time.perf_counter() - started, 1))
    write_doc(frame, run)


def _budget(variant: str) -> float:
    """The budget a variant's name states ("budget 2.5M, ...")."""
    return float(variant.split()[1].rstrip(",").rstrip("M")) * 1e6


def _binding_sentence(envelope: pd.DataFrame) -> str:
    spent = [(r.variant, r.spend_usd, _budget(r.variant)) for r in envelope.itertuples()]
    # Whole blocks leave a remainder smaller than one more block-hour: within 0.01% is spent.
    binding = [v for v, spend, budget in spent if spend >= budget * (1 - 1e-4)]
    if len(binding) == len(spent):
        worst = max(budget - spend for _, spend, budget in spent)
        return (f"- Every budget binds: each plan spends it to within {format_cell(worst, 'usd')} USD (whole blocks "
                "leave the rest), and, within its gap, serves the most revenue it can buy once the floor is met.")
    return f"- The budget binds in {len(binding)} of {len(spent)} rows: " + ", ".join(
        f"{v} spends {format_cell(s, 'usd')} of {format_cell(b, 'usd')}" for v, s, b in spent) + "."


def write_doc(frame: pd.DataFrame, run: dict) -> None:
    routing = frame[frame.instance != "envelope-quarter"]
    envelope = frame[frame.instance == "envelope-quarter"]
    lines = ["## What routing and the envelope do", "",
             f"Written by `python benchmarks/economics.py --time-limit {run['time_limit_s']:g} --gap {run['gap']:g}` "
             f"on {run['date']} ({run['cores']} cores; {run['seconds']:.0f} s in all). Every plan passed the "
             "independent checker unless its row says otherwise. The metrics and the cost attribution are "
             "defined in docs/formulation.md (Economics).", "",
             "### Routing chat to a draft model", "",
             "Each instance as shipped (chat routed between its flagship and an 8B draft that may take up to 63% of "
             "the tokens) against the same instance served by the flagship alone:", "",
             *table(routing, [("instance", ""), ("variant", ""), ("status", ""), ("gap", "gap"), ("total_usd", "usd"),
                              ("spend_usd", "usd"), ("mtok", "usd"), ("usd_per_mtok", "usd4"),
                              ("tokens_per_kwh", "usd"), ("compute_margin", "share"), ("draft_share_mean", "share"),
                              ("seconds", ""), ("checker", "")]), ""]
    for name in dict.fromkeys(routing.instance):
        rows = routing[routing.instance == name].set_index("variant")
        routed, alone = rows.loc["routed (as shipped)"], rows.loc["flagship only"]
        lines.append(f"- {name}: routing cuts USD per million tokens from {alone.usd_per_mtok:.4g} to "
                     f"{routed.usd_per_mtok:.4g} ({100 * (1 - routed.usd_per_mtok / alone.usd_per_mtok):.0f}% less) and "
                     f"moves the margin on paying users from {alone.compute_margin:.1%} to {routed.compute_margin:.1%}; "
                     f"the plan's total falls by {format_cell(alone.total_usd - routed.total_usd, 'usd')} USD "
                     f"(gaps {format_cell(routed.gap, 'gap')} and {format_cell(alone.gap, 'gap')}).")
    lines += ["", "### The envelope: one budget, a research floor", "",
              "envelope-quarter (2184 hours) as shipped, without its floor, and at two other budgets:", "",
              *table(envelope, [("variant", ""), ("status", ""), ("gap", "gap"), ("spend_usd", "usd"),
                                ("revenue_usd", "usd"), ("penalty_usd", "usd"), ("research_share", "share"),
                                ("research_eflop", "usd"), ("internal_eflop", "usd"), ("compute_margin", "share"),
                                ("seconds", ""), ("checker", "")]), ""]
    rows = envelope.set_index("variant")
    shipped, free = rows.loc["budget 2.5M, floor 45% (as shipped)"], rows.loc["budget 2.5M, no floor"]
    budgets = envelope[envelope.variant.str.contains("floor 45%")].sort_values("spend_usd")
    monotone = bool((budgets.revenue_usd.diff().dropna() >= -1e-6 * budgets.revenue_usd.max()).all())
    lines += [f"- Without the floor the budget gives research {free.research_share:.1%} of the compute; the floor "
                  f"lifts it to {shipped.research_share:.1%} and the plan pays with internal evaluation "
                  f"({format_cell(free.internal_eflop, 'usd')} to {format_cell(shipped.internal_eflop, 'usd')} EFLOP) "
                  f"and revenue ({format_cell(free.revenue_usd, 'usd')} to {format_cell(shipped.revenue_usd, 'usd')} USD): "
                  f"the floor costs {format_cell(shipped.total_usd - free.total_usd, 'usd')} USD of objective (spend "
                  "plus revenue lost plus priced work not done).",
              "- Revenue served " + ("rises" if monotone else "does not always rise") + " with the budget ("
              + ", ".join(f"{format_cell(r.spend_usd, 'usd')} USD spent: {format_cell(r.revenue_usd, 'usd')}"
                          for r in budgets.itertuples()) + ").",
              _binding_sentence(envelope)]
    write_section("economics", lines)


if __name__ == "__main__":
    main()
