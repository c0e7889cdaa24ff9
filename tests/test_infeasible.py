"""Infeasible hard demand is explained: which workloads, which hours, which sites or pools are full."""

import yaml

import optimizer
from optimizer import SolveStatus
from tests.helpers import chipmix, inference, instance_data, pool, site, training

# The campus pool alone could serve 6 PFLOP/s (10 chips), but its power cap allows 4 chips
# (5 kW / 1.25 kW), so hour 1 (demand 6) cannot be met; hours 0 and 2 (demand 3) can.
POWER_BOUND = instance_data(
    hours=3,
    sites=[site("campus", cloud="owned", power_cap_mw=0.005, pue=1.25)],
    pools=[pool("own", site="campus", pricing="owned", available=10)],
    workloads=[inference(demand_pflops=[3, 6, 3])],
)


def test_power_cap_infeasibility_names_hour_and_site(engine):
    plan = optimizer.solve(optimizer.instance_from_data(POWER_BOUND), engine=engine)
    assert plan.status is SolveStatus.INFEASIBLE and not plan.has_plan
    (shortfall,) = plan.infeasibility.shortfalls
    assert (shortfall.workload, shortfall.hours) == ("serve", [1])
    assert abs(shortfall.amount - 2.0) < 1e-6  # 6 needed, 4 chips x 1 PFLOP/s possible
    text = plan.infeasibility.render()
    assert "workloads[0](serve).demand_pflops: hard demand of 'serve' cannot be met in hours 1" in text
    assert "site_power[campus] in hours 1" in text


def test_competing_hard_workloads_name_both_and_the_full_pool():
    # Each alone fits in 10 chips; together hours 1-2 need 12.
    data = instance_data(
        hours=3,
        pools=[pool("p", available=10)],
        workloads=[inference("a", demand_pflops=[5, 6, 6]), inference("b", demand_pflops=[5, 6, 6])],
    )
    plan = optimizer.solve(optimizer.instance_from_data(data))
    assert plan.status is SolveStatus.INFEASIBLE
    report = plan.infeasibility
    assert sum(s.amount for s in report.shortfalls) >= 2 - 1e-6
    assert set().union(*(s.hours for s in report.shortfalls)) == {1, 2}
    assert "pool_capacity[p] in hours 1-2" in report.render()


def test_competing_training_and_inference_least_slack():
    # 2 chips x 2 hours = 4 chip-hours; inference takes 2, training needs 3 (10.8 EFLOP).  Each
    # fits alone; together 1 chip-hour is missing.  That chip-hour is 1 PFLOP/s-hour of inference
    # (slack cost 1) or 3.6 EFLOP of training (slack cost 3.6), so the least slack shorts
    # inference by 1 PFLOP/s in one hour.
    data = instance_data(
        pools=[pool("p", available=2)],
        workloads=[inference(demand_pflops=1), training(work_eflop=3 * 3.6)],
    )
    plan = optimizer.solve(optimizer.instance_from_data(data))
    assert plan.status is SolveStatus.INFEASIBLE
    (shortfall,) = plan.infeasibility.shortfalls
    assert (shortfall.workload, len(shortfall.hours)) == ("serve", 1)
    assert abs(shortfall.amount - 1.0) < 1e-6
    assert "one least-slack split" in plan.infeasibility.render()


def test_hard_training_short_by_deadline():
    # Hard inference holds both chips in hour 0; training (work 7.7 EFLOP) gets 2 chips in hour 1
    # = 7.2 EFLOP.  Least slack: training 0.5 EFLOP short (cost 0.5), not inference giving up a
    # chip in hour 0 (1 PFLOP/s-hour, cost 1).
    data = instance_data(
        pools=[pool("p", available=2)],
        workloads=[inference(demand_pflops=[2, 0]), training(work_eflop=2 * 3.6 + 0.5)],
    )
    plan = optimizer.solve(optimizer.instance_from_data(data))
    assert plan.status is SolveStatus.INFEASIBLE
    (shortfall,) = plan.infeasibility.shortfalls
    assert (shortfall.workload, shortfall.kind) == ("train", "training")
    assert abs(shortfall.amount - 0.5) < 1e-6
    assert "workloads[1](train).work_eflop: hard training run 'train' falls 0.5 EFLOP short" in plan.infeasibility.render()


def test_cli_reports_infeasible_with_exit_2_and_writes_nothing(tmp_path):
    path = tmp_path / "campus.yaml"
    path.write_text(yaml.safe_dump(POWER_BOUND))
    out = tmp_path / "plan"
    result = chipmix("solve", path, "--out", out)
    assert result.returncode == 2
    assert "infeasible" in result.stderr and "hours 1" in result.stderr and "site_power[campus]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
