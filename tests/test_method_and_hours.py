"""--method auto, the hour step's runners (threads, fresh processes, a Dask cluster) and the
optimised Lagrangian bound."""

from __future__ import annotations

import json

import pytest

import optimizer
from optimizer.model.build import build_model
from optimizer.model.data import build_model_data
from optimizer.solvers.backends.highs import hours as hours_module
from optimizer.solvers.backends.highs.decompose import lp_relaxation
from optimizer.solvers.backends.highs.lagrange import lagrangian_bound, optimise_multipliers
from optimizer.solvers.backends.highs.split import split_by_hour
from optimizer.tasks import TaskPool
from tests.helpers import chipmix, inference, instance_data, pool, solve_checked, training
from tests.test_cli import write_instance


def week_data(hours: int = 24) -> dict:
    """Reserved and on-demand pools over ``hours`` hours, demand that varies by the hour and a
    training run: a MILP whose hours are coupled by the reservation and the run's work."""
    demand = [2.5 + 1.3 * ((h * 7) % 5) for h in range(hours)]
    return instance_data(
        hours=hours,
        pools=[pool("res", pricing="reserved", usd_per_chip_hour=1.0, available=8),
               pool("od", usd_per_chip_hour=2.6, available=12)],
        workloads=[inference(demand_pflops=demand), training(work_eflop=0.02, deadline_hour=hours)],
    )


def test_auto_decomposes_a_multi_hour_highs_milp_and_says_why(tmp_path):
    plan = solve_checked(week_data(), tmp_path, mip_rel_gap=1e-4)
    method = plan.summary()["method"]
    assert method["asked"] == "auto" and method["chosen"] == "decompose"
    assert "24 hours" in method["reason"] and "hour-local" in method["reason"]
    direct = solve_checked(week_data(), tmp_path, method="direct", mip_rel_gap=1e-4)
    assert direct.summary()["method"] == {"asked": "direct", "chosen": "direct", "reason": "asked for"}
    # Both within 0.01% of each other's bound: the same optimum, whichever method ran.
    assert plan.objective_usd == pytest.approx(direct.objective_usd, rel=2e-4)


def test_auto_runs_direct_on_one_hour_and_on_engines_with_one_method(tmp_path):
    one_hour = instance_data(hours=1, workloads=[inference(demand_pflops=[3.0])])
    plan = solve_checked(one_hour, tmp_path)
    assert plan.summary()["method"]["chosen"] == "direct"
    assert "nothing to decompose" in plan.summary()["method"]["reason"]
    cbc = solve_checked(week_data(6), tmp_path, engine="pulp-cbc")
    assert cbc.summary()["method"] == {"asked": "auto", "chosen": "direct",
                                       "reason": "the pulp-cbc engine has one method"}


def test_the_checker_rejects_a_summary_whose_method_block_is_not_one(tmp_path):
    data = week_data(6)
    plan = solve_checked(data, tmp_path)
    target = tmp_path / "plan"
    plan.write(target)
    summary = json.loads((target / "summary.json").read_text())
    summary["method"] = {"asked": "auto", "chosen": "magic", "reason": "because"}
    (target / "summary.json").write_text(json.dumps(summary))
    report = optimizer.check_plan(optimizer.instance_from_data(data), target)
    assert not report.ok and any("method" in v for v in report.violations)


def test_the_cli_says_which_method_auto_chose(tmp_path):
    path = write_instance(tmp_path, week_data(12))
    result = chipmix("solve", path, "--out", tmp_path / "plan")
    assert result.returncode == 0, result.stderr
    assert "auto:" in result.stdout and "hour-local" in result.stdout
    assert json.loads((tmp_path / "plan" / "summary.json").read_text())["method"]["chosen"] == "decompose"


def _square(x):
    if x == 3:
        raise ValueError("three is not welcome")
    return x * x


def test_a_pool_of_fresh_processes_returns_each_result_in_order_and_each_error_on_its_own():
    with TaskPool(2, fresh=True) as pool_:
        outcomes = sorted(pool_.run(_square, [1, 2, 3, 4, 5]))
    assert [(i, r) for i, r, e in outcomes if e is None] == [(0, 1), (1, 4), (3, 16), (4, 25)]
    [(index, _, error)] = [o for o in outcomes if o[2] is not None]
    assert index == 2 and isinstance(error, ValueError) and "three" in str(error)


def test_the_hour_step_gives_the_same_plan_on_threads_processes_and_a_dask_cluster(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    data = week_data(24)
    on_threads = solve_checked(data, tmp_path, method="decompose", time_limit_s=60)
    assert on_threads.details["solver"]["decompose"]["hour_step"].endswith("threads")
    monkeypatch.setattr(hours_module, "POOL_MIN_COLUMNS", 0)  # a pool of processes even for 24 small hours
    on_processes = solve_checked(data, tmp_path, method="decompose", time_limit_s=60)
    assert on_processes.details["solver"]["decompose"]["hour_step"].endswith("processes")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_cluster = solve_checked(data, tmp_path, method="decompose", time_limit_s=60,
                                   cluster=cluster.scheduler_address)
    assert on_cluster.details["solver"]["decompose"]["hour_step"].startswith("Dask cluster")
    for plan in (on_threads, on_processes, on_cluster):
        assert "hours_seconds" in plan.details["solver"]["decompose"]  # the hours were solved, on that runner
    for plan in (on_processes, on_cluster):
        assert plan.objective_usd == pytest.approx(on_threads.objective_usd, rel=1e-9)
        assert plan.allocations.equals(on_threads.allocations)


def test_a_cluster_out_of_reach_is_a_clear_error_not_a_traceback(tmp_path):
    path = write_instance(tmp_path, week_data(12))
    result = chipmix("solve", path, "--method", "decompose", "--cluster", "tcp://127.0.0.1:9", "--out", tmp_path / "p")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "tcp://127.0.0.1:9" in result.stderr
    assert not (tmp_path / "p").exists()


def test_the_optimised_lagrangian_is_a_bound_at_least_the_lp_duals_one(tmp_path):
    # Hand-checked structure: 8 hours of 2.5 PFLOPS on 1-PFLOPS chips (whole chips: 3 per hour),
    # reserved chips at $1/h bought for the horizon, on demand at $2.6/h.  The LP relaxation takes
    # 2.5 reserved chips every hour (8 x 2.5 x $1 = $20); whole chips need 3 an hour: reserving 3
    # costs 8 x 3 x $1 = $24, the optimum.  Every bound must lie in [LP, 24].
    data = instance_data(hours=8, pools=[pool("res", pricing="reserved", usd_per_chip_hour=1.0, available=8),
                                         pool("od", usd_per_chip_hour=2.6, available=8)],
                         workloads=[inference(demand_pflops=[2.5] * 8)])
    plan = solve_checked(data, tmp_path)
    optimum = plan.objective_usd
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    lp_value, lp_values, duals = lp_relaxation(model, None)
    assert lp_value <= optimum + 1e-6
    split = split_by_hour(model)
    fixed = lagrangian_bound(model, duals, split)
    searched = optimise_multipliers(model, duals, optimum, 10.0, split=split, fallback=lp_values, hour_seconds=1.0)
    assert searched.start_bound == pytest.approx(fixed.bound, rel=1e-9)
    assert fixed.bound >= lp_value - 1e-6
    assert searched.bound >= fixed.bound - 1e-9
    assert searched.bound <= optimum + 1e-6 * max(1.0, optimum)
    assert searched.iterations >= 1 and len(searched.history) == searched.iterations


def test_on_a_large_model_the_lagrangian_goes_before_the_hours_and_can_end_the_solve(tmp_path, monkeypatch):
    # The case above, decomposed as if it were large.  The rounded plan reserves 3 chips ($24, the
    # optimum) and the LP says $20: 16.7% open.  At the LP's duals ($1 a reserved chip-hour) each
    # hour's MILP buys 3 whole reserved chips at $1 = $3, and the reservation's own cost ($8 a
    # chip) is cancelled by the 8 hours' duals: L = 8 x 3 = $24, so the bound closes the gap and
    # the hour step never runs.
    from optimizer.solvers.backends.highs import decompose as decompose_module

    monkeypatch.setattr(decompose_module, "LAGRANGIAN_MIN_COLUMNS", 0)
    data = instance_data(hours=8, pools=[pool("res", pricing="reserved", usd_per_chip_hour=1.0, available=8),
                                         pool("od", usd_per_chip_hour=2.6, available=8)],
                         workloads=[inference(demand_pflops=[2.5] * 8)])
    plan = solve_checked(data, tmp_path, method="decompose", mip_rel_gap=1e-6)
    steps = plan.details["solver"]["decompose"]
    assert steps["rounded_plan_usd"] == pytest.approx(24.0)
    assert steps["lagrangian_bound"] == pytest.approx(24.0)
    assert "hours_seconds" not in steps and "polish_seconds" not in steps
    assert plan.status.value == "optimal" and plan.objective_usd == pytest.approx(24.0)
    assert plan.bound_usd == pytest.approx(24.0)


def test_an_hour_that_ends_without_a_dual_bound_counts_with_its_lp_bound():
    # min x s.t. 2x >= 3, x integer in [0, 10]: the MILP's optimum is 2, its LP's 1.5.  An hour
    # not started (its time gone) says nothing of its own; with a fallback it counts with 1.5, a
    # valid bound, and without one it is -inf (which makes a Lagrangian evaluation -inf).
    import numpy as np
    import scipy.sparse as sp

    problem = hours_module.HourProblem(np.array([1.0]), np.array([0.0]), np.array([10.0]), np.array([True]),
                                       sp.csc_matrix(np.array([[2.0]])), np.array([3.0]), np.array([np.inf]))
    with_fallback = hours_module.HourPolicy(deadline=np.inf, share_end=np.inf, gap=0.0, skip_below=0.05,
                                            bound_fallback_s=1.0)
    not_started = hours_module.solve_hour(problem, with_fallback, 0.01)
    assert not not_started.solved and not_started.values is None
    assert not_started.bound == pytest.approx(1.5)
    solved = hours_module.solve_hour(problem, with_fallback, 5.0)
    assert solved.solved and solved.objective == pytest.approx(2.0) and solved.bound == pytest.approx(2.0)
    without = hours_module.solve_hour(problem, hours_module.HourPolicy(deadline=np.inf, share_end=np.inf, gap=0.0,
                                                                       skip_below=0.05), 0.01)
    assert without.bound == -np.inf
    infeasible = hours_module.HourProblem(np.array([1.0]), np.array([0.0]), np.array([1.0]), np.array([True]),
                                          sp.csc_matrix(np.array([[2.0]])), np.array([3.0]), np.array([np.inf]))
    assert hours_module.solve_hour(infeasible, with_fallback, 0.01).bound == np.inf
