"""``single_site_choice[workload]``: a single_site run uses the pools of one site only."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts


def check(facts: Facts) -> None:
    for workload_id, used in sorted(facts.sites_used.items()):
        if getattr(facts.workloads[workload_id], "single_site", False) and len(used) > 1:
            facts.violations.append(
                f"single_site_choice[{workload_id}]: uses {len(used)} sites ({', '.join(sorted(used))})")
