"""Build instances/default.yaml: one week, 12 pools over Nvidia, TPU and Trainium in three clouds.

Run ``python instances/build_default.py`` to rewrite the file; the tests check
that it reproduces the committed file byte for byte.  Every number is either
copied from the public data in ``../shared/data`` (cited below, so this
script does not read it at run time) or an assumption stated with its reason
in the instance's ``description``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import yaml

HOURS = 168  # one week, hour 0 = Monday 00:00 UTC

# chips.csv: dense BF16 TFLOP/s.  power_kw is wall power per chip in use, host share included:
# chips.csv gives board power only (700 W for H100/H200) and none for TPU and Trainium, so these
# are assumptions (see ASSUMPTIONS).
CHIPS = [
    {"id": "h100", "vendor": "nvidia", "peak_tflops": 989.4, "power_kw": 1.275},
    {"id": "h200", "vendor": "nvidia", "peak_tflops": 989.4, "power_kw": 1.275},
    {"id": "tpu-v5p", "vendor": "google", "peak_tflops": 459.0, "power_kw": 0.65},
    {"id": "tpu-v6e", "vendor": "google", "peak_tflops": 918.0, "power_kw": 0.55},
    {"id": "trn2", "vendor": "aws", "peak_tflops": 667.0, "power_kw": 0.75},
]

SITES = [
    {"id": "aws-us-east-2", "cloud": "aws", "region": "us-east-2"},
    {"id": "gcp-us-central1", "cloud": "gcp", "region": "us-central1"},
    {"id": "azure-eastus", "cloud": "azure", "region": "eastus"},
]

RESERVED_DISCOUNT = 0.40  # assumption: 1-year commitment price vs on-demand
SPOT_INTERRUPTION = 0.10  # assumption: share of spot compute lost to preemption and restarts

# USD per chip-hour from accelerator_offerings.csv (price_per_accelerator_hour_usd, or spot / chips),
# newer snapshot where the row exists in both:
#   aws p5.48xlarge us-east-2         od 6.88, spot 1.8825   (catalog v8, e385a0d3)
#   aws p5en.48xlarge us-east-2       od 10.6                (catalog v7, 27f67dd4; no v8 price)
#   aws trn2.48xlarge us-east-2       od 5.37275             (catalog v7, 27f67dd4; only Trainium2 price)
#   gcp tpu-v5p-8 us-central1         od 4.2, spot 3.71/4 chips = 0.9275 (catalog v8, 8427bbff)
#   gcp tpu-v6e-8 us-central1         od 2.7, spot 0.57      (catalog v8, 8427bbff)
#   gcp a3-highgpu-8g us-central1     od 43.07/8 = 5.38375   (catalog v8 spot-check in SOURCES.md)
#   azure Standard_ND96isr_H100_v5    od 12.29               (catalog v6, 098741e7)
POOLS = [
    ("aws-h100-od", "aws-us-east-2", "h100", "on_demand", 6.88, 256, 8, 0.0),
    ("aws-h100-spot", "aws-us-east-2", "h100", "spot", 1.8825, "spot", 8, SPOT_INTERRUPTION),
    ("aws-h200-od", "aws-us-east-2", "h200", "on_demand", 10.6, 128, 8, 0.0),
    ("aws-trn2-od", "aws-us-east-2", "trn2", "on_demand", 5.37275, 256, 16, 0.0),
    ("aws-trn2-reserved", "aws-us-east-2", "trn2", "reserved", 5.37275 * (1 - RESERVED_DISCOUNT), 512, 16, 0.0),
    ("gcp-v5p-od", "gcp-us-central1", "tpu-v5p", "on_demand", 4.2, 256, 4, 0.0),
    ("gcp-v5p-spot", "gcp-us-central1", "tpu-v5p", "spot", 0.9275, "spot", 4, SPOT_INTERRUPTION),
    ("gcp-v6e-od", "gcp-us-central1", "tpu-v6e", "on_demand", 2.7, 512, 8, 0.0),
    ("gcp-v6e-spot", "gcp-us-central1", "tpu-v6e", "spot", 0.57, "spot", 8, SPOT_INTERRUPTION),
    ("gcp-h100-od", "gcp-us-central1", "h100", "on_demand", 5.38375, 128, 8, 0.0),
    ("azure-h100-od", "azure-eastus", "h100", "on_demand", 12.29, 256, 8, 0.0),
    ("azure-h100-reserved", "azure-eastus", "h100", "reserved", 12.29 * (1 - RESERVED_DISCOUNT), 256, 8, 0.0),
]

# Useful fraction of peak (assumptions: serving is memory-bound, training reaches ~40% MFU).
SERVING_EFFICIENCY = {"h100": 0.30, "h200": 0.40, "tpu-v5p": 0.30, "tpu-v6e": 0.35, "trn2": 0.25}
TRAINING_EFFICIENCY = {"h100": 0.40, "h200": 0.42, "tpu-v5p": 0.45, "tpu-v6e": 0.40, "trn2": 0.35}

ASSUMPTIONS = [
    "Prices: list prices from the SkyPilot catalogue snapshots in shared/data (historical, not live).",
    "Power: wall power per chip in use, host share included: H100/H200 1.275 kW (a DGX H100 draws "
    "10.2 kW for 8 GPUs); TPU v5p 0.65 kW, TPU v6e 0.55 kW, Trainium2 0.75 kW (not published; "
    "scaled from board power of chips of similar throughput). Cloud prices include power, so no "
    "site is capped or energy-priced here.",
    f"Reserved pools: {RESERVED_DISCOUNT:.0%} below on-demand (typical 1-year commitment; no reserved "
    "price in the catalogue), paid for all 168 hours.",
    f"Spot pools: {SPOT_INTERRUPTION:.0%} of compute lost to preemption; available spot capacity "
    "swings daily between 25% and 100% of the pool (more at night).",
    "Serving efficiency (useful fraction of peak): H100 0.30, H200 0.40 (more HBM), TPU v5p 0.30, "
    "TPU v6e 0.35, Trainium2 0.25; training: 0.40 / 0.42 / 0.45 / 0.40 / 0.35.",
    "Demand: chat is a 70B-parameter model at 2 x 70e9 FLOP per token, 180k tokens/s at the daily "
    "peak and 45% of it at night, 20% lower at weekends; images run on GPUs and TPU v6e only, with "
    "a weekday/weekend rhythm.",
]


def _spot_available(size: int) -> list[int]:
    """Spot capacity over the week: most at night (UTC), a quarter of the pool at the day's peak."""
    out = []
    for hour in range(HOURS):
        phase = math.cos(2 * math.pi * ((hour % 24) - 3) / 24)  # 1 at 03:00, -1 at 15:00
        share = 0.625 + 0.375 * phase
        out.append(int(size * share))
    return out


def _diurnal(peak: float, night_share: float, weekend_share: float, peak_hour: int) -> list[float]:
    values = []
    for hour in range(HOURS):
        day, hour_of_day = divmod(hour, 24)
        shape = 0.5 + 0.5 * math.cos(2 * math.pi * (hour_of_day - peak_hour) / 24)
        level = night_share + (1 - night_share) * shape
        if day >= 5:
            level *= weekend_share
        values.append(round(peak * level, 3))
    return values


def build() -> dict:
    tokens_per_second = 180_000
    chat_peak_pflops = tokens_per_second * 2 * 70e9 / 1e15  # 25.2 PFLOP/s
    pools = []
    for pool_id, site, chip, pricing, price, available, block, interruption in POOLS:
        entry = {
            "id": pool_id,
            "site": site,
            "chip": chip,
            "pricing": pricing,
            "usd_per_chip_hour": round(price, 6),
            "available": _spot_available(256) if available == "spot" else available,
            "block": block,
        }
        if interruption:
            entry["interruption_rate"] = interruption
        pools.append(entry)
    return {
        "name": "default",
        "hours": HOURS,
        "start": "2026-01-05T00:00:00Z",
        "description": "One week, 12 pools of Nvidia H100/H200, TPU v5p/v6e and Trainium2 in AWS, GCP "
        "and Azure; two inference services and two training runs. Built by "
        "instances/build_default.py. Assumptions: " + " ".join(ASSUMPTIONS),
        "chips": CHIPS,
        "sites": SITES,
        "pools": pools,
        "workloads": [
            {
                "type": "inference",
                "id": "chat",
                "demand_pflops": _diurnal(chat_peak_pflops, 0.45, 0.80, peak_hour=16),
                "efficiency": SERVING_EFFICIENCY,
                "unmet_usd_per_pflops_hour": 400.0,
                "description": "LLM chat serving; unmet demand priced at ~10x the cheapest serving cost.",
            },
            {
                "type": "inference",
                "id": "images",
                "demand_pflops": _diurnal(6.0, 0.30, 0.60, peak_hour=14),
                "efficiency": {k: SERVING_EFFICIENCY[k] for k in ("h100", "h200", "tpu-v6e")},
                "unmet_usd_per_pflops_hour": 150.0,
                "description": "Text-to-image serving (GPUs and TPU v6e only).",
            },
            {
                "type": "training",
                "id": "pretrain-7b",
                "work_eflop": 90000.0,
                "deadline_hour": HOURS,
                "efficiency": TRAINING_EFFICIENCY,
                "max_chips": 1024,
                "single_site": True,
                "description": "9e22 FLOP pre-training run that must finish within the week in one site.",
            },
            {
                "type": "training",
                "id": "finetune",
                "work_eflop": 12000.0,
                "release_hour": 24,
                "deadline_hour": 120,
                "efficiency": {k: TRAINING_EFFICIENCY[k] for k in ("h100", "h200", "tpu-v5p", "tpu-v6e")},
                "max_chips": 256,
                "short_usd_per_eflop": 8.0,
                "description": "1.2e22 FLOP fine-tune between Tuesday and Saturday; work not done is priced.",
            },
        ],
    }


def render() -> str:
    header = "# Generated by instances/build_default.py; edit that script, not this file.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, default_flow_style=None, width=100)


if __name__ == "__main__":
    target = Path(__file__).with_name("default.yaml")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
