"""Units and instance semantics that every stage shares: the input checks, the model, accounting.

The independent checker (:mod:`optimizer.plans.checker`) states these again in its own words on
purpose: it shares no code with model building.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: One TFLOP/s sustained for one hour, in EFLOP.
EFLOP_PER_TFLOPS_HOUR = 3600 * 1e12 / 1e18
#: One PFLOP/s sustained for one hour, in EFLOP.
EFLOP_PER_PFLOPS_HOUR = 3.6


def hourly_array(value, hours: int, missing: float = float("nan")):
    """An hourly field (a number, a list of one per hour, or None) as a float array of ``hours``."""
    import numpy as np

    if value is None:
        return np.full(hours, missing)
    if isinstance(value, (tuple, list)):
        return np.asarray(value, dtype=float)
    return np.full(hours, float(value))


def gang_duration_hours(work_eflop: float, gang_chips: int, rate_tflops: float) -> int:
    """D = ceil(work_eflop / (gang_chips * rate * 0.0036)) hours; a ratio within 1e-9 of a
    whole number counts as that number, so float noise never adds an hour."""
    return max(1, math.ceil(work_eflop / (gang_chips * rate_tflops * EFLOP_PER_TFLOPS_HOUR) - 1e-9))


def hour_ranges(hours: Sequence[int]) -> str:
    """Compress [3, 4, 5, 9] into '3-5, 9' (for messages)."""
    ranges: list[str] = []
    start = previous = None
    for hour in list(hours) + [None]:
        if start is not None and (hour is None or hour != previous + 1):
            ranges.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if hour is not None and start is None:
            start = hour
        previous = hour
    return ", ".join(ranges)
