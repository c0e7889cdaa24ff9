"""Numbers that are not numbers, unbounded sizes, stale plans and half-written plan folders, and
help texts: each refused or handled with a clear message (the service's side is in
tests/test_service_hardening.py)."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import optimizer
from optimizer.input.validate import MAX_MODEL_COLUMNS
from tests.helpers import chipmix, inference, instance_data, pool, site, training

INF = float("inf")


def refused(data, path_fragment: str, reason_fragment: str = "") -> None:
    with pytest.raises(optimizer.InputError) as caught:
        optimizer.instance_from_data(copy.deepcopy(data))
    rendered = caught.value.render()
    assert path_fragment in rendered and reason_fragment in rendered, rendered


@pytest.mark.parametrize("where, change, path", [
    ("price", lambda d: d["pools"][0].update(usd_per_chip_hour=INF), "pools[0](p).usd_per_chip_hour"),
    ("power", lambda d: d["chips"][0].update(power_kw=INF), "chips[0](h100).power_kw"),
    ("pue", lambda d: d["sites"][0].update(pue=INF), "sites[0](cloud).pue"),
    ("energy", lambda d: d["sites"][0].update(energy_usd_per_mwh=INF), "sites[0](cloud).energy_usd_per_mwh"),
    ("cap", lambda d: d["sites"][0].update(power_cap_mw=[1.0, INF]), "sites[0](cloud).power_cap_mw"),
    ("demand", lambda d: d["workloads"][0].update(demand_pflops=math.nan), "workloads[0](serve).demand_pflops"),
    ("unmet", lambda d: d["workloads"][0].update(unmet_usd_per_pflops_hour=INF), "unmet_usd_per_pflops_hour"),
    ("work", lambda d: d["workloads"][1].update(work_eflop=INF), "workloads[1](train).work_eflop"),
    ("short", lambda d: d["workloads"][1].update(short_usd_per_eflop=INF), "short_usd_per_eflop"),
])
def test_infinity_and_nan_are_refused_with_the_field_path(where, change, path):
    data = instance_data(workloads=[inference(), training()])
    change(data)
    refused(data, path)


@pytest.mark.parametrize("field, value, reason", [
    ("available", 10**308, "more than 100,000,000"),
    ("available", 1e308, "whole number of chips"),
    ("usd_per_chip_hour", 1e308, "less than or equal to"),
])
def test_magnitudes_that_would_overflow_are_refused(field, value, reason):
    data = instance_data()
    data["pools"][0][field] = value
    refused(data, f"pools[0](p).{field}", reason)


def test_a_chip_of_1e308_kw_is_refused_not_a_nan_cost():
    data = instance_data()
    data["chips"][0]["power_kw"] = 1e308
    refused(data, "chips[0](h100).power_kw", "less than or equal to 100")


def test_the_limits_are_stated_in_the_json_schema():
    schema = optimizer.Instance.model_json_schema()
    pool_schema = schema["$defs"]["Pool"]["properties"]
    assert pool_schema["usd_per_chip_hour"]["maximum"] == 1e9
    assert schema["properties"]["hours"]["maximum"] == 87_840
    assert any(option.get("maximum") == 100_000_000 for option in pool_schema["available"]["anyOf"])


def test_a_horizon_of_ten_million_hours_is_refused_before_anything_is_built():
    refused({**instance_data(), "hours": 10_000_000}, "hours", "less than or equal to 87840")


def test_a_model_too_large_to_build_is_refused_with_its_size():
    # 87,840 hours x 120 pools for one service: 10.5M allocation columns, over the 10M limit.
    pools = [pool(f"p{i}", available=1) for i in range(120)]
    data = instance_data(hours=87_840, pools=pools, workloads=[inference(demand_pflops=0.5, unmet_usd_per_pflops_hour=1.0)])
    refused(data, "", f"more than the {MAX_MODEL_COLUMNS:,}")


def test_the_cli_refuses_infinity_with_exit_2_and_no_traceback(tmp_path):
    data = instance_data()
    text = yaml.safe_dump(data).replace("usd_per_chip_hour: 1.0", "usd_per_chip_hour: .inf")
    path = tmp_path / "inf.yaml"
    path.write_text(text)
    result = chipmix("solve", path, "--out", tmp_path / "plan")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pools[0](p).usd_per_chip_hour" in result.stderr
    assert not (tmp_path / "plan").exists()


# -- stale plans and plan folders -----------------------------------------------------------------


def test_a_plan_carries_its_instances_fingerprint_and_the_checker_refuses_another(tmp_path):
    data = instance_data(workloads=[inference(demand_pflops=[1.0, 2.0])])
    instance = optimizer.instance_from_data(data)
    plan = optimizer.solve(instance)
    target = plan.write(tmp_path / "plan")
    summary = json.loads((target / "summary.json").read_text())
    assert summary["instance_sha256"] == instance.sha256()
    assert optimizer.check_plan(instance, target).ok
    # The same instance from YAML (keys in another order, defaults spelt out) has the same one.
    spelled = {**data, "pools": [{**data["pools"][0], "block": 1, "interruption_rate": 0.0}]}
    (tmp_path / "same.yaml").write_text(yaml.safe_dump(dict(reversed(list(spelled.items())))))
    assert optimizer.load_instance(tmp_path / "same.yaml").sha256() == instance.sha256()
    edited = copy.deepcopy(data)
    edited["pools"][0]["usd_per_chip_hour"] = 2.0
    report = optimizer.check_plan(optimizer.instance_from_data(edited), target)
    assert len(report.violations) == 1 and "made for another instance" in report.violations[0]


def test_a_failed_solve_leaves_a_plan_the_checker_refuses_for_the_edited_instance(tmp_path):
    data = instance_data(pools=[pool("p", available=2)], workloads=[inference("a"), inference("b")])
    path = tmp_path / "i.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "plan"
    assert chipmix("solve", path, "--out", out).returncode == 0
    data["pools"][0]["available"] = 1  # now the two hard services cannot both be served
    path.write_text(yaml.safe_dump(data))
    assert chipmix("solve", path, "--out", out).returncode == 2
    check = chipmix("check", path, out)
    # One input error (exit 2), not a list of every difference between the two instances.
    assert check.returncode == 2 and "made for another instance" in check.stderr
    assert len(check.stderr.strip().splitlines()) == 1 and "Traceback" not in check.stderr
    report = chipmix("report", out, "--instance", path, "--out", tmp_path / "r.html")
    assert report.returncode == 2 and "made for another instance" in report.stderr and "Traceback" not in report.stderr


def test_a_write_killed_half_way_leaves_the_old_plan_whole_and_no_temporary_folder(tmp_path):
    data = instance_data(workloads=[inference(demand_pflops=[1.0, 2.0])])
    instance = optimizer.instance_from_data(data)
    target = optimizer.solve(instance).write(tmp_path / "plan")
    (target / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    # Another process writes a new plan into the same folder and is killed after two files.
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import os, json, pandas
        import optimizer
        from tests.helpers import instance_data, inference
        data = instance_data(workloads=[inference(demand_pflops=[2.0, 2.0])])
        plan = optimizer.solve(optimizer.instance_from_data(data))
        original, written = pandas.DataFrame.to_csv, []
        def dying(self, path, *args, **kwargs):
            if len(written) == 2:
                os._exit(9)  # killed: no cleanup runs
            written.append(path)
            return original(self, path, *args, **kwargs)
        pandas.DataFrame.to_csv = dying
        plan.write({str(target)!r})
    """))
    root = str(Path(__file__).resolve().parents[1])
    killed = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, env={**os.environ, "PYTHONPATH": root})
    assert killed.returncode == 9, killed.stderr
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # not one new file in it
    assert optimizer.check_plan(instance, target).ok
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".plan.")]
    assert leftovers  # the killed write could not clean up...
    optimizer.solve(instance).write(target)  # ...the next write does
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".plan.")]
    assert (target / "notes.txt").read_text() == "mine" and optimizer.check_plan(instance, target).ok


# -- help ------------------------------------------------------------------------------------------


def test_every_command_has_a_help_that_works():
    from optimizer.surfaces.cli import app

    assert chipmix("--help").returncode == 0
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = chipmix(name, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, (name, result.stderr)
