"""The decomposed solve: its bound is valid, its plans are checked, and small optima match."""

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import optimizer
from optimizer import SolveStatus
from optimizer.model.data import build_model_data
from optimizer.solvers.backends.highs.decompose import (complete_continuous, fix_horizon_columns, heuristic_plan, is_feasible,
                                                        lp_relaxation, round_down, round_up_cover, tighten_upper)
from optimizer.solvers.backends.highs.lagrange import lagrangian_bound, optimise_multipliers
from optimizer.solvers.backends.highs.split import split_by_hour
from optimizer.model.build import build_model
from tests.helpers import chip, inference, instance_data, pool, site, solve_checked, training
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


def _cover_case(a_chips: int) -> dict:
    # 1 hour, 6.5 PFLOP/s to serve.  Pool a: 2-chip blocks of 1 PFLOP/s chips at $5/chip-hour
    # ($10 per 2 PFLOP/s block, $5 per PFLOP/s); pool b: one 2-chip block of 1.5 PFLOP/s chips at
    # $6/chip-hour ($12 per 3 PFLOP/s, $4 per PFLOP/s).  Unmet demand costs $100 per PFLOP/s.
    return instance_data(
        hours=1,
        chips=[chip("h100"), chip("big", peak_tflops=1500.0)],
        pools=[pool("a", usd_per_chip_hour=5.0, available=a_chips, block=2),
               pool("b", chip="big", usd_per_chip_hour=6.0, available=2, block=2)],
        workloads=[inference(demand_pflops=6.5, efficiency={"h100": 1.0, "big": 1.0}, unmet_usd_per_pflops_hour=100.0)],
    )


@pytest.mark.parametrize("a_chips, cost", [(4, 32.0), (2, 172.0)])
def test_rounding_covers_the_rest_with_the_cheapest_block_that_fits(a_chips, cost):
    # The LP takes b's block (3 PFLOP/s, $12) and 1.75 of a's (3.5 PFLOP/s, $17.50): $29.50.
    # Rounding down leaves b = 1, a = 1 and 1.5 PFLOP/s short.  With room for a second block of a
    # ($10 for 2 PFLOP/s, cheaper than $150 of unmet demand) the plan is b + 2a = $32, which is also
    # the optimum; with a holding one block only, the 1.5 PFLOP/s is left unmet: 12 + 10 + 150.
    model = build_model(build_model_data(optimizer.instance_from_data(_cover_case(a_chips))))
    lp_value, lp_values, _ = lp_relaxation(model, None)
    assert lp_value == pytest.approx(29.5 if a_chips == 4 else 172.0)  # a: one block, 1.5 unmet
    whole = np.where(model.col_integer, np.floor(lp_values + 1e-6), model.col_lower)
    rounded = round_up_cover(model, model.col_lower, model.col_upper, whole)
    plan = complete_continuous(model, model.col_lower, model.col_upper, rounded, None)
    assert is_feasible(model, plan)
    assert model.col_cost @ plan == pytest.approx(cost)


def test_a_heuristic_out_of_time_still_returns_the_rounded_plan(tmp_path):
    from optimizer.library.generate import generate_instance

    instance = optimizer.instance_from_data(generate_instance(6, 6, 48, 0))
    model = build_model(build_model_data(instance))
    lp_value, lp_values, _ = lp_relaxation(model, None)
    split = split_by_hour(model)
    values, notes = heuristic_plan(model, lp_values, split, deadline=0.0)  # long past: no hour is solved
    assert is_feasible(model, values)
    assert model.col_cost @ values == pytest.approx(notes["rounded_plan_usd"])
    assert model.col_cost @ values >= lp_value
    with_time, _ = heuristic_plan(model, lp_values, split, deadline=time.perf_counter() + 60)
    assert is_feasible(model, with_time) and model.col_cost @ with_time <= model.col_cost @ values + 1e-6


def test_a_generated_instance_solved_to_one_percent_passes_the_checker(tmp_path):
    from optimizer.library.generate import generate_instance

    instance = optimizer.instance_from_data(generate_instance(6, 8, 72, 1))
    plan = solve_checked(instance, tmp_path, method="decompose", mip_rel_gap=0.01, time_limit_s=60)
    assert plan.has_plan and plan.gap is not None and plan.objective_usd >= plan.bound_usd - 1e-6


def test_rounding_finishes_a_hard_training_run_the_lp_floors_leave_short(tmp_path):
    # 100 EFLOP of hard training on 4-chip blocks of 1 PFLOP/s chips: 14.4 EFLOP per block-hour,
    # so 6.94 block-hours; the LP's floors leave part of it undone and nothing may be short, so
    # rounding must add the 7th block-hour itself (4 chips x $1): $28, which is the optimum.
    data = instance_data(
        hours=4,
        pools=[pool("p", usd_per_chip_hour=1.0, available=8, block=4)],
        workloads=[training(work_eflop=100.0)],
    )
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    _, lp_values, _ = lp_relaxation(model, None)
    values, notes = heuristic_plan(model, lp_values, split_by_hour(model), deadline=0.0)
    assert is_feasible(model, values)
    assert notes["rounded_plan_usd"] == pytest.approx(28.0) and model.col_cost @ values == pytest.approx(28.0)
    assert solve_checked(data, tmp_path, method="decompose").objective_usd == pytest.approx(28.0)


def test_blocks_at_a_site_not_chosen_are_bounded_to_zero():
    # A single-site run (the LP may split it between the sites, with a fractional site_choice):
    # once its site is fixed, bound propagation through single_site_link must close the other
    # site's pool, or rounding the LP down could leave blocks where the run may not be.
    data = instance_data(
        hours=3,
        sites=[site("east"), site("west", region="us-west-2")],
        pools=[pool("pe", site="east", available=8, block=4), pool("pw", site="west", available=8, block=4)],
        workloads=[training(work_eflop=80.0, single_site=True)],
    )
    model_data = build_model_data(optimizer.instance_from_data(data))
    model = build_model(model_data)
    _, lp_values, _ = lp_relaxation(model, None)
    lower, upper = fix_horizon_columns(model, lp_values)
    chosen = model.variables["site_choice"]
    chosen_site = chosen.coords[1][np.argmax(lower[chosen.slice])]
    tightened = tighten_upper(model, lower, upper)
    blocks = model.variables["blocks"]
    at_chosen = model_data.pool_site[blocks.coords[1]] == chosen_site
    assert np.all(tightened[blocks.slice][~at_chosen] == 0)
    assert np.all(tightened[blocks.slice][at_chosen] == upper[blocks.slice][at_chosen])
    assert np.all(tightened >= lower)


def test_rounding_down_raises_a_run_indicator_it_would_leave_under_its_chips():
    # One hour, 21.6 EFLOP of hard training on 4-chip blocks of 1 PFLOP/s chips ($1/chip-hour,
    # 8 chips): 6 chip-hours, 1.5 blocks.  min_chips 4 adds runs (0 or 1) and the rows
    # chips <= 8 x runs and chips >= 4 x runs.  At the LP point blocks 1.5, runs 0.75 (a vertex
    # the LP may as well pick: runs costs nothing), plain rounding down gives 4 chips with
    # runs 0, which breaks training_runs; round_down raises runs to 1 instead.  Covering the
    # work then adds the second block: 8 chips, $8, which is also the optimum (6 chips in 4s).
    data = instance_data(hours=1, pools=[pool("p", available=8, block=4)],
                         workloads=[training(work_eflop=21.6, min_chips=4)])
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    blocks, runs = model.variables["blocks"].slice, model.variables["runs"].slice
    lp_point = np.zeros(model.n_cols)
    lp_point[blocks], lp_point[runs] = 1.5, 0.75
    assert not is_feasible(model, np.floor(lp_point))  # 1 block (4 chips), runs 0
    down = round_down(model, model.col_lower, model.col_upper, lp_point)
    assert down[blocks] == pytest.approx([1.0]) and down[runs] == pytest.approx([1.0])
    activity = model.matrix @ down
    assert np.all(activity <= model.row_upper + 1e-9)
    values, notes = heuristic_plan(model, lp_point, split_by_hour(model), deadline=0.0)
    assert is_feasible(model, values) and notes["rounded_plan_usd"] == pytest.approx(8.0)


def test_rounding_keeps_the_lps_routing_and_buys_the_blocks_it_needs(tmp_path):
    # One hour, 3 PFLOP/s (at the flagship's 1e12 FLOP per token) routed between a flagship and a
    # draft at half its FLOP per token, the draft at most half the tokens; 2-chip blocks of
    # 1 PFLOP/s chips at $1/chip-hour, unmet demand $100 per PFLOP/s-hour.  The LP routes 1.5 to
    # each: 1.5 chips for the flagship, 0.75 for the draft, $2.25, and every block floors to 0.
    # With the routed shares put back to 0, the demand row has no block in it and rounding could
    # only leave it unmet ($300).  Kept at the LP's shares, each variant's compute row asks for a
    # block: $4, the optimum (one block each, or two for the flagship alone; one block for the
    # flagship only serves 2 of the 3).
    data = instance_data(hours=1, pools=[pool("p", available=10, block=2)], workloads=[inference(
        id="chat", demand_pflops=3.0, unmet_usd_per_pflops_hour=100.0,
        variants=[{"id": "flagship", "flop_per_token": 1e12},
                  {"id": "draft", "flop_per_token": 0.5e12, "max_share": 0.5}])])
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    lp_value, lp_values, _ = lp_relaxation(model, None)
    assert lp_value == pytest.approx(2.25)
    values, notes = heuristic_plan(model, lp_values, split_by_hour(model), deadline=0.0)
    assert is_feasible(model, values) and notes["rounded_plan_usd"] == pytest.approx(4.0)
    assert solve_checked(data, tmp_path, method="decompose").objective_usd == pytest.approx(4.0)


def test_rounding_down_gives_up_coverage_rather_than_buy_a_block_for_it():
    # One hour, 3.6 PFLOP/s on 4-chip blocks of 1 PFLOP/s chips at $4/chip-hour, and a usage
    # commitment at $2.5/chip-hour.  At the LP point blocks 0.9 (3.6 chips), covered 3.6, level 4,
    # rounding down leaves 3 covered chips and no block: covered_usage (covered - chips in use
    # <= 0) is 3 over.  Raising the block mends it at $16 for the 3 chips ($5.33 a chip); giving
    # up the coverage costs its $4 a chip saving, less, and can break no other row.  So round_down
    # lowers the coverage to 0 and leaves the block to the demand row (round_up_cover's job).
    from tests.test_instruments import USAGE, commitment_week

    data = commitment_week(USAGE, demand=(3.6,))
    data["pools"][0]["block"] = 4
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    blocks, covered = model.variables["blocks"].slice, model.variables["usage_covered"].slice
    level = model.variables["usage_level"].slice
    lp_point = np.zeros(model.n_cols)
    lp_point[blocks], lp_point[covered], lp_point[level] = 0.9, 3.6, 4.0
    down = round_down(model, model.col_lower, model.col_upper, lp_point)
    assert down[blocks] == pytest.approx([0.0]) and down[covered] == pytest.approx([0.0])
    assert down[level] == pytest.approx([4.0])
    assert np.all(model.matrix @ down <= model.row_upper + 1e-9)


def test_the_training_milp_is_stopped_at_the_deadline_and_the_hours_plan_kept(monkeypatch, tmp_path):
    # The training MILP runs in a worker process killed at the deadline (HiGHS in process ran it
    # 72 s past a 26 s limit on envelope-quarter).  With a worker that never answers, the step
    # still ends by the deadline (plus the worker's grace) and the hour-by-hour plan is returned.
    from optimizer.solvers.backends.highs import worker as highs_worker
    from optimizer.solvers.backends.highs.decompose import improve_by_hour, round_plan

    script = tmp_path / "hang.py"
    script.write_text("import pickle, sys, time\npickle.load(sys.stdin.buffer)\ntime.sleep(120)\n")
    monkeypatch.setattr(highs_worker, "WORKER_ARGS", [str(script)])
    data = instance_data(hours=4, pools=[pool("p", usd_per_chip_hour=1.0, available=8, block=4)],
                         workloads=[training(work_eflop=100.0)])
    model = build_model(build_model_data(optimizer.instance_from_data(data)))
    _, lp_values, _ = lp_relaxation(model, None)
    split = split_by_hour(model)
    started = time.perf_counter()
    rounded = round_plan(model, lp_values, split, started + 60)
    values, notes = improve_by_hour(model, lp_values, split, rounded, started + 2.0)
    assert time.perf_counter() - started < 2.0 + highs_worker.GRACE_SECONDS + 5  # not the child's 120 s
    assert "time limit" in notes["training_status"]
    assert is_feasible(model, values) and model.col_cost @ values == pytest.approx(28.0)
