"""Demand shapes derived from the public request traces in ``instances/data/traces``.

Rules (each also written into an instance's description by the builder):

* **Hourly rhythm** from the Alibaba text-to-image trace (2024-11-15..30).
  Load is the sum of ``exec_time_seconds`` (GPU-seconds) per hour.  The first
  four days carry ~90 requests a day before traffic ramps up on 2024-11-19, so
  only 2024-11-19..30 (12 full days) are used.  The shape is separable:
  an hour-of-day profile (mean over the 12 days, smoothed by a centred 3-hour
  circular moving average because single hours swing 5x on a few users) times
  a day level (mean daily load of weekdays, and of Saturdays and Sundays,
  relative to weekdays).  The trace's timestamps carry an unknown constant
  offset, so the clock hour of the peak is the trace's, not necessarily UTC.
* **LLM request size** from the Azure conversation trace: mean prompt plus
  generated tokens per request.  Dense-transformer FLOP per token is
  ``2 x parameters`` (forward pass), so FLOP per request is
  ``2 x params x tokens``.
* **Image request size** from the Alibaba trace: mean of
  ``num_inference_steps x num_images_per_prompt`` per request (denoising
  steps); FLOP per request is that times a per-step cost stated in the spec.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

IMAGE_TRACE = "traces/alibaba_genai_v2026_lora_requests_2024-11-15_to_2024-11-30.csv"
LLM_TRACE = "traces/azure_llm_inference_conv_2023-11-16.csv"
_RAMPED_FROM = date(2024, 11, 19)  # traffic ramps up this day (SOURCES.md)
_LAST_DAY = date(2024, 11, 30)


@dataclass(frozen=True)
class WeeklyRhythm:
    """Relative load by hour of day and by weekday, peak hour of a weekday = 1."""

    hour_of_day: tuple[float, ...]  # 24 values, max 1
    weekday_level: tuple[float, ...]  # 7 values, Monday first; mean weekday = 1

    def at(self, when: datetime) -> float:
        return self.hour_of_day[when.hour] * self.weekday_level[when.weekday()]

    def series(self, start: datetime, hours: int, floor: float) -> list[float]:
        """Relative load for ``hours`` hours from ``start``: ``floor + (1 - floor) x shape``, max <= 1."""
        peak = max(self.hour_of_day) * max(self.weekday_level)
        return [
            floor + (1 - floor) * self.at(start + timedelta(hours=h)) / peak for h in range(hours)
        ]


def weekly_rhythm(data_dir: Path) -> WeeklyRhythm:
    load_by_day_hour: dict[tuple[date, int], float] = {}
    with open(Path(data_dir) / IMAGE_TRACE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            when = datetime.strptime(row["gmt_create"], "%Y-%m-%d %H:%M:%S")
            if not (_RAMPED_FROM <= when.date() <= _LAST_DAY) or not row["exec_time_seconds"]:
                continue
            key = (when.date(), when.hour)
            load_by_day_hour[key] = load_by_day_hour.get(key, 0.0) + float(row["exec_time_seconds"])
    days = [_RAMPED_FROM + timedelta(days=d) for d in range((_LAST_DAY - _RAMPED_FROM).days + 1)]
    raw_hours = [sum(load_by_day_hour.get((day, h), 0.0) for day in days) / len(days) for h in range(24)]
    smooth = [(raw_hours[(h - 1) % 24] + raw_hours[h] + raw_hours[(h + 1) % 24]) / 3 for h in range(24)]
    top = max(smooth)
    hour_of_day = tuple(round(value / top, 6) for value in smooth)

    daily = {day: sum(load_by_day_hour.get((day, h), 0.0) for h in range(24)) for day in days}
    weekdays = [load for day, load in daily.items() if day.weekday() < 5]
    weekday_mean = sum(weekdays) / len(weekdays)
    level = []
    for weekday in range(7):
        if weekday < 5:
            level.append(1.0)  # one or two samples per weekday: too few to tell Monday from Friday
        else:
            same = [load for day, load in daily.items() if day.weekday() == weekday]
            level.append(round(sum(same) / len(same) / weekday_mean, 6))
    return WeeklyRhythm(hour_of_day=hour_of_day, weekday_level=tuple(level))


def mean_llm_tokens_per_request(data_dir: Path) -> float:
    total, count = 0, 0
    with open(Path(data_dir) / LLM_TRACE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            total += int(row["ContextTokens"]) + int(row["GeneratedTokens"])
            count += 1
    return total / count


def mean_image_steps_per_request(data_dir: Path) -> float:
    total, count = 0.0, 0
    with open(Path(data_dir) / IMAGE_TRACE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["num_inference_steps"] and row["num_images_per_prompt"]:
                total += float(row["num_inference_steps"]) * float(row["num_images_per_prompt"])
                count += 1
    return total / count
