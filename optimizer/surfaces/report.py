"""A plan report planners can open or mail: one self-contained HTML file, PNG charts, and an xlsx.

``chipmix report PLAN_DIR --instance INSTANCE [--lockin lockin.csv] [--xlsx report.xlsx]`` reads the
plan files (as any tool would) and the instance, and shows: the headline numbers (status and gap,
total cost and its breakdown, USD per delivered EFLOP, unmet demand, the checker's verdict); chips
in use per hour stacked by vendor and by cloud; cost per day by pricing tier; each capped site's
power against its cap, with the hours where it binds shaded; each pool's utilisation; chips per
workload and pool over time (a heat map); unmet demand per workload (PFLOP/s-hours and EFLOP on
axes of their own); and, given a lock-in table (``chipmix lockin --out DIR`` writes
``lockin.csv``), every restricted plan's cost beside the multi-vendor one, formatted as the CLI
prints it, with plans that serve less than multi marked.  Times are UTC dates when the instance
has a ``start``, hour numbers otherwise.  The HTML embeds its charts as data URIs, so the one file is the report; the
PNGs are also written beside it.  ``--xlsx`` writes the same tables as sheets with native charts,
and the plan itself (allocations, reservations, purchases) as sheets a spreadsheet can pivot.
Needs the ``report`` extra (matplotlib, openpyxl).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.plans.checker import check_plan, require_plan_of
from optimizer.errors import FieldError, InputError
from optimizer.plans.accounting import COST_KEYS, unit_economics
from optimizer.plans.economics import ROUTING_COLUMNS
from optimizer.plans.energy import ENERGY_COLUMNS
from optimizer.plans.instruments import COVERAGE_COLUMNS, PURCHASE_COLUMNS, commitment_utilisation
from optimizer.input.schema import Instance

TIERS = ("owned", "on_demand", "spot", "reserved", "capacity_block")
#: 9-inch charts at 160 dpi: 1440 px wide, sharp on a laptop screen (the page scales them to fit)
#: and in print (an A4 page's text width at about 200 dpi).
CHART_DPI = 160
#: Instrument fees and shortfalls in the cost per day (blocks over their hours, commitment levels
#: over their windows, a contract's shortfall over the horizon).
INSTRUMENT_COSTS = ("blocks", "commitments", "contract shortfall")


@dataclass
class ReportTables:
    """Everything the report shows, as plain frames (the HTML, PNGs and xlsx are views of these)."""

    instance: str
    headline: dict[str, Any]
    chips_by_vendor: pd.DataFrame  # index hour, one column per vendor
    chips_by_cloud: pd.DataFrame  # index hour, one column per cloud
    cost_per_day: pd.DataFrame  # index day, columns: tiers, energy, unmet penalty
    site_power: dict[str, pd.DataFrame]  # capped site -> frame(hour, draw_mw, cap_mw)
    pool_utilisation: pd.DataFrame  # pool, vendor, cloud, pricing, chip_hours_used, chip_hours_available, utilisation, peak_chips
    unmet: pd.DataFrame  # workload, kind, unmet_pflops_hours, short_eflop
    lockin: pd.DataFrame | None = None  # plan, status, total_usd, premium_pct
    purchases: pd.DataFrame = field(default_factory=pd.DataFrame)  # purchases.csv: what to buy
    commitment_use: pd.DataFrame = field(default_factory=pd.DataFrame)  # commitment, kind, hour, level, used, unused, utilisation
    violations: list[str] = field(default_factory=list)
    start: datetime | None = None  # the instance's start (UTC): charts show dates, not hour numbers
    allocations: pd.DataFrame = field(default_factory=pd.DataFrame)  # allocations.csv with vendor, cloud, site, pricing
    reservations: pd.DataFrame = field(default_factory=pd.DataFrame)  # reservations.csv
    #: chips per (workload, pool) pair and hour: index "workload @ pool" (most chip-hours first), columns hours
    workload_pool_chips: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: per site: facility, renewable, certificates, grid MWh and tCO2 (energy.csv summed)
    energy_by_site: pd.DataFrame = field(default_factory=pd.DataFrame)
    quotas: pd.DataFrame = field(default_factory=pd.DataFrame)  # quota, share, achieved_share, facility_mwh
    #: duals.csv (plans/duals.py) when the plan was solved with --duals
    duals: pd.DataFrame | None = None
    #: per service that speaks tokens: M tokens, cost, USD/Mtok, revenue, tokens per kWh and per USD
    services: pd.DataFrame = field(default_factory=pd.DataFrame)
    categories: pd.DataFrame = field(default_factory=pd.DataFrame)  # category, eflop, cost_usd
    routing: pd.DataFrame = field(default_factory=pd.DataFrame)  # index hour, one column per "service/variant" share

    def times(self, hours) -> Any:
        """x values for hour numbers: UTC times when the instance has a start, else the hours."""
        if self.start is None:
            return hours
        return pd.to_datetime(self.start) + pd.to_timedelta(pd.Index(hours, dtype=float), unit="h")


def _hourly(value, hours: int) -> list[float]:
    return list(value) if isinstance(value, tuple) else [float(value)] * hours


def _read(plan_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A plan file; with ``columns``, an empty table where a plan folder has none (one written
    before the file existed: the checker says whether it still holds)."""
    path = plan_dir / name
    if not path.exists() and columns is not None:
        return pd.DataFrame(columns=columns)
    if not path.exists():
        raise InputError(str(plan_dir), [FieldError(name, "missing", "point at a folder written by chipmix solve")])
    return pd.read_csv(path)


def build_tables(instance: Instance, plan_dir: str | Path, lockin_path: str | Path | None = None) -> ReportTables:
    plan_dir = Path(plan_dir)
    require_plan_of(instance, plan_dir)
    summary = json.loads((plan_dir / "summary.json").read_text())
    allocations = _read(plan_dir, "allocations.csv")
    reservations = _read(plan_dir, "reservations.csv")
    unmet = _read(plan_dir, "unmet.csv")
    shortfall = _read(plan_dir, "shortfall.csv")
    purchases = _read(plan_dir, "purchases.csv", PURCHASE_COLUMNS)
    coverage = _read(plan_dir, "coverage.csv", COVERAGE_COLUMNS)
    energy = _read(plan_dir, "energy.csv", ENERGY_COLUMNS)
    duals = _read(plan_dir, "duals.csv") if (plan_dir / "duals.csv").exists() else None
    routing = _read(plan_dir, "routing.csv", ROUTING_COLUMNS) if (plan_dir / "routing.csv").exists() else None
    report = check_plan(instance, plan_dir)

    hours = instance.hours
    chips = {c.id: c for c in instance.chips}
    sites = {s.id: s for s in instance.sites}
    pools = {p.id: p for p in instance.pools}
    workloads = {w.id: w for w in instance.workloads}

    alloc = allocations.copy()
    alloc["vendor"] = [chips[pools[p].chip].vendor for p in alloc.pool]
    alloc["cloud"] = [sites[pools[p].site].cloud for p in alloc.pool]
    alloc["site"] = [pools[p].site for p in alloc.pool]
    alloc["pricing"] = [pools[p].pricing for p in alloc.pool]
    alloc["draw_mw"] = [
        n * chips[pools[p].chip].power_kw * sites[pools[p].site].pue / 1000 for p, n in zip(alloc.pool, alloc.chips)
    ]
    energy_price = {s.id: _hourly(s.energy_usd_per_mwh, hours) for s in instance.sites}
    alloc["energy_usd"] = [mw * energy_price[s][t] for mw, s, t in zip(alloc.draw_mw, alloc.site, alloc.hour)]
    alloc["usage_usd"] = [
        0.0 if pools[p].pricing == "reserved" else n * pools[p].usd_per_chip_hour for p, n in zip(alloc.pool, alloc.chips)
    ]

    every_hour = pd.RangeIndex(hours, name="hour")

    def stacked(by: str) -> pd.DataFrame:
        frame = alloc.pivot_table(index="hour", columns=by, values="chips", aggfunc="sum", fill_value=0)
        return frame.reindex(every_hour, fill_value=0).astype(int)

    # Cost per day: usage by tier, reserved commitments spread evenly over the hours, energy, unmet penalty.
    day = every_hour // 24
    cost = pd.DataFrame(0.0, index=every_hour, columns=[*TIERS, "energy", "unmet penalty"])
    for tier in TIERS:
        cost[tier] = alloc[alloc.pricing == tier].groupby("hour").usage_usd.sum().reindex(every_hour, fill_value=0.0)
    reserved_per_hour = sum(
        int(n) * pools[p].usd_per_chip_hour for p, n in zip(reservations.pool, reservations.chips) if p in pools
    )
    cost["reserved"] += reserved_per_hour
    # Usage a commitment paid for is not billed at the pool's rate; the commitments are billed instead.
    covered = coverage.assign(usd=[float(n) * pools[p].usd_per_chip_hour for p, n in zip(coverage.pool, coverage.chips)],
                              pricing=[pools[p].pricing for p in coverage.pool])
    for tier, rows in covered.groupby("pricing"):
        cost[tier] -= rows.groupby("hour").usd.sum().reindex(every_hour, fill_value=0.0)
    for column in INSTRUMENT_COSTS:
        cost[column] = 0.0
    offers = {o.id: o for o in instance.capacity_blocks}
    commitments = {c.id: c for c in instance.commitments}
    for row in purchases.itertuples():
        if row.kind == "capacity_block":
            first, last = int(row.start_hour), int(row.start_hour) + offers[row.instrument].duration_hours
            cost.loc[first:last - 1, "blocks"] += float(row.usd) / (last - first)
        elif row.kind in ("spend", "usage"):
            c = commitments[row.instrument]
            first, last = c.start_hour, c.end_hour if c.end_hour is not None else hours
            cost.loc[first:last - 1, "commitments"] += float(row.usd) / (last - first)
        else:
            cost["contract shortfall"] += float(row.usd) / hours
    cost["energy"] = alloc.groupby("hour").energy_usd.sum().reindex(every_hour, fill_value=0.0)
    # Renewable energy at its own price instead of the grid's; certificates and priced carbon in
    # the hour they count for.
    carbon_price = instance.carbon_usd_per_t or 0.0
    split = energy.assign(
        delta=[r * (sites[s].renewable_usd_per_mwh - energy_price[s][int(t)])
               for s, t, r in zip(energy.site, energy.hour, energy.renewable_mwh)],
        certificates=[c * (sites[s].rec_usd_per_mwh or 0.0) for s, c in zip(energy.site, energy.certificates_mwh)],
        carbon=energy.carbon_t.fillna(0.0) * carbon_price,
    ).groupby("hour")[["delta", "certificates", "carbon"]].sum().reindex(every_hour, fill_value=0.0)
    cost["energy"] += split["delta"]
    cost["certificates"] = split["certificates"]
    cost["carbon"] = split["carbon"]
    if len(unmet):
        price = {w.id: getattr(w, "unmet_usd_per_pflops_hour", None) or 0.0 for w in instance.workloads}
        penalty = unmet.assign(usd=[u * price[w] for w, u in zip(unmet.workload, unmet.unmet_pflops)])
        cost["unmet penalty"] = penalty.groupby("hour").usd.sum().reindex(every_hour, fill_value=0.0)
    # Restart prices in the hour the chips are added; an owned pool's fixed cost on the chips it
    # lists in each hour, used or not.
    cost["restarts"] = 0.0
    for workload in instance.workloads:
        price = getattr(workload, "restart_usd_per_chip", None)
        if price:
            held_chips = alloc[alloc.workload == workload.id].groupby("hour").chips.sum().reindex(every_hour, fill_value=0)
            cost["restarts"] += held_chips.diff().clip(lower=0).fillna(0.0).to_numpy() * price
    cost["fixed"] = 0.0
    for pool in instance.pools:
        if pool.fixed_usd_per_chip_hour:
            cost["fixed"] += [v * pool.fixed_usd_per_chip_hour for v in _hourly(pool.available, hours)]
    cost_per_day = cost.groupby(day).sum()
    cost_per_day.index.name = "day"
    cost_per_day = cost_per_day.loc[:, (cost_per_day != 0).any(axis=0)]

    site_power = {}
    for site in instance.sites:
        if site.power_cap_mw is None:
            continue
        draw = alloc[alloc.site == site.id].groupby("hour").draw_mw.sum().reindex(every_hour, fill_value=0.0)
        site_power[site.id] = pd.DataFrame({"draw_mw": draw, "cap_mw": _hourly(site.power_cap_mw, hours)}, index=every_hour)

    held = dict(zip(reservations.pool, reservations.chips))
    rows = []
    for pool in instance.pools:
        mine = alloc[alloc.pool == pool.id]
        per_hour = mine.groupby("hour").chips.sum()
        if pool.pricing == "reserved":
            available = int(held.get(pool.id, 0)) * hours
        elif pool.pricing == "capacity_block":  # the chip-hours of the blocks bought
            available = sum(int(row.quantity) * offers[row.instrument].duration_hours for row in purchases.itertuples()
                            if row.kind == "capacity_block" and offers[row.instrument].pool == pool.id)
        else:
            available = sum(_hourly(pool.available, hours))
        used = int(mine.chips.sum())
        rows.append({
            "pool": pool.id, "vendor": chips[pool.chip].vendor, "cloud": sites[pool.site].cloud, "pricing": pool.pricing,
            "chip_hours_used": used, "chip_hours_available": int(available),
            "utilisation": used / available if available else 0.0, "peak_chips": int(per_hour.max()) if len(per_hour) else 0,
        })
    utilisation = pd.DataFrame(rows)

    per_workload = []
    short = dict(zip(shortfall.workload, shortfall.short_eflop))
    unmet_sum = unmet.groupby("workload").unmet_pflops.sum().to_dict() if len(unmet) else {}
    for w in instance.workloads:
        per_workload.append({
            "workload": w.id, "kind": w.type,
            "unmet_pflops_hours": float(unmet_sum.get(w.id, 0.0)), "short_eflop": float(short.get(w.id, 0.0)),
        })
    unmet_table = pd.DataFrame(per_workload)

    costs = summary.get("cost_usd", {})
    economics = unit_economics(instance, costs, summary.get("unmet_pflops_hours", 0.0), summary.get("short_eflop", 0.0))
    headline = {
        "status": summary.get("status"), "engine": summary.get("engine"), "gap": summary.get("gap"),
        "objective_usd": summary.get("objective_usd"), "bound_usd": summary.get("bound_usd"),
        **{f"{k}_usd": costs.get(k) for k in ("total", *COST_KEYS[:-1])},
        **economics,
        "unmet_pflops_hours": summary.get("unmet_pflops_hours"), "short_eflop": summary.get("short_eflop"),
        "checker": "OK" if report.ok else f"{len(report.violations)} violation(s)",
        "hours": hours, "workloads": len(workloads), "pools": len(pools),
    }
    lockin = _read_lockin(lockin_path) if lockin_path is not None else None
    pairs = pd.DataFrame(columns=every_hour)
    if len(alloc):
        pairs = alloc.assign(pair=alloc.workload + " @ " + alloc.pool).pivot_table(
            index="pair", columns="hour", values="chips", aggfunc="sum", fill_value=0).reindex(columns=every_hour,
                                                                                              fill_value=0)
        pairs = pairs.loc[pairs.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    energy_summary = summary.get("energy") or {}
    headline["carbon_t"] = energy_summary.get("carbon_t") if energy_summary.get("carbon_t_by_site") else None
    headline["renewable_share"] = ((energy_summary.get("renewable_mwh", 0.0) / energy_summary["facility_mwh"])
                                   if energy_summary.get("facility_mwh") else None)
    by_site = energy.groupby("site", sort=False)[["facility_mwh", "renewable_mwh", "certificates_mwh", "grid_mwh"]].sum()
    if len(by_site):
        stated = energy.dropna(subset=["carbon_t"]).groupby("site", sort=False).carbon_t.sum()
        by_site["carbon_t"] = stated.reindex(by_site.index)
    quotas = pd.DataFrame([{"quota": q, "sites": ", ".join(next(x.sites for x in instance.renewable_quotas if x.id == q)),
                            **entry} for q, entry in energy_summary.get("quotas", {}).items()])
    econ = summary.get("economics") or {}
    services = pd.DataFrame([{"service": w, **row} for w, row in econ.get("services", {}).items()])
    by_workload = econ.get("cost_usd_by_workload", {})
    categories = pd.DataFrame([{"category": c, "eflop": e,
                                "cost_usd": sum(u for w, u in by_workload.items() if workloads[w].category == c)}
                               for c, e in econ.get("eflop_by_category", {}).items()])
    for key in ("mtok", "usd_per_mtok", "compute_margin", "revenue_usd", "pnl_ex_research_usd", "pnl_full_usd"):
        headline[key] = econ.get(key)
    shares = pd.DataFrame(index=every_hour)
    if routing is not None and len(routing):
        shares = routing.assign(key=routing.workload + "/" + routing.variant).pivot_table(
            index="hour", columns="key", values="share", aggfunc="sum").reindex(every_hour).fillna(0.0)  # unlisted: 0
    return ReportTables(instance.name, headline, stacked("vendor"), stacked("cloud"), cost_per_day, site_power,
                        utilisation, unmet_table, lockin, purchases=purchases,
                        commitment_use=commitment_utilisation(instance, purchases, coverage), violations=report.violations,
                        start=instance.start, allocations=alloc.drop(columns=["draw_mw", "energy_usd", "usage_usd"],
                                                                     errors="ignore"),
                        reservations=reservations, workload_pool_chips=pairs,
                        energy_by_site=by_site.reset_index(), quotas=quotas, duals=duals, services=services,
                        categories=categories, routing=shares)


def _read_lockin(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.is_dir():
        path = path / "lockin.csv"
    if not path.exists():
        raise InputError(str(path), [FieldError("", "file not found", "give the lockin.csv that chipmix lockin --out writes")])
    frame = pd.read_json(path) if path.suffix == ".json" else pd.read_csv(path)
    needed = {"plan", "status", "total_usd"}
    if not needed <= set(frame.columns):
        raise InputError(str(path), [FieldError("", f"needs the columns {sorted(needed)}", "use chipmix lockin --out")])
    # Every row is kept (vendor=, cloud=, greedy, every scenario and view): the table is the
    # user's own lock-in run, shown whole.
    return frame.reset_index(drop=True)


# -- charts --------------------------------------------------------------------------------------

def save_chart(fig, folder: Path, name: str, extra: dict[str, Any] | None = None) -> Path:
    """One chart as ``folder/name.png`` at CHART_DPI, and what it shows as ``name.json`` (each
    axis's title, labels and limits, plus ``extra``): the page carries it as data attributes, so a
    test in a browser can check what a picture cannot say.  The figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=CHART_DPI)
    axes = [{"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "ylim": [float(v) for v in ax.get_ylim()]} for ax in fig.axes if ax.get_label() != "<colorbar>"]
    (folder / f"{name}.json").write_text(json.dumps({"axes": axes, **(extra or {})}))
    plt.close(fig)
    return path


def figure_html(charts: dict[str, Path], name: str, caption: str) -> str:
    """A chart embedded as a data URI in a <figure> (empty when the chart was not drawn), with
    its data (save_chart's json) in a ``data-chart`` attribute."""
    if name not in charts:
        return ""
    data = base64.b64encode(charts[name].read_bytes()).decode()
    meta = charts[name].with_suffix(".json")
    attribute = f' data-chart="{html.escape(meta.read_text())}"' if meta.exists() else ""
    return (f'<figure id="{name}"{attribute}><img class="chart" alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>')


def binding_runs(frame: pd.DataFrame) -> list[tuple[int, int]]:
    """Hours where a site's draw is at its cap (within 0.1%), as runs ``[first, end)``."""
    binding = frame.index[(frame.draw_mw >= frame.cap_mw * (1 - 1e-3) - 1e-9).to_numpy()]
    runs: list[list[int]] = []
    for hour in map(int, binding):
        if runs and hour == runs[-1][1]:
            runs[-1][1] = hour + 1
        else:
            runs.append([hour, hour + 1])
    return [(first, end) for first, end in runs]


#: Most (workload, pool) pairs the heat map shows (those with the most chip-hours); the rest are
#: summed into one row, so the map stays readable on a page.
HEATMAP_ROWS = 30


def _time_axis(ax, tables: ReportTables, hours: int) -> None:
    """Dates and times (UTC) on the x-axis when the instance has a start; hour numbers otherwise."""
    if tables.start is None:
        ax.set_xlabel("hour")
        ax.set_xlim(0, max(hours, 1))
        return
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    first, last = tables.times([0, max(hours, 1)])
    ax.set_xlim(first, last)
    ax.set_xlabel("UTC")


def render_charts(tables: ReportTables, folder: Path) -> dict[str, Path]:
    """One PNG per chart; returns chart id -> file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def save(fig, name: str, extra: dict[str, Any] | None = None) -> None:
        files[name] = save_chart(fig, folder, name, extra)

    for name, frame, title in (("chips_by_vendor", tables.chips_by_vendor, "Chips in use per hour, by vendor"),
                               ("chips_by_cloud", tables.chips_by_cloud, "Chips in use per hour, by cloud")):
        fig, ax = plt.subplots(figsize=(9, 3.4))
        if frame.shape[1]:
            ax.stackplot(tables.times(frame.index), frame.T.values, labels=list(frame.columns), step="post")
            ax.legend(loc="upper left", fontsize=9, ncols=min(len(frame.columns), 6))
        ax.set(title=title, ylabel="chips")
        _time_axis(ax, tables, len(frame.index))
        save(fig, name)

    fig, ax = plt.subplots(figsize=(9, 3.4))
    tables.cost_per_day.plot.bar(stacked=True, ax=ax, width=0.8)
    ax.set(title="Cost per day by pricing tier (USD)", xlabel="day", ylabel="USD")
    if tables.start is not None:
        ax.set_xticklabels([f"{t:%a %d %b}" for t in tables.times(tables.cost_per_day.index * 24)], rotation=0)
        ax.set_xlabel("day (UTC)")
    ax.legend(fontsize=9)
    save(fig, "cost_per_day")

    if tables.site_power:
        fig, ax = plt.subplots(figsize=(9, 3.4))
        top = 0.0
        for site, frame in tables.site_power.items():
            x = tables.times(frame.index)
            line, = ax.plot(x, frame.draw_mw, label=f"{site} draw", drawstyle="steps-post")
            ax.plot(x, frame.cap_mw, linestyle="--", color=line.get_color(), label=f"{site} cap")
            # Shade the hours where the cap binds (draw within 0.1% of it): where one more MW pays.
            label = f"{site}: cap binds"
            for first, end in binding_runs(frame):
                left, right = tables.times([first, end])
                ax.axvspan(left, right, color=line.get_color(), alpha=0.15, linewidth=0, label=label)
                label = None
            top = max(top, float(frame.cap_mw.max()), float(frame.draw_mw.max()))
        ax.set(title="Capped sites: power drawn against the cap (MW)", ylabel="MW")
        _time_axis(ax, tables, tables.headline["hours"])
        # Head-room above the cap, so that a draw at the cap does not sit on the frame.
        ax.set_ylim(bottom=0, top=top * 1.15 if top > 0 else 1.0)
        ax.legend(fontsize=9)
        save(fig, "site_power", {
            "cap_mw_max": max(float(f.cap_mw.max()) for f in tables.site_power.values()),
            "draw_mw_max": max(float(f.draw_mw.max()) for f in tables.site_power.values()),
            "binding_hours": {site: [list(run) for run in binding_runs(f)] for site, f in tables.site_power.items()},
        })

    util = tables.pool_utilisation
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(util) + 1.2))
    ax.barh(util.pool, 100 * util.utilisation)
    ax.invert_yaxis()
    ax.set(title="Pool utilisation (% of chip-hours available; reserved: of chips reserved)", xlabel="%", xlim=(0, 100))
    save(fig, "pool_utilisation")

    # Unmet inference (PFLOP/s-hours) and training short (EFLOP) are different units: one axis each.
    unmet = tables.unmet
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, kind, column, colour, title in (
            (axes[0], "inference", "unmet_pflops_hours", "tab:red", "Unmet inference (PFLOP/s-hours)"),
            (axes[1], "training", "short_eflop", "tab:purple", "Training work short (EFLOP)")):
        mine = unmet[unmet.kind == kind]
        ax.bar(mine.workload, mine[column], color=colour)
        ax.set(title=title)
        ax.set_ylim(bottom=0, top=max(float(mine[column].max()) * 1.15, 1.0) if len(mine) else 1.0)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    save(fig, "unmet")

    pairs = tables.workload_pool_chips
    if len(pairs):
        shown = pairs.iloc[:HEATMAP_ROWS]
        if len(pairs) > HEATMAP_ROWS:
            rest = pairs.iloc[HEATMAP_ROWS:].sum().rename(f"{len(pairs) - HEATMAP_ROWS} other pairs")
            shown = pd.concat([shown, rest.to_frame().T])
        fig, ax = plt.subplots(figsize=(9, 0.22 * len(shown) + 1.6))
        hours = tables.headline["hours"]
        edges = tables.times(range(hours + 1))
        mesh = ax.pcolormesh(edges, range(len(shown) + 1), shown.to_numpy(dtype=float), cmap="viridis",
                             shading="flat")
        ax.set_yticks([i + 0.5 for i in range(len(shown))], labels=list(shown.index), fontsize=7)
        ax.invert_yaxis()
        fig.colorbar(mesh, ax=ax, label="chips", pad=0.01)
        ax.set(title="Chips per workload and pool over time")
        _time_axis(ax, tables, hours)
        save(fig, "workload_pool")

    for name, families, dim, unit in (("duals_site", ("site_power",), "site", "USD per MW-hour"),
                                      ("duals_pool", ("pool_capacity", "reserved_capacity"), "pool", "USD per chip-hour")):
        grid = dual_grid(tables.duals, families, tables.headline["hours"])
        if grid is None:
            continue
        shown = grid.iloc[:HEATMAP_ROWS]
        fig, ax = plt.subplots(figsize=(9, 0.22 * len(shown) + 1.6))
        hours = tables.headline["hours"]
        mesh = ax.pcolormesh(tables.times(range(hours + 1)), range(len(shown) + 1), shown.to_numpy(dtype=float),
                             cmap="magma_r", shading="flat")
        ax.set_yticks([i + 0.5 for i in range(len(shown))], labels=list(shown.index), fontsize=7)
        ax.invert_yaxis()
        fig.colorbar(mesh, ax=ax, label=unit, pad=0.01)
        ax.set(title=f"Shadow prices per {dim} and hour ({unit}; 0: not binding)")
        _time_axis(ax, tables, hours)
        save(fig, name, {"rows": list(shown.index), "max_value": float(shown.to_numpy().max())})

    use = tables.commitment_use
    use = use[use.level > 0] if len(use) else use  # a commitment at level 0 has nothing to show
    if len(use):
        names = list(dict.fromkeys(use.commitment))
        fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.2 * len(names) + 0.6), squeeze=False)
        for ax, name in zip(axes[:, 0], names):
            mine = use[use.commitment == name]
            unit = "USD/h" if mine.kind.iloc[0] == "spend" else "chips"
            ax.stackplot(tables.times(mine.hour), mine.used, mine.unused, labels=["used", "unused"], step="post",
                         colors=["tab:green", "tab:orange"])
            ax.set(title=f"Commitment {name}: used and unused per hour ({unit})", ylabel=unit)
            _time_axis(ax, tables, tables.headline["hours"])
            ax.legend(fontsize=9, loc="upper right")
        save(fig, "commitment_use")

    if tables.routing.shape[1]:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        for column in tables.routing.columns:
            ax.step(tables.times(tables.routing.index), tables.routing[column].values, where="post", label=column)
        ax.set(title="Share of tokens per variant and hour", ylabel="share", ylim=(0, 1.05))
        _time_axis(ax, tables, tables.headline["hours"])
        ax.legend(fontsize=9, loc="upper right")
        save(fig, "routing")

    if tables.lockin is not None and len(tables.lockin):
        from optimizer.analyses.lockin import serves_less

        frame = tables.lockin.dropna(subset=["total_usd"])
        less = serves_less(frame)
        labels = _lockin_labels(frame)
        fig, ax = plt.subplots(figsize=(9, 3.6))
        colours = ["tab:green" if p == "multi" else "tab:gray" if p == "greedy" else "tab:red" for p in frame.plan]
        bars = ax.bar(labels, frame.total_usd, color=colours)
        for bar, short in zip(bars, less):
            if short:  # serves less than multi: hatched, and said in the legend
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        if less.any():
            from matplotlib.patches import Patch
            ax.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch="//",
                                     label="serves less demand than multi")], fontsize=9)
        ax.set(title="Multi-vendor plan against each restricted plan (total USD)", ylabel="USD")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        save(fig, "lockin")
    return files


def dual_grid(duals: pd.DataFrame | None, families: tuple[str, ...], hours: int) -> pd.DataFrame | None:
    """Shadow prices of the row families as index x hour (the largest rows first), or None when
    there are none or none binds."""
    if duals is None:
        return None
    rows = duals[duals.family.isin(families) & duals.hour.notna()]
    if not len(rows) or not (rows.value > 0).any():
        return None
    grid = rows.pivot_table(index="index", columns="hour", values="value", aggfunc="max", fill_value=0.0)
    grid = grid.reindex(columns=range(hours), fill_value=0.0)
    grid = grid[grid.max(axis=1) > 0]
    return grid.loc[grid.sum(axis=1).sort_values(ascending=False, kind="stable").index]


def _lockin_labels(frame: pd.DataFrame) -> list[str]:
    """Each row's plan, with its scenario and view when the table has more than one."""
    parts = [frame[c].astype(str) for c in ("scenario", "view") if c in frame.columns and frame[c].nunique() > 1]
    labels = frame.plan.astype(str)
    for part in parts:
        labels = part + " / " + labels
    return list(labels)


# -- HTML ----------------------------------------------------------------------------------------

def _money(value) -> str:
    return "-" if value is None or value != value else f"{value:,.2f}"


def _table(frame: pd.DataFrame, floats: str = "{:,.4g}") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                text = "-" if value != value else floats.format(value)
                cells.append(f'<td class="num">{text}</td>')
            elif isinstance(value, int):
                cells.append(f'<td class="num">{value:,}</td>')
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _lockin_table_html(frame: pd.DataFrame) -> str:
    """The lock-in rows formatted as the CLI prints them, every row kept, serves-less rows marked."""
    from optimizer.analyses.lockin import format_cell, serves_less, shown_columns

    shown = shown_columns(frame)
    less = serves_less(frame)
    head = "".join(f"<th>{html.escape(header)}</th>" for _, header, _ in shown)
    body = []
    for short, record in zip(less, frame.to_dict("records")):
        cells = []
        for key, _, kind in shown:
            text = html.escape(format_cell(record.get(key), kind))
            if key == "plan" and short:
                text += " <span class='bad'>(serves less)</span>"
            cells.append(f'<td class="num">{text}</td>' if kind else f"<td>{text}</td>")
        row_class = " class=\"less\"" if short else ""
        body.append(f"<tr{row_class}>" + "".join(cells) + "</tr>")
    return f"<table id='lockin-table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1000px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.75rem}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:10rem}
.card b{display:block;font-size:1.2rem}.bad{color:#b00}tr.less{background:#fff4f4}img{max-width:100%}figure{margin:1rem 0}
"""


def _economics_html(tables: ReportTables, figure) -> list[str]:
    """Compute by category, unit economics per service and the routing (where the plan has them)."""
    if not len(tables.categories):
        return []
    parts = ["<h2>Compute envelope and unit economics</h2>",
             "<p>Compute delivered (EFLOP of the chips' useful work) and cost by category; each workload pays its "
             "own chips' usage and energy, its chip-hour share of reserved, block and owned pools' fees, and a "
             "pro-rata share of every other spend (docs/formulation.md, Economics).</p>", _table(tables.categories)]
    if len(tables.services):
        parts += [_table(tables.services)]
    if tables.routing.shape[1]:
        parts += [figure("routing", "Share of each routed service's tokens per variant and hour")]
    return parts


def render_html(tables: ReportTables, charts: dict[str, Path]) -> str:
    h = tables.headline
    gap = "-" if h["gap"] in (None, "inf") else f"{100 * float(h['gap']):.3f}%"
    cards = [
        ("status", f"{h['status']} ({h['engine']})"), ("gap to the bound", gap), ("total cost (USD)", _money(h["total_usd"])),
        ("USD per delivered EFLOP", _money(h["usd_per_delivered_eflop"])),
        ("unmet inference (PFLOP/s-h)", f"{h['unmet_pflops_hours']:,.4g}"),
        ("training short (EFLOP)", f"{h['short_eflop']:,.4g}"),
        ("carbon (tCO2)", "-" if h["carbon_t"] is None else f"{h['carbon_t']:,.4g}"),
        ("renewable share", "-" if h["renewable_share"] is None else f"{h['renewable_share']:.1%}"),
        ("checker", h["checker"]),
    ]
    if h.get("mtok"):
        cards[-1:-1] = [("tokens served (M)", f"{h['mtok']:,.6g}"),
                        ("USD per M tokens", "-" if h["usd_per_mtok"] is None else f"{h['usd_per_mtok']:.4g}")]
    if h.get("revenue_usd"):
        cards[-1:-1] = [("compute margin", "-" if h["compute_margin"] is None else f"{h['compute_margin']:.1%}"),
                        ("P&L ex-research / full (USD)", f"{_money(h['pnl_ex_research_usd'])} / {_money(h['pnl_full_usd'])}")]
    breakdown = pd.DataFrame([{"term": k, "USD": h[f"{k}_usd"]} for k in COST_KEYS])

    def figure(name: str, caption: str) -> str:
        return figure_html(charts, name, caption)

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<link rel='icon' href='data:,'>",  # no favicon request: the file stands alone
        f"<title>chipmix plan report: {html.escape(tables.instance)}</title><style>{_CSS}</style></head><body>",
        f"<h1>chipmix plan report: {html.escape(tables.instance)}</h1>",
        f"<p>{h['hours']} hours, {h['pools']} pools, {h['workloads']} workloads. The best bound is "
        f"{_money(h['bound_usd'])} USD: no plan can cost less.</p>",
        '<div class="cards">' + "".join(
            f'<div class="card{" bad" if k == "checker" and v != "OK" else ""}">{html.escape(k)}<b>{html.escape(str(v))}</b></div>'
            for k, v in cards) + "</div>",
        "<h2>Cost breakdown</h2>", _table(breakdown, "{:,.2f}"),
        "<h2>Chips in use</h2>", figure("chips_by_vendor", "Chips in use per hour, stacked by vendor"),
        figure("chips_by_cloud", "Chips in use per hour, stacked by cloud"),
        figure("workload_pool", f"Chips per workload and pool over time (the {HEATMAP_ROWS} pairs with the most "
                                "chip-hours; the rest summed)"),
        "<h2>Cost per day</h2>", figure("cost_per_day", "Cost per day by pricing tier"),
        _table(tables.cost_per_day.reset_index(), "{:,.2f}"),
        "<h2>Power at capped sites</h2>",
        figure("site_power", "Power drawn at each capped site against its cap") if tables.site_power
        else "<p>No site in this instance has a power cap.</p>",
        "<h2>Energy and carbon</h2>",
        "<p>Facility energy (chip power x PUE) per site: renewable energy used, certificates counted toward "
        "a quota, grid energy and its tonnes of CO2 (location-based: certificates do not lower them; empty "
        "where the site states no grid intensity).</p>", _table(tables.energy_by_site),
        (_table(tables.quotas) if len(tables.quotas) else ""),
        *_economics_html(tables, figure),
        "<h2>Pool utilisation</h2>", figure("pool_utilisation", "Utilisation of each pool"),
        _table(tables.pool_utilisation),
        "<h2>Unmet demand</h2>", figure("unmet", "Unmet demand per workload"), _table(tables.unmet),
    ]
    if len(tables.purchases):
        parts += ["<h2>What to buy</h2>", "<p>Capacity blocks, commitment levels and contract shortfalls, each paid "
                  "whether used or not (purchases.csv).</p>", _table(tables.purchases, "{:,.2f}")]
    if len(tables.commitment_use):
        use = tables.commitment_use
        per = use.groupby("commitment", sort=False).agg(kind=("kind", "first"), level=("level", "first"),
                                                          mean_used=("used", "mean"), hours=("hour", "count"),
                                                          hours_with_unused=("unused", lambda u: int((u > 1e-9).sum())))
        per["utilisation"] = [row.mean_used / row.level if row.level > 0 else None for row in per.itertuples()]
        parts += ["<h2>Commitment use</h2>", figure("commitment_use", "Each commitment's used and unused level per hour"),
                  _table(per.reset_index())]
    if tables.duals is not None:
        from optimizer.plans.duals import binding_sentences

        sentences = binding_sentences(tables.duals)
        parts += ["<h2>Shadow prices</h2>",
                  "<p>What one more unit of each limit is worth with the plan's purchases and run structure held "
                  "(duals.csv; docs/formulation.md). Most valuable first:</p>",
                  ("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in sentences) + "</ul>") if sentences
                  else "<p>No row binds: every shadow price is 0.</p>",
                  figure("duals_site", "Shadow price of each site's power cap per hour") if "duals_site" in charts else "",
                  figure("duals_pool", "Shadow price of each pool's chips per hour") if "duals_pool" in charts else ""]
    if tables.lockin is not None:
        parts += ["<h2>Lock-in: restricted plans</h2>", figure("lockin", "Multi-vendor against restricted plans' cost"),
                  "<p>Premiums are against the multi-vendor plan of the same scenario and view; a row marked "
                  "<span class='bad'>serves less</span> leaves more demand unserved than multi, so its cost is "
                  "not a premium on the same work.</p>",
                  _lockin_table_html(tables.lockin)]
    if tables.violations:
        parts += ["<h2 class='bad'>Checker violations</h2><ul>"]
        parts += [f"<li>{html.escape(v)}</li>" for v in tables.violations[:200]] + ["</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(tables: ReportTables, out_html: Path) -> dict[str, Path]:
    """Write the HTML and its PNGs (``<stem>_charts/``); returns the chart files."""
    from optimizer.files import write_text_atomic

    charts = render_charts(tables, out_html.parent / f"{out_html.stem}_charts")
    write_text_atomic(out_html, render_html(tables, charts))
    return charts


# -- xlsx ----------------------------------------------------------------------------------------

def write_xlsx(tables: ReportTables, path: Path) -> list[str]:
    """The same tables as sheets, each chart a native Excel chart; returns the sheet names."""
    from openpyxl import Workbook
    from openpyxl.chart import AreaChart, BarChart, LineChart, Reference

    book = Workbook()
    summary = book.active
    summary.title = "Summary"
    summary.append(["what", "value"])
    for key, value in tables.headline.items():
        summary.append([key, "inf" if value == float("inf") else value])

    def sheet(title: str, frame: pd.DataFrame):
        ws = book.create_sheet(title)
        ws.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False):
            ws.append([None if isinstance(v, float) and v != v else (v.item() if hasattr(v, "item") else v) for v in row])
        return ws

    def add_chart(ws, chart, frame: pd.DataFrame, first_data_col: int, anchor: str, title: str, y: str) -> None:
        rows = len(frame) + 1
        data = Reference(ws, min_col=first_data_col, max_col=frame.shape[1], min_row=1, max_row=rows)
        categories = Reference(ws, min_col=1, min_row=2, max_row=rows)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(categories)
        chart.title, chart.y_axis.title = title, y
        chart.width, chart.height = 24, 9
        ws.add_chart(chart, anchor)

    for title, frame, label in (("ChipsByVendor", tables.chips_by_vendor, "vendor"), ("ChipsByCloud", tables.chips_by_cloud, "cloud")):
        data = frame.reset_index()
        ws = sheet(title, data)
        chart = AreaChart()
        chart.grouping = "stacked"
        add_chart(ws, chart, data, 2, "H2", f"Chips in use per hour, by {label}", "chips")

    data = tables.cost_per_day.reset_index()
    ws = sheet("CostPerDay", data)
    chart = BarChart()
    chart.grouping, chart.overlap = "stacked", 100
    add_chart(ws, chart, data, 2, "J2", "Cost per day by pricing tier", "USD")

    if tables.site_power:
        frames = [f.rename(columns={"draw_mw": f"{s} draw_mw", "cap_mw": f"{s} cap_mw"}) for s, f in tables.site_power.items()]
        data = pd.concat(frames, axis=1).reset_index()
        ws = sheet("SitePower", data)
        add_chart(ws, LineChart(), data, 2, "H2", "Capped sites: power drawn against the cap", "MW")

    data = tables.pool_utilisation[["pool", "utilisation", "chip_hours_used", "chip_hours_available", "peak_chips",
                                    "vendor", "cloud", "pricing"]]
    ws = sheet("PoolUtilisation", data)
    chart = BarChart()
    chart.type = "bar"
    add_chart(ws, chart, data[["pool", "utilisation"]], 2, "J2", "Pool utilisation (fraction)", "")

    data = tables.unmet[["workload", "unmet_pflops_hours", "short_eflop", "kind"]]
    ws = sheet("Unmet", data)
    add_chart(ws, BarChart(), data[["workload", "unmet_pflops_hours", "short_eflop"]], 2, "F2", "Unmet demand per workload", "")

    # The plan itself, one row per allocation, so it can be pivoted (workload x pool x day...).
    allocations = tables.allocations
    if tables.start is not None and len(allocations):
        allocations = allocations.assign(time_utc=[f"{t:%Y-%m-%d %H:%M}" for t in tables.times(allocations.hour)])
        allocations = allocations[["hour", "time_utc"] + [c for c in allocations.columns if c not in ("hour", "time_utc")]]
    sheet("Allocations", allocations)
    sheet("Reservations", tables.reservations)
    sheet("Purchases", tables.purchases)
    if len(tables.commitment_use):
        sheet("CommitmentUse", tables.commitment_use)
    sheet("Energy", tables.energy_by_site)
    if len(tables.quotas):
        sheet("Quotas", tables.quotas)
    if tables.duals is not None:
        sheet("ShadowPrices", tables.duals)
    if len(tables.categories):
        sheet("Economics", tables.categories)
    if len(tables.services):
        sheet("Services", tables.services)
    if tables.routing.shape[1]:
        sheet("Routing", tables.routing.reset_index())

    if tables.lockin is not None:
        data = tables.lockin[["plan", "total_usd"] + [c for c in tables.lockin.columns if c not in ("plan", "total_usd")]]
        ws = sheet("LockIn", data)
        add_chart(ws, BarChart(), data[["plan", "total_usd"]], 2, "H2", "Multi-vendor against single-vendor cost", "USD")

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    book.save(staging)
    staging.replace(path)
    return book.sheetnames
