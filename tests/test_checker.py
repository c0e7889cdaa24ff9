"""The independent checker catches every kind of broken plan file, by name."""

import json

import pandas as pd
import pytest
import yaml

import optimizer
from optimizer.plans.checker import COST_KEYS as CHECKER_COST_KEYS
from optimizer.plans.checker import SUMMARY_KEYS as CHECKER_SUMMARY_KEYS
from optimizer.plans.checker import OPTIONAL_SUMMARY_KEYS
from optimizer.plans.plan import COST_KEYS, SUMMARY_KEYS
from tests.helpers import chip, chipmix, inference, instance_data, pool, site, training

DATA = instance_data(
    hours=3,
    chips=[chip("h100"), chip("tpu", vendor="google", peak_tflops=500, power_kw=0.5)],
    sites=[site("cloud"), site("campus", cloud="owned", power_cap_mw=0.004, pue=1.25, energy_usd_per_mwh=50)],
    pools=[
        pool("od", site="cloud", usd_per_chip_hour=4, available=16, block=8),
        pool("own", site="campus", pricing="owned", usd_per_chip_hour=1, available=8),
        pool("res", site="cloud", chip="tpu", pricing="reserved", usd_per_chip_hour=1.5, available=8, block=4),
    ],
    workloads=[
        inference("chat", demand_pflops=[4, 6, 2], efficiency={"h100": 0.5, "tpu": 0.5}),
        training("pretrain", work_eflop=20, efficiency={"h100": 0.4}, release_hour=0, deadline_hour=3,
                 max_chips=12, single_site=False, short_usd_per_eflop=50),
    ],
)


@pytest.fixture(scope="module")
def instance():
    return optimizer.instance_from_data(DATA)


@pytest.fixture
def plan_dir(instance, tmp_path):
    plan = optimizer.solve(instance, mip_rel_gap=0.0)
    target = plan.write(tmp_path / "plan")
    assert optimizer.check_plan(instance, target).ok
    return target


def edit_allocations(plan_dir, change):
    path = plan_dir / "allocations.csv"
    frame = change(pd.read_csv(path))
    frame.to_csv(path, index=False)


def edit_summary(plan_dir, change):
    path = plan_dir / "summary.json"
    summary = json.loads(path.read_text())
    change(summary)
    path.write_text(json.dumps(summary))


def violations(instance, plan_dir):
    report = optimizer.check_plan(instance, plan_dir)
    assert not report.ok
    return "\n".join(report.violations)


def add_row(hour, workload, pool_id, chips):
    return lambda f: pd.concat([f, pd.DataFrame([{"hour": hour, "workload": workload, "pool": pool_id, "chips": chips}])])


def test_key_lists_match_the_writer():
    # The checker spells the file contract out itself; it must agree with the writer.
    assert CHECKER_SUMMARY_KEYS | OPTIONAL_SUMMARY_KEYS == set(SUMMARY_KEYS)
    assert CHECKER_COST_KEYS == set(COST_KEYS)


def test_capacity_violation(instance, plan_dir):
    edit_allocations(plan_dir, lambda f: add_row(0, "chat", "od", 24)(f[f.pool != "od"]))
    assert "pool_capacity[od,0]: 24 chips allocated, 16 available" in violations(instance, plan_dir)


def test_power_violation(instance, plan_dir):
    # 4 kW cap; a chip draws 1.25 kW; 4 chips = 5 kW.
    def change(frame):
        frame = frame[~((frame.pool == "own") & (frame.hour == 1))]
        return add_row(1, "pretrain", "own", 4)(frame)

    edit_allocations(plan_dir, change)
    assert "site_power[campus,1]: draws 0.005 MW, cap 0.004 MW" in violations(instance, plan_dir)


def test_block_multiple_violation(instance, plan_dir):
    edit_allocations(plan_dir, add_row(2, "chat", "od", 3))
    assert "blocks[chat,od,2]: 3 chips is not a multiple of block 8" in violations(instance, plan_dir)


def test_reserved_capacity_violation(instance, plan_dir):
    (plan_dir / "reservations.csv").write_text("pool,chips\nres,4\n")
    found = violations(instance, plan_dir)
    assert "reserved_capacity[res," in found and "4 reserved" in found


def test_reservation_above_available(instance, plan_dir):
    (plan_dir / "reservations.csv").write_text("pool,chips\nres,12\n")
    assert "reserved_blocks[res]: 12 chips reserved, at most 8 available" in violations(instance, plan_dir)


def test_reservation_of_non_reserved_pool(instance, plan_dir):
    (plan_dir / "reservations.csv").write_text("pool,chips\nres,8\nod,8\n")
    assert "pool 'od' is on_demand, not reserved" in violations(instance, plan_dir)


def test_hard_demand_violation(instance, tmp_path):
    hard = optimizer.instance_from_data({**DATA, "workloads": [DATA["workloads"][0]]})
    target = optimizer.solve(hard, mip_rel_gap=0.0).write(tmp_path / "hard")
    edit_allocations(target, lambda f: f[f.hour != 1])
    assert "inference_demand[chat,1]: hard demand 6 PFLOP/s, 0 served" in violations(hard, target)


def test_hard_training_violation(tmp_path):
    data = instance_data(workloads=[training(work_eflop=3.6)])
    hard = optimizer.instance_from_data(data)
    target = optimizer.solve(hard, mip_rel_gap=0.0).write(tmp_path / "hard")
    edit_allocations(target, lambda f: f.iloc[0:0])
    assert "training_work[train]: must deliver 3.6 EFLOP, delivers 0" in violations(hard, target)


def test_cost_mismatch_is_named(instance, plan_dir):
    edit_summary(plan_dir, lambda s: s["cost_usd"].update(usage=s["cost_usd"]["usage"] + 1))
    assert "cost_usd.usage is" in violations(instance, plan_dir)


def test_dropping_an_allocation_changes_recomputed_penalty(tmp_path):
    # Soft demand [4, 6, 2] at $100 per PFLOP/s-hour: the solver serves it all; dropping hour 2
    # leaves 2 PFLOP/s-hours unmet, which the checker prices at $200.
    chat = {**DATA["workloads"][0], "unmet_usd_per_pflops_hour": 100.0}
    soft = optimizer.instance_from_data({**DATA, "workloads": [chat]})
    target = optimizer.solve(soft, mip_rel_gap=0.0).write(tmp_path / "soft")
    edit_allocations(target, lambda f: f[f.hour != 2])
    found = violations(soft, target)
    assert "cost_usd.penalty is 0.0, recomputed 200.000000" in found
    assert "unmet_pflops_hours is 0.0, recomputed 2" in found


def test_ineligible_chip_and_window(instance, plan_dir):
    edit_allocations(plan_dir, add_row(0, "pretrain", "res", 4))
    assert "cannot run on chip 'tpu'" in violations(instance, plan_dir)


def test_training_outside_window(tmp_path):
    data = instance_data(hours=3, workloads=[training(work_eflop=3.6, release_hour=1)])
    inst = optimizer.instance_from_data(data)
    target = optimizer.solve(inst).write(tmp_path / "w")
    edit_allocations(target, lambda f: f.assign(hour=0))
    assert "hour 0 is outside the run's window [1, 3)" in violations(inst, target)


def test_site_allow_list(tmp_path):
    data = instance_data(
        sites=[site("a"), site("b")],
        pools=[pool("pa", site="a"), pool("pb", site="b", usd_per_chip_hour=5)],
        workloads=[inference(sites=["b"])],
    )
    inst = optimizer.instance_from_data(data)
    target = optimizer.solve(inst).write(tmp_path / "s")
    edit_allocations(target, lambda f: f.assign(pool="pa"))
    assert "site 'a' is not in the workload's sites" in violations(inst, target)


def test_max_chips_and_single_site(tmp_path):
    data = instance_data(
        sites=[site("a"), site("b")],
        pools=[pool("pa", site="a"), pool("pb", site="b")],
        workloads=[training(work_eflop=3.6, max_chips=1, single_site=True)],
    )
    inst = optimizer.instance_from_data(data)
    target = optimizer.solve(inst).write(tmp_path / "m")
    edit_allocations(target, lambda f: pd.DataFrame([
        {"hour": 0, "workload": "train", "pool": "pa", "chips": 1},
        {"hour": 0, "workload": "train", "pool": "pb", "chips": 1},
    ]))
    found = violations(inst, target)
    assert "training_max_chips[train,0]: 2 chips, max_chips 1" in found
    assert "single_site_choice[train]: uses 2 sites (a, b)" in found


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((0, "ghost", "od", 8), "unknown workload 'ghost'"),
        ((0, "chat", "ghost", 8), "unknown pool 'ghost'"),
        ((7, "chat", "od", 8), "hour '7' is not in 0..2"),
        ((0, "chat", "od", "8.5"), "whole number > 0"),
        ((0, "chat", "od", 0), "whole number > 0"),
    ],
)
def test_malformed_rows(instance, plan_dir, row, reason):
    edit_allocations(plan_dir, add_row(*row))
    assert reason in violations(instance, plan_dir)


def test_duplicate_rows(instance, plan_dir):
    edit_allocations(plan_dir, lambda f: pd.concat([f, f.iloc[:1]]))
    assert "listed twice" in violations(instance, plan_dir)


def test_header_and_summary_shape(instance, plan_dir):
    edit_summary(plan_dir, lambda s: s.update(extra=1))
    assert "keys differ" in violations(instance, plan_dir)
    (plan_dir / "allocations.csv").write_text("hour,job,pool,chips\n")
    assert "header is" in violations(instance, plan_dir)


def test_status_objective_and_bound(instance, plan_dir):
    edit_summary(plan_dir, lambda s: s.update(status="infeasible"))
    assert "not a plan status" in violations(instance, plan_dir)
    edit_summary(plan_dir, lambda s: s.update(status="optimal", bound_usd=s["objective_usd"] * 2))
    assert "bound_usd" in violations(instance, plan_dir)


def test_missing_files(instance, tmp_path):
    report = optimizer.check_plan(instance, tmp_path)
    assert {"allocations.csv: missing", "reservations.csv: missing", "summary.json: missing"} <= set(report.violations)


def test_cli_check_exit_codes(instance, plan_dir, tmp_path):
    path = tmp_path / "inst.yaml"
    path.write_text(yaml.safe_dump(DATA))
    ok = chipmix("check", path, plan_dir)
    assert ok.returncode == 0 and "plan OK" in ok.stdout
    edit_allocations(plan_dir, lambda f: add_row(0, "chat", "od", 24)(f[f.pool != "od"]))
    bad = chipmix("check", path, plan_dir)
    assert bad.returncode == 1 and "pool_capacity[od,0]" in bad.stderr and "Traceback" not in bad.stderr
