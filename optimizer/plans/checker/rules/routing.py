"""``variant_compute``, ``routing_min_share``, ``routing_max_share``: routing.csv gives each routed
service's share of tokens per variant and hour; the shares of an hour add up to 1, each within its
variant's bounds, and the service serves (reference PFLOP/s) what every variant's chips cover at
its share: min over variants of chips' PFLOP/s / (share x its FLOP per token / the reference's),
within demand.  A hard service short of its demand names the variant whose chips fall short."""

from __future__ import annotations

from optimizer.input.schema import InferenceWorkload
from optimizer.plans.checker.facts import ABS_TOL, REL_TOL, Facts, whole

#: Shares are floats written exactly; their sum may still differ from 1 by rounding.
SHARE_TOL = 1e-6


def routed_services(facts: Facts) -> list[InferenceWorkload]:
    return [w for w in facts.instance.workloads if isinstance(w, InferenceWorkload) and w.variants]


def read(facts: Facts, rows: list[dict[str, str]]) -> None:
    routed = {w.id: w for w in routed_services(facts)}
    for row in rows:
        where = f"routing.csv line {row['_line']}"
        hour, workload = whole(row["hour"]), routed.get(row["workload"])
        try:
            share = float(row["share"])
        except ValueError:
            share = None
        problems = []
        if hour is None or not 0 <= hour < facts.hours:
            problems.append(f"hour {row['hour']!r} is not in 0..{facts.hours - 1}")
        if workload is None:
            problems.append(f"{row['workload']!r} is not a routed service (one with variants)")
        elif row["variant"] not in {v.id for v in workload.variants}:
            problems.append(f"unknown variant {row['variant']!r} of {workload.id!r}")
        if share is None or not 0 <= share <= 1 + SHARE_TOL:
            problems.append(f"share must be a number in [0, 1], got {row['share']!r}")
        if problems:
            facts.violations.append(f"{where}: " + "; ".join(problems))
            continue
        cell = facts.shares[(workload.id, hour)]
        if row["variant"] in cell:
            facts.violations.append(f"{where}: ({hour}, {workload.id}, {row['variant']}) listed twice")
            continue
        cell[row["variant"]] = share


def check(facts: Facts) -> None:
    for workload in routed_services(facts):
        reference = facts.reference_flop(workload)
        for hour in range(facts.hours):
            shares = facts.shares.get((workload.id, hour), {})
            demand = facts.demand_pflops(workload, hour)
            if not shares:
                continue
            total = sum(shares.values())
            if abs(total - 1) > SHARE_TOL:
                facts.violations.append(f"routing[{workload.id},{hour}]: shares add up to {total:.9g}, not 1")
                continue
            served, limit = demand, None
            for variant in workload.variants:
                share = shares.get(variant.id, 0.0)
                name = f"{variant.id}"
                if share < variant.min_share - SHARE_TOL:
                    facts.violations.append(f"routing_min_share[{workload.id}/{name},{hour}]: share {share:.6g} is "
                                            f"below min_share {variant.min_share:g}")
                if share > variant.max_share + SHARE_TOL:
                    facts.violations.append(f"routing_max_share[{workload.id}/{name},{hour}]: share {share:.6g} is "
                                            f"above max_share {variant.max_share:g}")
                if share <= 0:
                    continue
                ratio = facts.flop_per_token(variant) / reference
                chips = facts.variant_pflops.get((workload.id, variant.id, hour), 0.0)
                reach = chips / (share * ratio)
                if reach < served:
                    served, limit = reach, (variant.id, chips, share * ratio * demand)
            facts.delivered_pflops[(workload.id, hour)] = served
            if limit is not None and facts.unmet_price(workload) is None and demand - served > ABS_TOL + REL_TOL * demand:
                variant, chips, needed = limit
                facts.violations.append(f"variant_compute[{workload.id}/{variant},{hour}]: its chips run {chips:.6g} "
                                        f"PFLOP/s, its share of the hard demand needs {needed:.6g}")
    for (workload_id, hour), shares in facts.shares.items():
        workload = facts.workloads[workload_id]
        if shares and facts.demand_pflops(workload, hour) <= 0 and any(shares.values()):
            facts.violations.append(f"routing[{workload_id},{hour}]: shares given in an hour without demand")


