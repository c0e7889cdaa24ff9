"""The decomposed solve: its bound is valid, its plans are checked, and small optima match."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import optimizer
from optimizer import SolveStatus
from optimizer.data import build_model_data
from optimizer.decompose import is_feasible, lagrangian_bound, lp_relaxation, split_by_hour
from optimizer.formulation import build_model
from tests.helpers import inference, instance_data, pool, site, solve_checked, training
from tests.test_gang import two_gangs
from tests.test_properties import instances


def test_the_lagrangian_bound_keeps_each_hours_block_rounding(tmp_path):
    # One 8-chip block serves 1 chip of demand per hour: the LP pays for 1/8 of a block ($4 over
    # 4 hours), every plan pays for whole blocks ($32).  A reserved pool couples the hours, so the
    # bound is a real Lagrangian, and it must price each hour's rounding: $32, not $4.
    data = instance_data(
        hours=4,
        pools=[pool("od", usd_per_chip_hour=1.0, available=8, block=8),
               pool("res", pricing="reserved", usd_per_chip_hour=5.0, available=8, block=8)],
        workloads=[inference(demand_pflops=1.0)],
    )
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    lp_value, _, duals = lp_relaxation(model, None)
    assert lp_value == pytest.approx(4.0)
    split = split_by_hour(model)
    assert split.coupling.sum() == 4  # reserved_capacity[res,t] for t = 0..3
    bound = lagrangian_bound(model, duals, split)
    assert bound.bound == pytest.approx(32.0)
    plan = solve_checked(data, tmp_path, method="decompose")
    assert plan.objective_usd == pytest.approx(32.0) and plan.status is SolveStatus.OPTIMAL


@pytest.mark.parametrize("case", ["gangs", "mixed"])
def test_decompose_matches_direct_on_small_instances(case, tmp_path):
    if case == "gangs":
        data = two_gangs()
    else:
        data = instance_data(
            hours=6,
            sites=[site("campus", cloud="owned", power_cap_mw=0.01, energy_usd_per_mwh=[0, 50, 50, 0, 80, 0]),
                   site("cloud")],
            pools=[pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.3, available=8, block=4),
                   pool("res", site="cloud", pricing="reserved", usd_per_chip_hour=1.0, available=16, block=4),
                   pool("od", site="cloud", usd_per_chip_hour=3.0, available=[8, 8, 16, 16, 8, 8], block=4)],
            workloads=[inference("serve", demand_pflops=[3.0, 5.0, 9.0, 7.0, 2.0, 6.0], unmet_usd_per_pflops_hour=9.0),
                       training("train", work_eflop=60.0, single_site=True),
                       training("gang", work_eflop=28.0, gang_chips=8, short_usd_per_eflop=2.0)],
        )
    direct = solve_checked(data, tmp_path, mip_rel_gap=0.0)
    split = solve_checked(data, tmp_path, method="decompose", mip_rel_gap=0.0)
    assert direct.status is split.status is SolveStatus.OPTIMAL
    assert split.objective_usd == pytest.approx(direct.objective_usd, rel=1e-9)
    assert "decompose" in split.details["solver"]


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=instances())
def test_bounds_are_valid_and_plans_feasible_on_random_instances(tmp_path, data):
    instance = optimizer.instance_from_data(data)
    model = build_model(build_model_data(instance))
    optimum = solve_checked(instance, tmp_path, mip_rel_gap=0.0).objective_usd
    relaxed = lp_relaxation(model, None)
    if not isinstance(relaxed, str):
        _, values, duals = relaxed
        assert lagrangian_bound(model, duals).bound <= optimum + 1e-6 * max(1.0, optimum)
    plan = solve_checked(instance, tmp_path, method="decompose", mip_rel_gap=0.0)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd == pytest.approx(optimum, rel=1e-6, abs=1e-6)
    assert plan.bound_usd <= optimum + 1e-6 * max(1.0, optimum)


def test_is_feasible_rejects_a_broken_plan():
    model = build_model(build_model_data(optimizer.instance_from_data(two_gangs())))
    assert not is_feasible(model, np.zeros(model.n_cols))  # the hard gang runs never start


def test_decompose_needs_the_highs_engine():
    with pytest.raises(optimizer.InputError, match="decompose runs on the highs engine"):
        optimizer.solve(optimizer.instance_from_data(two_gangs()), engine="cpsat", method="decompose")


def test_decompose_reports_integer_infeasibility_like_direct():
    # The LP can split the two hard gang runs fractionally; whole runs cannot both fit in [0, 4).
    instance = optimizer.instance_from_data(two_gangs(a_deadline=4))
    plan = optimizer.solve(instance, method="decompose")
    assert plan.status is SolveStatus.INFEASIBLE
    assert "gang_chips" in plan.infeasibility.render()


def test_cli_method_decompose(tmp_path):
    from tests.helpers import chipmix

    week = Path(__file__).resolve().parents[1] / "instances" / "power-capped-campus.yaml"
    result = chipmix("solve", week, "--method", "decompose", "--out", tmp_path / "plan")
    assert result.returncode == 0, result.stderr
    assert "highs, decompose" in result.stdout and "plan OK" in result.stdout
    assert chipmix("solve", week, "--method", "decompose", "--engine", "cpsat").returncode == 2
