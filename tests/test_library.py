"""The instance builder's refusals and the synthetic generator."""

from pathlib import Path

import pytest
import yaml

import optimizer
from optimizer.errors import InputError
from optimizer.library.build import build_instance
from optimizer.library.generate import generate_instance, render_generated
from optimizer.input.loading import instance_from_data
from tests.helpers import chipmix, solve_checked

DATA = Path(__file__).resolve().parents[1] / "instances" / "data"


def write_spec(tmp_path, **changes):
    spec = {
        "name": "tiny",
        "summary": "A tiny test instance.",
        "hours": 24,
        "start": "2026-01-05T00:00:00Z",
        "data_dir": str(DATA),
        "wall_power_per_board_watt": 1.8,
        "assumptions": ["Test assumption."],
        "chips": [{"id": "h100", "accelerator": "H100"}],
        "sites": [{"id": "aws-use2", "cloud": "aws", "region": "us-east-2"}],
        "pools": [
            {"id": "od", "site": "aws-use2", "chip": "h100", "pricing": "on_demand",
             "instance_type": "p5.48xlarge", "available": 64}
        ],
        "workloads": [
            {"type": "inference", "id": "chat", "kind": "llm", "model_params_b": 7,
             "peak_requests_per_s": 20, "efficiency": {"h100": 0.3}, "unmet_usd_per_pflops_hour": 400}
        ],
    }
    spec.update(changes)
    path = tmp_path / "specs" / "tiny.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def build_errors(tmp_path, **changes) -> list[str]:
    with pytest.raises(InputError) as info:
        build_instance(write_spec(tmp_path, **changes))
    return [error.render() for error in info.value.errors]


def test_a_minimal_spec_builds_a_valid_instance_priced_from_the_catalogue(tmp_path):
    data = build_instance(write_spec(tmp_path))
    instance = instance_from_data(data)
    (pool,) = instance.pools
    assert pool.usd_per_chip_hour == pytest.approx(55.04 / 8) and pool.block == 8
    assert instance.chips[0].power_kw == pytest.approx(0.7 * 1.8)
    assert "Test assumption." in instance.description
    assert "p5.48xlarge" in instance.description  # the catalogue row is cited


def test_a_chip_without_published_power_needs_a_stated_number(tmp_path):
    errors = build_errors(tmp_path, chips=[{"id": "h100", "accelerator": "H100"},
                                           {"id": "v6e", "accelerator": "TPU-v6e"}])
    assert any(e.startswith("chips[1](v6e).power_kw: chips.csv publishes no power for TPU-v6e") for e in errors)


def test_an_unknown_instance_type_names_the_field_and_what_exists(tmp_path):
    pools = [{"id": "od", "site": "aws-use2", "chip": "h100", "pricing": "on_demand",
              "instance_type": "p9.huge", "available": 8}]
    (error,) = build_errors(tmp_path, pools=pools)
    assert error.startswith("pools[0](od).instance_type: no catalogue row for aws us-east-2 p9.huge")
    assert "p5.48xlarge" in error


def test_a_price_the_catalogue_lacks_is_an_error_not_a_default(tmp_path):
    # Trainium2 has no spot price in the catalogue, and reserved needs a stated discount.
    chips = [{"id": "h100", "accelerator": "H100"}, {"id": "trn2", "accelerator": "Trainium2", "power_kw": 0.75}]
    pools = [
        {"id": "spot", "site": "aws-use2", "chip": "trn2", "pricing": "spot",
         "instance_type": "trn2.48xlarge", "available": 16},
        {"id": "res", "site": "aws-use2", "chip": "h100", "pricing": "reserved",
         "instance_type": "p5.48xlarge", "available": 16},
    ]
    errors = build_errors(tmp_path, chips=chips, pools=pools)
    assert any(e.startswith("pools[0](spot).pricing: the catalogue has no spot price") for e in errors)
    assert any(e.startswith("reserved_discount: needed for reserved pools") for e in errors)


def test_spec_schema_errors_name_the_field(tmp_path):
    errors = build_errors(tmp_path, hours=0, colour="red")
    assert any(e.startswith("hours:") for e in errors)
    assert any(e.startswith("colour: unknown field") for e in errors)


def test_build_instance_cli_writes_nothing_when_any_spec_is_bad(tmp_path):
    good = write_spec(tmp_path)
    bad = good.with_name("bad.yaml")
    bad.write_text(good.read_text().replace("p5.48xlarge", "p9.huge").replace("name: tiny", "name: bad"))
    result = chipmix("build-instance", str(good), str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pools[0](od).instance_type" in result.stderr
    assert not list(tmp_path.glob("*.yaml"))
    result = chipmix("build-instance", str(good))
    assert result.returncode == 0, result.stderr
    assert optimizer.load_instance(tmp_path / "tiny.yaml").name == "tiny"


def test_extends_adds_assumptions_and_replaces_other_keys(tmp_path):
    base = write_spec(tmp_path)
    child = base.with_name("child.yaml")
    child.write_text(yaml.safe_dump({"extends": "tiny.yaml", "name": "child", "assumptions": ["Child."],
                                     "shocks": [{"pool": "od", "from_hour": 2, "to_hour": 4, "scale": 0.5,
                                                 "reason": "test"}]}))
    data = build_instance(child)
    assert data["name"] == "child"
    assert "Test assumption. Child." in data["description"]
    assert data["pools"][0]["available"][:5] == [64, 64, 32, 32, 64]


# -- generator ------------------------------------------------------------------------------------


def test_generator_is_deterministic_and_the_seed_matters():
    assert render_generated(8, 5, 24, seed=3) == render_generated(8, 5, 24, seed=3)
    assert render_generated(8, 5, 24, seed=3) != render_generated(8, 5, 24, seed=4)


@pytest.mark.parametrize("pools,workloads,hours", [(1, 1, 1), (3, 2, 24), (12, 8, 48), (45, 30, 24)])
def test_generated_instances_are_valid_at_every_size(pools, workloads, hours):
    instance = instance_from_data(generate_instance(pools, workloads, hours, seed=pools))
    assert len(instance.pools) == pools and len(instance.workloads) == workloads
    assert instance.hours == hours


def test_a_generated_instance_solves_and_passes_the_checker(tmp_path):
    data = generate_instance(6, 4, 24, seed=11)
    plan = solve_checked(data, tmp_path, mip_rel_gap=1e-2)
    assert plan.has_plan and plan.gap <= 1e-2


def test_generate_cli_writes_the_same_text_as_the_api(tmp_path):
    target = tmp_path / "g.yaml"
    result = chipmix("generate", "--pools", "5", "--workloads", "3", "--hours", "12", "--seed", "2", "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text() == render_generated(5, 3, 12, seed=2)
    assert chipmix("generate", "--pools", "0", "--workloads", "3", "--hours", "12").returncode == 2


def test_a_spec_away_from_its_data_is_an_input_error_not_a_traceback(tmp_path):
    spec = write_spec(tmp_path, data_dir="no-such-folder")
    result = chipmix("build-instance", str(spec))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data_dir" in result.stderr and "accelerator_offerings.csv" in result.stderr
    assert not (tmp_path / "tiny.yaml").exists()
