"""``training_min_chips[workload,hour]``: a run with min_chips holds 0 or at least min_chips chips
in each hour (``training_runs`` is the model's "no chips unless it runs"; here it is implied)."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts


def check(facts: Facts) -> None:
    for (workload_id, hour), count in sorted(facts.workload_hour_chips.items()):
        least = getattr(facts.workloads[workload_id], "min_chips", None)
        if least is not None and 0 < count < least:
            facts.violations.append(f"training_min_chips[{workload_id},{hour}]: {count} chips, min_chips {least}")
