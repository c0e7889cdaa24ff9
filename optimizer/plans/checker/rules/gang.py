"""``gang_run[workload]``: a gang run is absent, or holds exactly gang_chips chips of one pool in
each of D consecutive hours inside its window, D = ceil(work / (gang_chips * rate * 0.0036)),
starting at release_hour + a multiple of gang_start_step_hours."""

from __future__ import annotations

import math
from collections import defaultdict

from optimizer.plans.checker.facts import Facts, whole


def check(facts: Facts) -> None:
    violations, pools = facts.violations, facts.pools
    gangs = {w.id: w for w in facts.instance.workloads if getattr(w, "gang_chips", None) is not None}
    rows_of: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in facts.allocation_rows:
        if row["workload"] in gangs and row["pool"] in pools:
            rows_of[row["workload"]].append(row)
    for workload in gangs.values():
        size = workload.gang_chips
        rows = rows_of[workload.id]
        if not rows:
            continue  # not run: its whole work is short (priced, or a training_work violation)
        name = f"gang_run[{workload.id}]"
        used = sorted({row["pool"] for row in rows})
        if len(used) > 1:
            violations.append(f"{name}: uses {len(used)} pools ({', '.join(used)}), a gang run uses one")
            continue
        pool = pools[used[0]]
        odd = sorted({row["chips"] for row in rows if whole(row["chips"]) != size})
        if odd:
            violations.append(f"{name}: holds {', '.join(odd)} chips in some hours, gang_chips is {size}")
        hours = sorted(h for h in (whole(row["hour"]) for row in rows) if h is not None)
        if pool.chip not in workload.efficiency:
            continue  # already reported as a blocks[...] violation
        rate_tflops = facts.rate_tflops(workload, pool)
        needed = max(1, math.ceil(workload.work_eflop / (size * rate_tflops * 3600 * 1e12 / 1e18) - 1e-9))
        step = getattr(workload, "gang_start_step_hours", None) or 1
        if hours != list(range(hours[0], hours[0] + len(hours))):
            violations.append(f"{name}: hours {hours[0]}-{hours[-1]} have gaps; a gang run is never preempted")
        elif (hours[0] - workload.release_hour) % step:
            violations.append(f"{name}: starts in hour {hours[0]}, not on its grid (release_hour "
                              f"{workload.release_hour} + a multiple of gang_start_step_hours {step})")
        elif len(hours) != needed:
            violations.append(f"{name}: runs {len(hours)} hours on {pool.id}, needs exactly {needed}")
