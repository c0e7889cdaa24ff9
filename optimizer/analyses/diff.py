"""Plan against plan (``chipmix diff PLAN_A PLAN_B``): what changed in cost, where the chips
went, and when.

Reads the two plan folders as any tool would (summary.json, allocations.csv, reservations.csv,
purchases.csv) with the instance each was made for, so pools can be named by vendor and cloud.
The plans may be of different instances (a shocked scenario, a restriction): a pool in one only
counts on its side.  Every figure is B minus A.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from optimizer.input.schema import Instance
from optimizer.plans.checker import require_plan_of

#: Hours listed as "changed most" (by chips moved).
TOP_HOURS = 10


@dataclass(frozen=True)
class PlanDiff:
    cost: pd.DataFrame  # term, a_usd, b_usd, change_usd (summary.json cost_usd, total last)
    chip_hours: pd.DataFrame  # by, value, a, b, change: chip-hours by vendor, cloud and pricing
    hours: pd.DataFrame  # hour, (time_utc,) a_chips, b_chips, moved_chips: the hours where most chips moved
    purchases: pd.DataFrame  # instrument or reserved pool, a, b, change (quantities)
    headline: dict  # status, gap and total of each side

    def to_json(self) -> dict:
        return {"headline": self.headline, **{name: json.loads(getattr(self, name).to_json(orient="records"))
                                               for name in ("cost", "chip_hours", "hours", "purchases")}}


def _read_plan(instance: Instance, folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    require_plan_of(instance, folder, "give the instance this plan was made for (--instance-b for PLAN_B)")

    def table(name: str, columns: list[str]) -> pd.DataFrame:
        path = folder / name
        return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)

    return (json.loads((folder / "summary.json").read_text()), table("allocations.csv", ["hour", "workload", "pool", "chips"]),
            table("reservations.csv", ["pool", "chips"]),
            table("purchases.csv", ["instrument", "kind", "start_hour", "quantity"]))


def _labelled(instance: Instance, allocations: pd.DataFrame) -> pd.DataFrame:
    pools = {p.id: p for p in instance.pools}
    chips = {c.id: c for c in instance.chips}
    sites = {s.id: s for s in instance.sites}
    return allocations.assign(
        vendor=[chips[pools[p].chip].vendor for p in allocations.pool],
        cloud=[sites[pools[p].site].cloud for p in allocations.pool],
        pricing=[pools[p].pricing for p in allocations.pool],
    )


def diff_plans(instance_a: Instance, plan_a: str | Path, plan_b: str | Path,
               instance_b: Instance | None = None) -> PlanDiff:
    instance_b = instance_b or instance_a
    summary_a, alloc_a, held_a, bought_a = _read_plan(instance_a, Path(plan_a))
    summary_b, alloc_b, held_b, bought_b = _read_plan(instance_b, Path(plan_b))
    alloc_a, alloc_b = _labelled(instance_a, alloc_a), _labelled(instance_b, alloc_b)

    terms = list(dict.fromkeys([*summary_a["cost_usd"], *summary_b["cost_usd"]]))
    terms = [t for t in terms if t != "total"] + ["total"]
    cost = pd.DataFrame({"term": terms,
                         "a_usd": [float(summary_a["cost_usd"].get(t, 0.0)) for t in terms],
                         "b_usd": [float(summary_b["cost_usd"].get(t, 0.0)) for t in terms]})
    cost["change_usd"] = cost.b_usd - cost.a_usd

    parts = []
    for by in ("vendor", "cloud", "pricing"):
        a = alloc_a.groupby(by).chips.sum()
        b = alloc_b.groupby(by).chips.sum()
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1).fillna(0).astype(int)
        parts.append(both.reset_index(names="value").assign(by=by))
    chip_hours = pd.concat(parts, ignore_index=True)[["by", "value", "a", "b"]]
    chip_hours["change"] = chip_hours.b - chip_hours.a

    # Chips moved in an hour: the sum over (workload, pool) of |B - A|, so a workload moved from
    # one pool to another counts both the chips it left and those it took.
    key = ["hour", "workload", "pool"]
    # A routed service has a row per variant on one pool: summed first, so each key merges once.
    a_chips, b_chips = (frame.groupby(key, as_index=False).chips.sum() for frame in (alloc_a, alloc_b))
    merged = a_chips.merge(b_chips, on=key, how="outer", suffixes=("_a", "_b")).fillna(0)
    merged["moved"] = (merged.chips_b - merged.chips_a).abs()
    per_hour = merged.groupby("hour").agg(a_chips=("chips_a", "sum"), b_chips=("chips_b", "sum"),
                                          moved_chips=("moved", "sum")).astype(int).reset_index()
    hours = per_hour[per_hour.moved_chips > 0].sort_values(["moved_chips", "hour"], ascending=[False, True],
                                                           kind="stable").head(TOP_HOURS).reset_index(drop=True)
    if instance_a.start is not None:
        start = pd.Timestamp(instance_a.start)
        hours.insert(1, "time_utc", [f"{start + pd.Timedelta(hours=int(h)):%a %Y-%m-%d %H:%M}" for h in hours.hour])

    def bought(held: pd.DataFrame, purchases: pd.DataFrame) -> pd.Series:
        items = {f"reserved {row.pool}": float(row.chips) for row in held.itertuples()}
        for row in purchases.itertuples():
            name = row.instrument if row.kind != "capacity_block" else f"{row.instrument} @ hour {int(row.start_hour)}"
            items[name] = items.get(name, 0.0) + float(row.quantity)
        return pd.Series(items, dtype=float)

    both = pd.concat([bought(held_a, bought_a).rename("a"), bought(held_b, bought_b).rename("b")], axis=1).fillna(0.0)
    purchases = both.reset_index(names="item")
    purchases["change"] = purchases.b - purchases.a

    def side(summary: dict) -> dict:
        return {"instance": summary.get("instance"), "status": summary.get("status"), "gap": summary.get("gap"),
                "total_usd": summary["cost_usd"].get("total")}

    headline = {"a": side(summary_a), "b": side(summary_b),
                "change_usd": float(summary_b["cost_usd"]["total"] - summary_a["cost_usd"]["total"]),
                "chips_moved": int(merged.moved.sum())}
    return PlanDiff(cost, chip_hours, hours, purchases, headline)


def within_gaps(diff: PlanDiff) -> bool:
    """Whether the cost change is no larger than what the two plans' gaps leave open: then the
    change may be the solvers', not the plans' (each plan is within its gap of its own optimum)."""
    slack = 0.0
    for side in ("a", "b"):
        gap, total = diff.headline[side]["gap"], diff.headline[side]["total_usd"]
        if gap in (None, "inf") or total is None:
            return True
        slack += float(gap) * abs(float(total))
    return abs(diff.headline["change_usd"]) <= slack
