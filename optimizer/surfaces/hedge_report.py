"""The hedge page: ``chipmix report HEDGE_DIR`` on a folder ``chipmix hedge`` wrote.

It reads the folder's files only (hedge.json, purchases.csv, and each ``scenarios/<name>/``,
whose plan it re-checks against the ``instance.yaml`` beside it) and shows what to buy, the
hedge's value with its bound, VSS and EVPI with the ranges the gaps leave, each scenario's cost
under the hedge, under the base-case purchases and with foresight (a chart), the distribution of
cost over the scenarios (a chart), and the regret of the base-case plan in each scenario.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from optimizer.errors import FieldError, InputError
from optimizer.surfaces.report import _CSS, _money, _table, figure_html, save_chart


def _load(folder: Path) -> tuple[dict, pd.DataFrame, dict[str, str]]:
    try:
        summary = json.loads((folder / "hedge.json").read_text())
        purchases = pd.read_csv(folder / "purchases.csv")
    except (OSError, ValueError) as exc:
        raise InputError(str(folder), [FieldError("hedge.json", f"not a hedge folder ({exc})")]) from None
    from optimizer.input.loading import load_instance
    from optimizer.plans.checker import check_plan

    verdicts = {}
    for row in summary["scenarios"]:
        plan = folder / "scenarios" / row["scenario"]
        report = check_plan(load_instance(plan / "instance.yaml"), plan)
        verdicts[row["scenario"]] = "OK" if report.ok else f"{len(report.violations)} violation(s)"
    return summary, purchases, verdicts


def _charts(frame: pd.DataFrame, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    x = np.arange(len(frame))
    series = [(c, label) for c, label in (("hedged_usd", "hedge"), ("base_held_usd", "base-case purchases"),
                                          ("foresight_usd", "foresight")) if c in frame]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / max(len(series), 1)
    for k, (column, label) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, frame[column], width, label=label)
    ax.set_xticks(x, [f"{s}\n(p {p:g})" for s, p in zip(frame.scenario, frame.probability)], fontsize=9)
    ax.set(title="Cost of each scenario (USD)", ylabel="USD")
    ax.legend(fontsize=9)
    files["cost_by_scenario"] = save_chart(fig, folder, "cost_by_scenario")

    fig, ax = plt.subplots(figsize=(11, 4.8))
    for column, label in series[:2]:
        order = frame.sort_values(column)
        ax.step(order[column], order.probability.cumsum(), where="post", label=label, linewidth=2)
    ax.set(title="Distribution of cost over the scenarios", xlabel="USD", ylabel="probability cost <= x", ylim=(0, 1.05))
    ax.legend(fontsize=9)
    files["cost_distribution"] = save_chart(fig, folder, "cost_distribution")

    if "base_regret_usd" in frame:
        fig, ax = plt.subplots(figsize=(11, 4.2))
        ax.bar(x - 0.2, frame.base_regret_usd, 0.4, label="base-case purchases")
        ax.bar(x + 0.2, frame.hedged_regret_usd, 0.4, label="hedge")
        ax.set_xticks(x, list(frame.scenario), fontsize=9)
        ax.set(title="Regret: cost above foresight in each scenario (USD)", ylabel="USD")
        ax.legend(fontsize=9)
        files["regret"] = save_chart(fig, folder, "regret")
    return files


def write_hedge_report(folder: str | Path, out_html: str | Path) -> dict[str, Path]:
    """Write the hedge page and its PNGs (``<stem>_charts/``); returns the chart files."""
    from optimizer.files import write_text_atomic

    folder, out_html = Path(folder), Path(out_html)
    summary, purchases, verdicts = _load(folder)
    frame = pd.DataFrame(summary["scenarios"])
    frame["checker"] = [verdicts[s] for s in frame.scenario]
    charts = _charts(frame, out_html.parent / f"{out_html.stem}_charts")

    def figure(name: str, caption: str) -> str:
        return figure_html(charts, name, caption)

    def interval(key: str) -> str:
        value = summary.get(key)
        return "-" if not value else f"{_money(value['value'])} (between {_money(value['low'])} and {_money(value['high'])})"

    risk = summary["risk"]
    objective = "expected cost" if not risk["cvar_weight"] else (
        f"{1 - risk['cvar_weight']:g} x expected + {risk['cvar_weight']:g} x CVaR {risk['cvar_alpha']:g}")
    gap = summary.get("gap")
    cards = [("objective", objective), ("hedge (USD)", _money(summary["objective_usd"])),
             ("best bound (USD)", _money(summary["bound_usd"])),
             ("gap", "-" if gap in (None, "inf") else f"{100 * float(gap):.3f}%"),
             ("VSS (USD)", interval("vss_usd")), ("EVPI (USD)", interval("evpi_usd")),
             ("first stage", f"{summary['method']} ({summary['method_reason']})"),
             ("purchases from", summary["chosen_from"]),
             ("checker", "OK" if all(v == "OK" for v in verdicts.values()) else "violations")]
    shown = [c for c in ("scenario", "probability", "hedged_usd", "hedged_status", "base_held_usd", "foresight_usd",
                         "base_regret_usd", "hedged_regret_usd", "unmet_pflops_hours", "short_eflop", "checker")
             if c in frame]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>",
        f"<title>chipmix hedge: {html.escape(summary['instance'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>chipmix hedge: {html.escape(summary['instance'])} over {len(frame)} scenarios</h1>",
        "<p>One set of purchases for every scenario; each scenario's hours are planned with them (the plans are in "
        "<code>scenarios/</code>, each re-checked here against its own instance). VSS is what the hedge saves "
        "against buying for the base case alone; EVPI what knowing the scenario in advance would be worth.</p>",
        '<div class="cards">' + "".join(
            f'<div class="card{" bad" if k == "checker" and v != "OK" else ""}">{html.escape(k)}<b>{html.escape(str(v))}</b></div>'
            for k, v in cards) + "</div>",
        "<h2>What to buy</h2><p>USD: each fee weighted by the scenarios' probabilities.</p>",
        _table(purchases, "{:,.2f}"),
        "<h2>Each scenario</h2>", figure("cost_by_scenario", "Each scenario's cost: hedge, base-case purchases, foresight"),
        _table(frame[shown], "{:,.2f}"),
        "<h2>Cost distribution</h2>", figure("cost_distribution", "Cumulative probability of cost over the scenarios"),
        "<h2>Regret of the base-case plan</h2>",
        figure("regret", "Cost above foresight, per scenario") or "<p>No references were solved (--no-references).</p>",
    ]
    if summary.get("notes"):
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in summary["notes"]] + ["</ul>"]
    parts.append("</body></html>")
    write_text_atomic(out_html, "\n".join(parts))
    return charts
