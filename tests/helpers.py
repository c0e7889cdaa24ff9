"""Shared test helpers.  Every solve in the tests goes through :func:`solve_checked`,
which writes the plan files and runs the independent checker on them."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

import optimizer

_counter = itertools.count()


def chip(id="h100", vendor="nvidia", peak_tflops=1000.0, power_kw=1.0):
    return {"id": id, "vendor": vendor, "peak_tflops": peak_tflops, "power_kw": power_kw}


def site(id="cloud", cloud="aws", region="us-east-1", **extra):
    return {"id": id, "cloud": cloud, "region": region, **extra}


def pool(id, site="cloud", chip="h100", pricing="on_demand", usd_per_chip_hour=1.0, available=10, **extra):
    return {
        "id": id, "site": site, "chip": chip, "pricing": pricing,
        "usd_per_chip_hour": usd_per_chip_hour, "available": available, **extra,
    }


def inference(id="serve", demand_pflops=1.0, efficiency=None, **extra):
    return {"type": "inference", "id": id, "demand_pflops": demand_pflops,
            "efficiency": efficiency or {"h100": 1.0}, **extra}


def training(id="train", work_eflop=3.6, efficiency=None, **extra):
    return {"type": "training", "id": id, "work_eflop": work_eflop,
            "efficiency": efficiency or {"h100": 1.0}, **extra}


def instance_data(hours=2, chips=None, sites=None, pools=None, workloads=None, name="test"):
    return {
        "name": name,
        "hours": hours,
        "chips": chips or [chip()],
        "sites": sites or [site()],
        "pools": pools or [pool("p")],
        "workloads": workloads or [inference()],
    }


def solve_checked(data_or_instance, tmp_path: Path, **options) -> optimizer.Plan:
    """Solve, write the plan, run the independent checker; fail the test on any violation."""
    instance = (
        data_or_instance
        if isinstance(data_or_instance, optimizer.Instance)
        else optimizer.instance_from_data(copy.deepcopy(data_or_instance))
    )
    options.setdefault("mip_rel_gap", 0.0)
    plan = optimizer.solve(instance, **options)
    if plan.has_plan:
        target = tmp_path / f"plan-{next(_counter)}"
        plan.write(target)
        report = optimizer.check_plan(instance, target)
        assert report.ok, report.render()
        assert report.recomputed["total"] == pytest.approx(plan.cost_usd["total"], rel=1e-9, abs=1e-9)
    return plan


def chips_of(plan: optimizer.Plan, workload: str | None = None, pool: str | None = None, hour: int | None = None) -> int:
    frame = plan.allocations
    if workload is not None:
        frame = frame[frame.workload == workload]
    if pool is not None:
        frame = frame[frame.pool == pool]
    if hour is not None:
        frame = frame[frame.hour == hour]
    return int(frame.chips.sum())


def chipmix(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run the chipmix command in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "optimizer", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )
