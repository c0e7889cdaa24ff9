"""The CP-SAT engine: integer scaling and its stated bound, exact re-evaluation, determinism, CLI."""

import itertools
import json

import numpy as np
import pytest

import optimizer
from optimizer import SolveStatus
from optimizer.solvers.backends.cpsat import exact_values, scale_model
from optimizer.model.data import build_model_data
from optimizer.model.build import build_model
from tests.helpers import chip, chipmix, inference, instance_data, pool, solve_checked, training
from tests.test_gang import two_gangs


def awkward():
    """Prices and rates no power of ten makes whole: 1/3 efficiency, $7.77 unmet, $1.234567 chips."""
    return instance_data(
        hours=3,
        chips=[chip(peak_tflops=1000.0)],
        pools=[pool("p", usd_per_chip_hour=1.234567, available=7), pool("q", usd_per_chip_hour=0.987654, available=2)],
        workloads=[
            inference("serve", demand_pflops=[1.1, 2.05, 0.7], efficiency={"h100": 1 / 3},
                      unmet_usd_per_pflops_hour=7.77),
            training("train", work_eflop=5.5, efficiency={"h100": 0.7}, short_usd_per_eflop=0.91),
        ],
    )


def test_whole_data_scales_exactly(tmp_path):
    model = build_model(build_model_data(optimizer.instance_from_data(two_gangs())))
    scaled = scale_model(model)
    assert scaled.scaling_bound_usd == 0.0 and scaled.hard_row_margin == 0.0
    plan = solve_checked(two_gangs(), tmp_path, engine="cpsat")
    assert plan.details["solver"]["scaling_bound_usd"] == 0.0
    assert plan.bound_usd == pytest.approx(plan.objective_usd)


def test_scaled_rows_are_conservative(tmp_path):
    """Every integer point that meets a scaled row meets the true row (checked on all points)."""
    model = build_model(build_model_data(optimizer.instance_from_data(awkward())))
    scaled = scale_model(model)
    assert scaled.scaling_bound_usd > 0
    true_rows, int_rows = model.matrix.tocsr(), scaled.rows
    rng = np.random.default_rng(0)
    for _ in range(2000):
        units = np.array([rng.integers(lo, hi + 1) for lo, hi in zip(scaled.col_lower, scaled.col_upper)], dtype=float)
        activity = int_rows @ units
        meets = np.all((activity >= scaled.row_lower) & (activity <= scaled.row_upper))
        if meets:
            x = units / scaled.col_unit
            true = true_rows @ x
            assert np.all(true >= model.row_lower - 1e-9) and np.all(true <= model.row_upper + 1e-9)


def test_cpsat_matches_highs_within_the_stated_bound_and_reports_the_exact_cost(tmp_path):
    highs = solve_checked(awkward(), tmp_path, engine="highs")
    cpsat = solve_checked(awkward(), tmp_path, engine="cpsat")
    assert highs.status is cpsat.status is SolveStatus.OPTIMAL
    solver = cpsat.details["solver"]
    assert abs(cpsat.objective_usd - highs.objective_usd) <= solver["scaling_bound_usd"] + 1e-9
    # The objective is the plan's cost in floating point, not the scaled objective.
    assert cpsat.objective_usd == pytest.approx(cpsat.cost_usd["total"], rel=1e-12)
    assert cpsat.bound_usd <= highs.objective_usd + 1e-9
    assert solver["scaling_bound_usd"] < 1e-3 * highs.objective_usd


def test_exact_values_recompute_continuous_columns():
    model = build_model(build_model_data(optimizer.instance_from_data(awkward())))
    x = np.zeros(model.n_cols)
    x[~model.col_integer] = model.col_upper[~model.col_integer]  # everything unmet / short
    blocks = model.variables["blocks"]
    x[blocks.slice] = np.minimum(1, model.col_upper[blocks.slice])
    exact = exact_values(model, x)
    activity = model.matrix @ exact
    assert np.all(activity >= model.row_lower - 1e-9)
    # Each continuous column is the least its row needs: lowering it breaks the row.
    for j in np.nonzero(~model.col_integer & (exact > 0))[0]:
        lowered = exact.copy()
        lowered[j] -= 1e-6
        assert np.any(model.matrix @ lowered < model.row_lower - 1e-12)


@pytest.mark.parametrize("threads", [None, 1])
def test_cpsat_is_deterministic(threads):
    instance = optimizer.instance_from_data(awkward())
    plans = [optimizer.solve(instance, engine="cpsat", threads=threads, random_seed=7) for _ in range(2)]
    assert plans[0].allocations.equals(plans[1].allocations)
    assert plans[0].objective_usd == plans[1].objective_usd
    assert plans[0].details["solver"]["interleaved"] is (threads is None)


def test_cpsat_proves_infeasibility_and_the_diagnosis_names_the_workload():
    # Each workload alone fits (so validation passes); together they need 2 chips of 1.
    data = instance_data(
        pools=[pool("p", available=1)],
        workloads=[inference("a", demand_pflops=1.0), inference("b", demand_pflops=1.0)],
    )
    plan = optimizer.solve(optimizer.instance_from_data(data), engine="cpsat")
    assert plan.status is SolveStatus.INFEASIBLE
    assert plan.infeasibility.unserved_pflops_hours == pytest.approx(2.0)


def test_cli_solves_with_cpsat_and_the_checker_passes(tmp_path):
    import yaml

    path = tmp_path / "gangs.yaml"
    path.write_text(yaml.safe_dump(two_gangs()))
    result = chipmix("solve", path, "--engine", "cpsat", "--workers", "1", "--seed", "3", "--out", tmp_path / "plan")
    assert result.returncode == 0, result.stderr
    assert "CP-SAT scaling bound" in result.stdout and "plan OK" in result.stdout
    summary = json.loads((tmp_path / "plan" / "summary.json").read_text())
    assert summary["engine"] == "cpsat" and summary["status"] == "optimal"
    details = json.loads((tmp_path / "plan" / "details.json").read_text())
    assert details["solver"]["workers"] == 1


def test_all_engines_agree_on_a_mixed_instance(tmp_path):
    """Each engine pair on a few tiny instances mixing every feature (reserved, spot, caps, gangs)."""
    base = instance_data(
        hours=4,
        sites=[{"id": "campus", "cloud": "owned", "region": "x", "power_cap_mw": 0.01, "energy_usd_per_mwh": 40.0},
               {"id": "cloud", "cloud": "aws", "region": "y"}],
        pools=[
            pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.2, available=8, block=4),
            pool("res", site="cloud", pricing="reserved", usd_per_chip_hour=1.5, available=8, block=4),
            pool("spot", site="cloud", pricing="spot", usd_per_chip_hour=1.0, available=[4, 8, 8, 4], interruption_rate=0.25),
            pool("od", site="cloud", usd_per_chip_hour=3.0, available=16, block=4),
        ],
        workloads=[
            inference("serve", demand_pflops=[3.0, 6.0, 9.0, 4.0], unmet_usd_per_pflops_hour=12.0),
            training("train", work_eflop=40.0, single_site=True, short_usd_per_eflop=2.0),
            training("gang", work_eflop=50.0, gang_chips=8, short_usd_per_eflop=3.0),
        ],
    )
    costs = {}
    for engine in ("highs", "pulp-cbc", "pulp-highs", "cpsat"):
        plan = solve_checked(base, tmp_path, engine=engine)
        assert plan.status is SolveStatus.OPTIMAL, (engine, plan.details["solver_status"])
        costs[engine] = (plan.objective_usd, plan.details.get("solver", {}).get("scaling_bound_usd", 0.0))
    for (a, (cost_a, slack_a)), (b, (cost_b, slack_b)) in itertools.combinations(costs.items(), 2):
        assert abs(cost_a - cost_b) <= slack_a + slack_b + 1e-6 * cost_a, (a, b, costs)


def test_an_unbounded_slack_is_bounded_by_what_its_row_can_ask_of_it():
    # grid_mwh covers the chips' draw in grid_energy (grid - 0.1 x chips >= 0): with no upper bound
    # of its own, CP-SAT must allow it up to the most the chips can draw (10 chips: 1 MWh), not
    # the row's bound of 0.
    from optimizer.model.families.grid_carbon import GRID
    from tests.test_energy import quota_case

    instance = optimizer.instance_from_data(quota_case(share=None, carbon=400.0, carbon_price=100.0))
    model = build_model(build_model_data(instance))
    grid = model.variables[GRID.name]
    model.col_upper[grid.slice] = np.inf
    scaled = scale_model(model)
    assert np.all(scaled.col_upper[grid.slice] / scaled.col_unit[grid.slice] >= 1.0 - 1e-9)
