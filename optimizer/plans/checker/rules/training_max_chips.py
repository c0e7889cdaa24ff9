"""``training_max_chips[workload,hour]``: chips a run holds in an hour <= its max_chips."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts


def check(facts: Facts) -> None:
    for (workload_id, hour), count in sorted(facts.workload_hour_chips.items()):
        limit = getattr(facts.workloads[workload_id], "max_chips", None)
        if limit is not None and count > limit:
            facts.violations.append(f"training_max_chips[{workload_id},{hour}]: {count} chips, max_chips {limit}")
