"""The bundled instances: reproducible from their builder, valid, solvable, checker-clean."""

import importlib.util
from pathlib import Path

import optimizer
from optimizer import SolveStatus
from tests.helpers import solve_checked

INSTANCES = Path(__file__).resolve().parents[1] / "instances"


def load_builder(name):
    spec = importlib.util.spec_from_file_location(name, INSTANCES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builder_reproduces_default_byte_for_byte():
    assert load_builder("build_default").render() == (INSTANCES / "default.yaml").read_text()


def test_default_instance_solves_and_passes_the_checker(tmp_path):
    instance = optimizer.load_instance(INSTANCES / "default.yaml")
    assert instance.hours == 168 and len(instance.pools) == 12
    assert {chip.vendor for chip in instance.chips} == {"nvidia", "google", "aws"}
    assert {site.cloud for site in instance.sites} == {"aws", "gcp", "azure"}
    plan = solve_checked(instance, tmp_path, mip_rel_gap=1e-3)
    assert plan.status is SolveStatus.OPTIMAL and plan.gap <= 1e-3
    # The hard pre-training run is done, in one site.
    pretrain = plan.allocations[plan.allocations.workload == "pretrain-7b"]
    sites = {pool.id: pool.site for pool in instance.pools}
    assert len({sites[p] for p in pretrain.pool}) == 1
    assert plan.short_eflop == 0 or "finetune" in set(plan.shortfall[plan.shortfall.short_eflop > 0].workload)
