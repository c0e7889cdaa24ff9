"""The chipmix command end to end, in a real subprocess, as a user runs it."""

import json

import pandas as pd
import yaml

from tests.helpers import chipmix, inference, instance_data, pool


def write_instance(tmp_path, data):
    path = tmp_path / "instance.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_solve_writes_the_plan_contract_and_checks_it(tmp_path):
    data = instance_data(
        hours=2,
        pools=[pool("res", pricing="reserved", usd_per_chip_hour=1, available=4), pool("od", usd_per_chip_hour=3)],
        workloads=[inference(demand_pflops=[2, 3])],
    )
    out = tmp_path / "plan"
    result = chipmix("solve", write_instance(tmp_path, data), "--out", out, "--gap", "0")
    assert result.returncode == 0, result.stderr
    assert "checker:" in result.stdout and "plan OK" in result.stdout
    assert "optimal" in result.stdout
    allocations = pd.read_csv(out / "allocations.csv")
    assert list(allocations.columns) == ["hour", "workload", "pool", "chips", "variant"]
    assert allocations.chips.dtype.kind == "i"
    assert list(pd.read_csv(out / "reservations.csv").columns) == ["pool", "chips"]
    assert list(pd.read_csv(out / "purchases.csv").columns) == ["instrument", "kind", "start_hour", "quantity", "unit", "usd"]
    assert list(pd.read_csv(out / "coverage.csv").columns) == ["hour", "pool", "commitment", "chips"]
    assert list(pd.read_csv(out / "energy.csv").columns) == [
        "site", "hour", "facility_mwh", "renewable_mwh", "certificates_mwh", "grid_mwh", "carbon_t"]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == [
        "instance", "instance_sha256", "engine", "method", "status", "solve_seconds", "objective_usd", "bound_usd", "gap",
        "cost_usd", "unmet_pflops_hours", "short_eflop", "energy", "economics", "time_to_first_plan_s",
        "time_to_1pct_s",
    ]
    assert list(pd.read_csv(out / "routing.csv").columns) == ["hour", "workload", "variant", "share"]
    assert list(summary["cost_usd"]) == ["usage", "reserved", "energy", "penalty", "restarts", "blocks", "commitments", "fixed",
                                       "certificates", "carbon", "contract_shortfall", "total"]
    # A reserved chip costs $1 x 2 h = $2.  Reserve 3 (6) beats reserving 2 plus one
    # on-demand chip in hour 1 (4 + 3 = 7).
    assert summary["objective_usd"] == 6 and summary["cost_usd"]["total"] == 6
    assert pd.read_csv(out / "reservations.csv").chips.tolist() == [3]
    assert chipmix("check", tmp_path / "instance.yaml", out).returncode == 0


def test_solve_each_engine_from_the_command_line(tmp_path):
    path = write_instance(tmp_path, instance_data())
    for engine in ("highs", "pulp-cbc", "pulp-highs"):
        result = chipmix("solve", path, "--out", tmp_path / engine, "--engine", engine)
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / engine / "summary.json").read_text())["engine"] == engine


def test_unknown_engine_and_bad_option_exit_2(tmp_path):
    path = write_instance(tmp_path, instance_data())
    bad_engine = chipmix("solve", path, "--engine", "gurobi", "--out", tmp_path / "x")
    assert bad_engine.returncode == 2 and "unknown engine 'gurobi'" in bad_engine.stderr
    bad_gap = chipmix("solve", path, "--gap", "-1", "--out", tmp_path / "x")
    assert bad_gap.returncode == 2 and "mip_rel_gap" in bad_gap.stderr
    assert not (tmp_path / "x").exists()


def test_default_out_dir_is_plans_slash_name(tmp_path):
    path = write_instance(tmp_path, instance_data(name="mine"))
    assert chipmix("solve", path, cwd=tmp_path).returncode == 0
    assert (tmp_path / "plans" / "mine" / "summary.json").exists()


def test_write_model(tmp_path):
    path = write_instance(tmp_path, instance_data())
    result = chipmix("solve", path, "--out", tmp_path / "p", "--write-model", tmp_path / "m.lp")
    assert result.returncode == 0
    assert "inference_demand[serve,0]" in (tmp_path / "m.lp").read_text()


def test_schema_and_validate(tmp_path):
    result = chipmix("schema")
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"chips", "sites", "pools", "workloads"} <= set(schema["properties"])
    ok = chipmix("validate", write_instance(tmp_path, instance_data()))
    assert ok.returncode == 0 and "valid (2 hours, 1 pools, 1 workloads)" in ok.stdout
