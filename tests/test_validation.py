"""Bad input: every rule gives the file, the field path and the reason."""

import json

import pytest
import yaml

from optimizer import InputError, instance_from_data, load_instance
from tests.helpers import chip, chipmix, inference, instance_data, pool, site, training


def errors_of(data) -> list[str]:
    with pytest.raises(InputError) as caught:
        instance_from_data(data, source="bad.yaml")
    assert caught.value.source == "bad.yaml"
    return [error.render() for error in caught.value.errors]


def assert_error(data, path: str, reason: str) -> None:
    rendered = errors_of(data)
    assert any(line.startswith(path + ":") and reason in line for line in rendered), rendered


def with_pool(**extra):
    return instance_data(pools=[pool("p", **extra)])


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        ({**instance_data(), "colour": "red"}, "colour", "unknown field"),
        (instance_data(chips=[{**chip(), "tdp": 700}]), "chips[0](h100).tdp", "unknown field"),
        (instance_data(chips=[{"id": "h100", "vendor": "nvidia", "power_kw": 1}]), "chips[0](h100).peak_tflops", "missing"),
        (instance_data(chips=[chip(peak_tflops="989")]), "chips[0](h100).peak_tflops", "valid number"),
        (instance_data(chips=[chip(peak_tflops=0)]), "chips[0](h100).peak_tflops", "greater than 0"),
        (instance_data(chips=[chip(vendor="intel")]), "chips[0](h100).vendor", "nvidia"),
        (with_pool(available=-4), "pools[0](p).available", "cannot be negative"),
        (with_pool(available=[4, -1]), "pools[0](p).available", "entry 1: chips cannot be negative"),
        (with_pool(available=8.0), "pools[0](p).available", "whole number of chips"),
        (with_pool(available=True), "pools[0](p).available", "whole number of chips"),
        (with_pool(usd_per_chip_hour=-1), "pools[0](p).usd_per_chip_hour", "greater than or equal to 0"),
        (with_pool(block=0), "pools[0](p).block", "greater than or equal to 1"),
        (with_pool(interruption_rate=1.0), "pools[0](p).interruption_rate", "less than 1"),
        (with_pool(pricing="lease"), "pools[0](p).pricing", "reserved"),
        (instance_data(sites=[site(pue=0.9)]), "sites[0](cloud).pue", "greater than or equal to 1"),
        (instance_data(sites=[site(energy_usd_per_mwh=[1, -2])]), "sites[0](cloud).energy_usd_per_mwh", "entry 1"),
        (instance_data(workloads=[inference(efficiency={"h100": 1.5})]), "workloads[0](serve).efficiency.h100", "less than or equal to 1"),
        (instance_data(workloads=[inference(efficiency={"h100": 0})]), "workloads[0](serve).efficiency.h100", "greater than 0"),
        (instance_data(workloads=[inference(demand_pflops="lots")]), "workloads[0](serve).demand_pflops", "must be a number"),
        (instance_data(workloads=[{**inference(), "type": "batch"}]), "workloads[0](serve)", "does not match any of the expected tags"),
        (instance_data(workloads=[training(work_eflop=0)]), "workloads[0](train).work_eflop", "greater than 0"),
        (instance_data(pools=[pool("bad,id")]), "pools[0](bad,id).id", "match pattern"),
        ({**instance_data(), "hours": 0}, "hours", "greater than or equal to 1"),
    ],
)
def test_schema_rules(data, path, reason):
    assert_error(data, path, reason)


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        (instance_data(pools=[pool("p"), pool("p")]), "pools[1](p).id", "duplicate id 'p'"),
        (instance_data(chips=[chip(), chip()]), "chips[1](h100).id", "duplicate id"),
        (instance_data(pools=[pool("p", site="nowhere")]), "pools[0](p).site", "unknown site 'nowhere'"),
        (instance_data(pools=[pool("p", chip="b300")]), "pools[0](p).chip", "unknown chip 'b300'"),
        (instance_data(workloads=[inference(efficiency={"h100": 1, "mi300x": 1})]), "workloads[0](serve).efficiency.mi300x", "unknown chip"),
        (instance_data(workloads=[inference(sites=["cloud", "mars"])]), "workloads[0](serve).sites[1]", "unknown site 'mars'"),
        (instance_data(hours=3, workloads=[inference(demand_pflops=[1, 2])]), "workloads[0](serve).demand_pflops", "2 entries, expected hours = 3"),
        (instance_data(hours=3, pools=[pool("p", available=[1, 2, 3, 4])]), "pools[0](p).available", "4 entries"),
        (instance_data(hours=3, sites=[site(power_cap_mw=[1])]), "sites[0](cloud).power_cap_mw", "1 entries"),
        (instance_data(hours=3, sites=[site(energy_usd_per_mwh=[1, 2])]), "sites[0](cloud).energy_usd_per_mwh", "2 entries"),
        (instance_data(pools=[pool("p", pricing="reserved", available=[1, 2])]), "pools[0](p).available", "single integer"),
        (instance_data(hours=4, workloads=[training(deadline_hour=5)]), "workloads[0](train).deadline_hour", "past the horizon"),
        (instance_data(hours=4, workloads=[training(release_hour=3, deadline_hour=3)]), "workloads[0](train).release_hour", "no hour before the deadline"),
    ],
)
def test_cross_entity_rules(data, path, reason):
    assert_error(data, path, reason)


def test_every_problem_is_reported_at_once():
    data = instance_data(pools=[pool("p", site="nowhere", chip="b300"), pool("p")])
    assert len(errors_of(data)) == 3


def test_fix_it_hint_lists_the_known_ids():
    rendered = errors_of(instance_data(pools=[pool("p", site="nowhere")]))
    assert "fix: use one of: cloud" in rendered[0]


def test_impossible_hard_inference_demand_names_hours():
    # 10 chips of 1 PFLOP/s: hour 1 needs 12.
    data = instance_data(hours=3, pools=[pool("p", available=10)], workloads=[inference(demand_pflops=[5, 12, 11])])
    assert_error(data, "workloads[0](serve).demand_pflops", "hours 1-2 (worst: hour 1 needs 12 PFLOP/s, at most 10 possible)")


def test_hard_demand_with_no_eligible_pool_is_impossible():
    data = instance_data(workloads=[inference(sites=["cloud"], efficiency={"h100": 1}), inference("other", efficiency={"h100": 1}, sites=[])])
    # An empty allow-list leaves nothing to serve the second workload.
    assert_error(data, "workloads[1](other).demand_pflops", "hours 0-1")


def test_impossible_hard_training_counts_blocks_and_max_chips():
    # Blocks of 8 from 12 available: 8 usable chips; max_chips 4 -> 4 chip-hours per hour, 2 hours = 28.8 EFLOP.
    data = instance_data(pools=[pool("p", available=12, block=8)], workloads=[training(work_eflop=30, max_chips=4)])
    assert_error(data, "workloads[0](train).work_eflop", "exceeds the 28.8 EFLOP")


def test_priced_demand_is_never_impossible():
    data = instance_data(workloads=[inference(demand_pflops=1e6, unmet_usd_per_pflops_hour=10)])
    assert instance_from_data(data).workloads[0].demand_pflops == 1e6


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, "dup.yaml", "name: a\nname: b\nhours: 1\n")
    with pytest.raises(InputError, match="duplicate key 'name'"):
        load_instance(path)


def test_yaml_scientific_notation_is_a_number(tmp_path):
    data = instance_data(workloads=[training(work_eflop=1)])
    text = yaml.safe_dump(data).replace("work_eflop: 1", "work_eflop: 1e1")
    assert load_instance(write(tmp_path, "sci.yaml", text)).workloads[0].work_eflop == 10.0


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("broken.yaml", "name: [unclosed\n", "invalid YAML"),
        ("broken.json", "{\"name\": ", "invalid JSON at line 1"),
        ("list.yaml", "- 1\n- 2\n", "top level must be a mapping"),
    ],
)
def test_unreadable_files(tmp_path, name, text, reason):
    with pytest.raises(InputError, match=reason) as caught:
        load_instance(write(tmp_path, name, text))
    assert caught.value.source.endswith(name)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_instance(tmp_path / "absent.yaml")


def test_json_instances_load(tmp_path):
    path = write(tmp_path, "ok.json", json.dumps(instance_data()))
    assert load_instance(path).name == "test"


def test_cli_bad_input_exit_2_no_traceback_nothing_written(tmp_path):
    data = instance_data(pools=[pool("p", available=-3)])
    path = write(tmp_path, "bad.yaml", yaml.safe_dump(data))
    out = tmp_path / "plan"
    result = chipmix("solve", path, "--out", out)
    assert result.returncode == 2
    assert f"{path}: pools[0](p).available: chips cannot be negative" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".plan")]


def test_cli_check_reports_bad_instance_with_exit_2(tmp_path):
    path = write(tmp_path, "bad.yaml", yaml.safe_dump({**instance_data(), "hourz": 3}))
    result = chipmix("check", path, tmp_path)
    assert result.returncode == 2 and "hourz: unknown field" in result.stderr
