"""``training_restart[workload,hour]``: every chip a run holds beyond what it held the hour before
(hours >= 1) costs its restart_usd_per_chip: the cost term ``restarts``."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts


def check(facts: Facts) -> None:
    for workload in facts.instance.workloads:
        price = getattr(workload, "restart_usd_per_chip", None)
        if not price:
            continue
        held = [facts.workload_hour_chips.get((workload.id, hour), 0) for hour in range(facts.hours)]
        added = sum(max(now - before, 0) for before, now in zip(held, held[1:]))
        facts.costs["restarts"] += added * price
