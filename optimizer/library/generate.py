"""Synthetic instances of any size, for scale benchmarks and property tests.

``generate_instance(pools=P, workloads=W, hours=H, seed=S)`` returns instance
data that always validates and always has a plan: inference demand is priced
(never hard) and sized to about 60% of the useful capacity that can serve it
at the daily peak, and training runs are priced too, sized to about a quarter
of their eligible capacity over their window.  It uses :class:`random.Random`,
whose streams are stable across Python versions, so the same arguments give
the same file everywhere.
"""

from __future__ import annotations

import math
import random
from typing import Any

import yaml

# (id, vendor, dense BF16 TFLOP/s from chips.csv, wall kW per chip in use: an assumption as in
# instances/specs/default.yaml), base on-demand USD per chip-hour near the catalogue's.
_CHIPS = [
    ("h100", "nvidia", 989.4, 1.26, 6.9),
    ("h200", "nvidia", 989.4, 1.26, 7.9),
    ("b200", "nvidia", 2250.0, 1.8, 11.3),
    ("a100", "nvidia", 312.0, 0.72, 3.0),
    ("tpu-v5p", "google", 459.0, 0.65, 4.2),
    ("tpu-v6e", "google", 918.0, 0.55, 2.7),
    ("trn2", "aws", 667.0, 0.75, 5.4),
    ("trn1", "aws", 190.0, 0.35, 1.35),
]
_CLOUDS = ["aws", "gcp", "azure", "fluidstack", "owned"]
_RESERVED_DISCOUNT = 0.4
_SPOT_PRICE_SHARE = 0.35
_SPOT_INTERRUPTION = 0.1


def _diurnal(rng: random.Random, hours: int, peak: float) -> list[float]:
    night = rng.uniform(0.3, 0.6)
    peak_hour = rng.randrange(24)
    values = []
    for hour in range(hours):
        day, clock = divmod(hour, 24)
        shape = 0.5 + 0.5 * math.cos(2 * math.pi * (clock - peak_hour) / 24)
        level = night + (1 - night) * shape
        if day % 7 >= 5:
            level *= 0.75
        values.append(round(peak * level, 4))
    return values


def generate_instance(pools: int, workloads: int, hours: int, seed: int = 0) -> dict[str, Any]:
    if pools < 1 or workloads < 1 or hours < 1:
        raise ValueError("pools, workloads and hours must all be >= 1")
    rng = random.Random(seed)
    n_sites = max(1, math.ceil(pools / 4))
    sites = []
    for index in range(n_sites):
        cloud = _CLOUDS[index % len(_CLOUDS)]
        site: dict[str, Any] = {"id": f"site{index}-{cloud}", "cloud": cloud, "region": f"region-{index}"}
        if cloud == "owned":
            site.update(power_cap_mw=0.0, pue=1.2, energy_usd_per_mwh=round(rng.uniform(40, 90), 2))
        sites.append(site)

    chips_used: dict[str, tuple] = {}
    pool_list = []
    for index in range(pools):
        chip = _CHIPS[index % len(_CHIPS)] if index < len(_CHIPS) else rng.choice(_CHIPS)
        chips_used[chip[0]] = chip
        site = sites[index % n_sites]
        if site["cloud"] == "owned":
            pricing = "owned"
        else:
            pricing = rng.choices(["on_demand", "spot", "reserved"], weights=[5, 2, 2])[0]
        size = 8 * rng.randrange(16, 129)  # 128..1024 chips
        base_price = chip[4] * rng.uniform(0.85, 1.25)
        price = {
            "on_demand": base_price,
            "spot": base_price * _SPOT_PRICE_SHARE,
            "reserved": base_price * (1 - _RESERVED_DISCOUNT),
            "owned": base_price * 0.45,
        }[pricing]
        pool: dict[str, Any] = {
            "id": f"pool{index}-{chip[0]}-{pricing}",
            "site": site["id"],
            "chip": chip[0],
            "pricing": pricing,
            "usd_per_chip_hour": round(price, 4),
            "available": size,
            "block": 8 if chip[1] == "nvidia" else (4 if chip[1] == "google" else 16),
        }
        if pricing == "spot":
            low = rng.uniform(0.2, 0.6)
            pool["available"] = [
                int(size * (low + (1 - low) * (0.5 + 0.5 * math.cos(2 * math.pi * ((h % 24) - 3) / 24))))
                for h in range(hours)
            ]
            pool["interruption_rate"] = _SPOT_INTERRUPTION
        pool_list.append(pool)
    # Owned campuses: cap at 70% of the power their pools would draw flat out, so caps bind.
    for site in sites:
        if site["cloud"] == "owned":
            draw_mw = sum(
                pool["available"] * chips_used[pool["chip"]][3] * site["pue"] / 1000
                for pool in pool_list
                if pool["site"] == site["id"]
            )
            site["power_cap_mw"] = round(0.7 * draw_mw, 3)

    def peak_capacity_pflops(chip_ids: set[str], efficiency: dict[str, float]) -> float:
        total = 0.0
        for pool in pool_list:
            if pool["chip"] in chip_ids:
                chips = min(pool["available"]) if isinstance(pool["available"], list) else pool["available"]
                total += chips * chips_used[pool["chip"]][2] * efficiency[pool["chip"]] / 1000
        return total

    n_inference = max(1, round(workloads * 0.6)) if workloads > 1 else 1
    n_training = workloads - n_inference
    chip_ids = sorted(chips_used)
    workload_list = []
    for index in range(workloads):
        eligible = sorted(rng.sample(chip_ids, k=min(len(chip_ids), rng.randint(2, 5))))
        if index < n_inference:
            efficiency = {c: round(rng.uniform(0.25, 0.45), 3) for c in eligible}
            share = 0.6 / n_inference
            peak = share * peak_capacity_pflops(set(eligible), efficiency)
            workload_list.append(
                {
                    "type": "inference",
                    "id": f"serve{index}",
                    "demand_pflops": _diurnal(rng, hours, peak),
                    "efficiency": efficiency,
                    "unmet_usd_per_pflops_hour": round(rng.uniform(150, 500), 2),
                }
            )
        else:
            efficiency = {c: round(rng.uniform(0.35, 0.5), 3) for c in eligible}
            release = rng.randrange(0, max(1, hours // 3))
            deadline = rng.randrange(min(hours, release + max(1, hours // 3)), hours + 1)
            capacity_eflop = peak_capacity_pflops(set(eligible), efficiency) * 0.0036 * (deadline - release)
            work = max(1.0, round(capacity_eflop * 0.25 / max(1, n_training), 1))
            workload_list.append(
                {
                    "type": "training",
                    "id": f"train{index}",
                    "work_eflop": work,
                    "release_hour": release,
                    "deadline_hour": deadline,
                    "efficiency": efficiency,
                    "short_usd_per_eflop": round(rng.uniform(5, 15), 2),
                }
            )
    chips = [
        {"id": cid, "vendor": vendor, "peak_tflops": tflops, "power_kw": kw}
        for cid, vendor, tflops, kw, _ in (chips_used[c] for c in chip_ids)
    ]
    return {
        "name": f"generated-p{pools}-w{workloads}-h{hours}-s{seed}",
        "hours": hours,
        "description": (
            f"Synthetic instance from `chipmix generate --pools {pools} --workloads {workloads} "
            f"--hours {hours} --seed {seed}`: chip peaks from chips.csv, prices near the catalogue's "
            f"with +/-20% noise, spot at {_SPOT_PRICE_SHARE:.0%} and reserved at "
            f"{1 - _RESERVED_DISCOUNT:.0%} of on-demand, owned campuses capped at 70% of their draw; "
            "all demand priced so a plan always exists."
        ),
        "chips": chips,
        "sites": sites,
        "pools": pool_list,
        "workloads": workload_list,
    }


def render_generated(pools: int, workloads: int, hours: int, seed: int = 0) -> str:
    data = generate_instance(pools, workloads, hours, seed)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
