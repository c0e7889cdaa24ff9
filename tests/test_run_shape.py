"""Training plans a cluster can run, and what owning a campus costs: ``min_chips``,
``restart_usd_per_chip`` and ``fixed_usd_per_chip_hour``, with optima worked out by hand.

Units as in test_hand_checked: one chip-hour of a 1000 TFLOP/s chip at efficiency 1 delivers
3.6 EFLOP.
"""

import json

import pytest

import optimizer
from optimizer import SolveStatus
from optimizer.analyses.greedy import greedy_plan
from optimizer.errors import InputError
from optimizer.input.validate import instance_warnings
from tests.helpers import chip, chipmix, chips_of, instance_data, pool, site, solve_checked, training


def _held(plan, workload="train"):
    return [chips_of(plan, workload=workload, hour=t) for t in range(plan_hours(plan))]


def plan_hours(plan):
    return int(plan.allocations.hour.max()) + 1 if len(plan.allocations) else 0


def min_chips_case(min_chips=None):
    # Work 5 chip-hours (18 EFLOP) in 3 hours; the cheap pool has 3 chips an hour at $1, the dear
    # one 10 at $2.  Free: 5 cheap chip-hours, $5.  With min_chips 4 an hour that runs needs 4 or
    # more chips, so at least one dear chip: two hours would be 8+ chip-hours (2 dear, 3 wasted),
    # $10; one hour of 5 chips is 3 cheap + 2 dear = $7, the optimum.
    extra = {"min_chips": min_chips} if min_chips else {}
    return instance_data(
        hours=3,
        pools=[pool("cheap", usd_per_chip_hour=1, available=3), pool("dear", usd_per_chip_hour=2, available=10)],
        workloads=[training(work_eflop=18.0, **extra)],
    )


def test_min_chips_makes_the_run_take_dear_chips_in_one_hour(tmp_path, engine):
    free = solve_checked(min_chips_case(), tmp_path, engine=engine)
    assert free.objective_usd == pytest.approx(5.0)
    plan = solve_checked(min_chips_case(min_chips=4), tmp_path, engine=engine)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd == pytest.approx(7.0)
    held = [chips_of(plan, workload="train", hour=t) for t in range(3)]
    assert sorted(held) == [0, 0, 5]
    assert chips_of(plan, pool="dear") == 2


def test_greedy_keeps_min_chips_and_its_plan_passes_the_checker(tmp_path):
    instance = optimizer.instance_from_data(min_chips_case(min_chips=4))
    plan = greedy_plan(instance)
    plan.write(tmp_path / "greedy")
    assert optimizer.check_plan(instance, tmp_path / "greedy").ok
    held = [chips_of(plan, workload="train", hour=t) for t in range(3)]
    assert all(h == 0 or h >= 4 for h in held) and sum(held) >= 5


def restart_case(restart_usd_per_chip):
    # Work 8 chip-hours in 3 hours; cheap chips ($1) exist in hours 0 and 2 only (4 each), dear
    # ones ($3) in every hour.  Plans [4, k, 4-k] (k dear chips in hour 1) cost 8 + 2k in chips
    # and add max(0, 4 - 2k) chips in hour 2 (hour 0 is not priced): 8 + 2k + psi (4 - 2k),
    # linear in k with slope 2 - 2 psi.  psi = 0.5: k = 0, [4, 0, 4], 8 + 2 = 10.  psi = 2:
    # k = 2, [4, 2, 2], 12 and no restart.  (Any other split costs more: [4, 4, 0] is 16;
    # [3, 2, 3] is 12 + psi.)
    return instance_data(
        hours=3,
        pools=[pool("cheap", usd_per_chip_hour=1, available=[4, 0, 4]), pool("dear", usd_per_chip_hour=3, available=10)],
        workloads=[training(work_eflop=28.8, restart_usd_per_chip=restart_usd_per_chip)],
    )


@pytest.mark.parametrize(("psi", "held", "cost", "restarts"), [(0.5, [4, 0, 4], 10.0, 2.0), (2.0, [4, 2, 2], 12.0, 0.0)])
def test_restart_cost_smooths_the_run(tmp_path, engine, psi, held, cost, restarts):
    plan = solve_checked(restart_case(psi), tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(cost)
    assert [chips_of(plan, workload="train", hour=t) for t in range(3)] == held
    assert plan.cost_usd["restarts"] == pytest.approx(restarts)


def test_restart_rows_couple_hours_and_the_decomposition_finds_the_same_optimum(tmp_path):
    plan = solve_checked(restart_case(2.0), tmp_path, method="decompose")
    assert plan.objective_usd == pytest.approx(12.0)
    assert plan.bound_usd <= 12.0 + 1e-6


def test_restart_cost_of_a_plan_is_recomputed_by_the_checker(tmp_path):
    instance = optimizer.instance_from_data(restart_case(0.5))
    plan = solve_checked(instance, tmp_path)
    target = tmp_path / "plan"
    plan.write(target)
    summary = json.loads((target / "summary.json").read_text())
    summary["cost_usd"]["restarts"] = 0.0  # a plan that hides its churn
    summary["cost_usd"]["total"] -= 2.0
    (target / "summary.json").write_text(json.dumps(summary))
    report = optimizer.check_plan(instance, target)
    assert not report.ok and any("cost_usd.restarts" in v for v in report.violations)


def test_the_checker_catches_an_hour_below_min_chips(tmp_path):
    instance = optimizer.instance_from_data(min_chips_case(min_chips=4))
    plan = solve_checked(instance, tmp_path)
    target = tmp_path / "plan"
    plan.write(target)
    rows = (target / "allocations.csv").read_text().splitlines()
    header, body = rows[0], rows[1:]
    cheap = [r for r in body if ",cheap," in r][0]
    hour = cheap.split(",")[0]
    # Keep only the cheap chips of the running hour: 3 chips, below min_chips 4.
    kept = [r for r in body if not (r.startswith(hour + ",") and ",dear," in r)]
    (target / "allocations.csv").write_text("\n".join([header, *kept]) + "\n")
    report = optimizer.check_plan(instance, target)
    assert any(v.startswith(f"training_min_chips[train,{hour}]") for v in report.violations), report.violations


def test_fixed_cost_of_owned_chips_is_paid_used_or_not(tmp_path, engine):
    # Owned chips at $0.5 usage, $0.25 fixed per listed chip-hour ([10, 6]: 16 chip-hours, $4)
    # serve a demand of 2 PFLOP/s in each of 2 hours (4 chip-hours, $2): 6 in all, and the fixed
    # cost is the same whether the chips are used or not.
    data = instance_data(
        hours=2,
        sites=[site("campus", cloud="owned")],
        pools=[pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.5, available=[10, 6],
                    fixed_usd_per_chip_hour=0.25)],
        workloads=[{"type": "inference", "id": "serve", "demand_pflops": 2.0, "efficiency": {"h100": 1.0}}],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(6.0)
    assert plan.cost_usd["fixed"] == pytest.approx(4.0) and plan.cost_usd["usage"] == pytest.approx(2.0)
    assert plan.bound_usd == pytest.approx(6.0, abs=1e-6)


def _errors(data):
    with pytest.raises(InputError) as caught:
        optimizer.instance_from_data(data)
    return caught.value.render()


def test_run_shape_fields_are_validated_with_their_paths():
    gang = min_chips_case()
    gang["workloads"][0].update(gang_chips=4, min_chips=4, restart_usd_per_chip=1.0)
    text = _errors(gang)
    assert "workloads[0](train).min_chips: a gang run holds exactly gang_chips" in text
    assert "workloads[0](train).restart_usd_per_chip" in text
    over = min_chips_case(min_chips=8)
    over["workloads"][0]["max_chips"] = 6
    assert "min_chips 8 is more than max_chips 6" in _errors(over)
    never = min_chips_case(min_chips=20)  # 13 chips an hour at most
    assert "min_chips 20 is more than the 13 chips the run's pools offer" in _errors(never)
    rented = min_chips_case()
    rented["pools"][0]["fixed_usd_per_chip_hour"] = 0.1
    assert "pools[0](cheap).fixed_usd_per_chip_hour: pool 'cheap' is on_demand" in _errors(rented)


def test_a_vendor_in_another_case_is_refused_with_the_spelling_meant():
    data = min_chips_case()
    data["chips"] = [chip(vendor="Nvidia")]
    assert "chips[0](h100).vendor" in _errors(data) and "write 'nvidia'" in _errors(data)


def test_available_that_is_not_whole_blocks_is_a_warning_with_its_path(tmp_path):
    data = instance_data(hours=2, pools=[pool("p", available=[12, 16], block=8)])
    instance = optimizer.instance_from_data(data)
    (warning,) = instance_warnings(instance)
    assert warning.path == "pools[0](p).available[0]" and "only 8 are usable" in warning.reason
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    run = chipmix("solve", path, "--out", tmp_path / "plan")
    assert run.returncode == 0, run.stderr
    assert "pools[0](p).available[0]: 12 chips is not a multiple of block 8" in run.stderr
