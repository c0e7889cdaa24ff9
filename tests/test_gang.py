"""Gang-scheduled training runs: hand-checked instances, validation, the checker's gang rules,
and HiGHS / CBC / CP-SAT agreement on random gang instances."""

import copy
import csv

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import optimizer
from optimizer import SolveStatus
from optimizer.analyses.greedy import greedy_plan
from tests.helpers import chipmix, instance_data, pool, site, solve_checked, training, inference


def two_gangs(a_deadline=6, a_price=None):
    """One pool of 8 chips (one 8-chip block) at $2/chip-hour; energy costs $100/MWh in hour 0 only.

    A chip delivers 1000 TFLOP/s, so 8 chips deliver 8 * 1000 * 0.0036 = 28.8 EFLOP per hour.
    Run A: 80 EFLOP  -> D = ceil(80 / 28.8) = 3 hours, window [0, a_deadline).
    Run B: 50 EFLOP  -> D = ceil(50 / 28.8) = 2 hours, window [0, 4).
    Both need all 8 chips, so they cannot overlap.  With a_deadline = 6:
    - A first ([0,3) or later) leaves B no 2 free hours before hour 4: A first never works.
    - B first: B in [0,2) with A in [2,5) or [3,6); or B in [1,3) with A in [3,6).
      Hour 0 costs 8 chips * 1 kW * $100/MWh = $0.80 of energy, so the optimum avoids it:
      B in [1,3), A in [3,6), cost 8 * (2 + 3) * $2 = $80.
    """
    return instance_data(
        hours=6,
        sites=[site(energy_usd_per_mwh=[100, 0, 0, 0, 0, 0])],
        pools=[pool("p", available=8, usd_per_chip_hour=2.0, block=8)],
        workloads=[
            training("A", work_eflop=80.0, deadline_hour=a_deadline, gang_chips=8,
                     **({} if a_price is None else {"short_usd_per_eflop": a_price})),
            training("B", work_eflop=50.0, deadline_hour=4, gang_chips=8),
        ],
    )


def hours_of(plan, workload):
    frame = plan.allocations[plan.allocations.workload == workload]
    assert set(frame.chips) <= {8}
    return sorted(frame.hour)


def test_two_gang_runs_only_one_order_meets_both_deadlines(tmp_path, engine):
    plan = solve_checked(two_gangs(), tmp_path, engine=engine)
    assert plan.status is SolveStatus.OPTIMAL
    assert hours_of(plan, "B") == [1, 2]
    assert hours_of(plan, "A") == [3, 4, 5]
    assert plan.objective_usd == pytest.approx(80.0)
    assert plan.cost_usd["energy"] == pytest.approx(0.0)


def test_a_priced_gang_run_that_cannot_fit_is_skipped_whole(tmp_path, engine):
    # A's deadline 5: after B (which must end by hour 4) A has at most hours 2-4... but B needs
    # [0,2) or [1,3) or [2,4), so A's 3 hours fit only as [2,5) after B in [0,2): cost
    # 5 * 8 * $2 + $0.80 (B uses hour 0) = $80.80.  Skipping A costs 80 EFLOP * $1 = $80 plus
    # B alone in [1,3) for $32: $112.  So A runs: B [0,2), A [2,5).
    plan = solve_checked(two_gangs(a_deadline=5, a_price=1.0), tmp_path, engine=engine)
    assert hours_of(plan, "B") == [0, 1]
    assert hours_of(plan, "A") == [2, 3, 4]
    assert plan.objective_usd == pytest.approx(80.8)
    # At $0.10 per EFLOP skipping A ($8 + B's $32 = $40) beats running it ($80.80).
    plan = solve_checked(two_gangs(a_deadline=5, a_price=0.1), tmp_path, engine=engine)
    assert hours_of(plan, "A") == []
    assert plan.short_eflop == pytest.approx(80.0)
    assert plan.cost_usd["penalty"] == pytest.approx(8.0)
    assert plan.objective_usd == pytest.approx(40.0)


def test_hard_gang_runs_that_cannot_both_fit_are_infeasible_and_named(tmp_path):
    data = two_gangs(a_deadline=4)  # A needs 3 hours, B 2, both within [0, 4) on one pool
    plan = optimizer.solve(optimizer.instance_from_data(data))
    assert plan.status is SolveStatus.INFEASIBLE
    text = plan.infeasibility.render()
    assert "gang_chips" in text and "gang run" in text
    assert plan.infeasibility.unserved_eflop in (pytest.approx(50.0), pytest.approx(80.0))


def test_gang_chips_count_against_site_power_and_share_the_pool_with_inference(tmp_path, engine):
    # Campus: 16 chips, cap 0.012 MW = 12 chips of 1 kW.  Inference needs 4 PFLOP/s (4 chips)
    # every hour.  The gang run (8 chips, 28.8 EFLOP -> D = 1 hour) fits beside it (4 + 8 = 12),
    # in the cheapest hour: energy is $0 in hour 1 and $50/MWh otherwise.
    data = instance_data(
        hours=3,
        sites=[site("campus", cloud="owned", power_cap_mw=0.012, energy_usd_per_mwh=[50, 0, 50])],
        pools=[pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.0, available=16)],
        workloads=[
            inference("serve", demand_pflops=4.0),
            training("gang", work_eflop=28.8, deadline_hour=3, gang_chips=8),
        ],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert hours_of(plan, "gang") == [1]
    # Energy: inference 4 kW in hours 0 and 2 at $50/MWh = 2 * 0.004 * 50 = $0.40.
    assert plan.objective_usd == pytest.approx(0.4)
    # With a 0.011 MW cap the gang run no longer fits beside inference: hard, so infeasible.
    tight = copy.deepcopy(data)
    tight["sites"][0]["power_cap_mw"] = 0.011
    assert optimizer.solve(optimizer.instance_from_data(tight), engine=engine).status is SolveStatus.INFEASIBLE


def test_a_gang_run_on_a_reserved_pool_needs_the_chips_reserved(tmp_path, engine):
    # Reserved 8-chip blocks at $1/chip-hour for the whole 4-hour horizon ($32 per block) versus
    # on-demand at $5: the 8-chip gang run of 2 hours costs $80 on demand, $32 reserved.
    data = instance_data(
        hours=4,
        pools=[
            pool("res", pricing="reserved", usd_per_chip_hour=1.0, available=16, block=8),
            pool("od", usd_per_chip_hour=5.0, available=8, block=8),
        ],
        workloads=[training("gang", work_eflop=57.6, gang_chips=8)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.reservations.set_index("pool").chips["res"] == 8
    assert set(plan.allocations.pool) == {"res"} and len(hours_of(plan, "gang")) == 2
    assert plan.objective_usd == pytest.approx(32.0)


def test_greedy_places_gang_runs_deadline_first(tmp_path):
    plan = greedy_plan(optimizer.instance_from_data(two_gangs()))
    assert plan.status is SolveStatus.FEASIBLE
    assert hours_of(plan, "B") == [1, 2] and hours_of(plan, "A") == [3, 4, 5]
    plan.write(tmp_path / "greedy")
    assert optimizer.check_plan(optimizer.instance_from_data(two_gangs()), tmp_path / "greedy").ok


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, path, words",
    [
        ({"gang_chips": 12}, "workloads[0](A).gang_chips", "not a whole number of pool 'p'"),
        ({"gang_chips": 16, "max_chips": 8}, "workloads[0](A).gang_chips", "more than max_chips"),
        ({"gang_chips": 16}, "workloads[0](A).gang_chips", "hard gang run: no eligible pool can hold 16 chips"),
        ({"gang_chips": 0}, "workloads[0](A).gang_chips", "greater than or equal to 1"),
    ],
)
def test_bad_gang_runs_are_input_errors(change, path, words):
    data = two_gangs()
    data["workloads"][0].update(change)
    with pytest.raises(optimizer.InputError) as caught:
        optimizer.instance_from_data(data)
    assert any(error.path == path and words in error.reason for error in caught.value.errors), caught.value.render()


def test_cli_reports_a_bad_gang_run_with_exit_2(tmp_path):
    import yaml

    data = two_gangs()
    data["workloads"][1]["gang_chips"] = 12
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = chipmix("solve", path, "--out", tmp_path / "plan")
    assert result.returncode == 2
    assert "workloads[1](B).gang_chips" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "plan").exists()


# -- the checker's gang rules --------------------------------------------------------------------


def _tamper(tmp_path, rows):
    instance = optimizer.instance_from_data(two_gangs())
    plan = solve_checked(instance, tmp_path)
    target = plan.write(tmp_path / "plan")
    with (target / "allocations.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["hour", "workload", "pool", "chips"])
        writer.writerows(rows)
    return optimizer.check_plan(instance, target)


@pytest.mark.parametrize(
    "rows, words",
    [
        # B preempted: hours 0 and 2 with a gap.
        ([[0, "B", "p", 8], [2, "B", "p", 8], [3, "A", "p", 8], [4, "A", "p", 8], [5, "A", "p", 8]], "have gaps"),
        # A runs only 2 of its 3 hours.
        ([[1, "B", "p", 8], [2, "B", "p", 8], [3, "A", "p", 8], [4, "A", "p", 8]], "needs exactly 3"),
    ],
)
def test_checker_rejects_broken_gang_runs(tmp_path, rows, words):
    report = _tamper(tmp_path, rows)
    assert any(v.startswith("gang_run[") and words in v for v in report.violations), report.render()


def test_checker_rejects_a_gang_run_split_over_pools_or_resized(tmp_path):
    data = two_gangs()
    data["pools"].append(pool("q", available=16, usd_per_chip_hour=2.0, block=8))
    instance = optimizer.instance_from_data(data)
    plan = solve_checked(instance, tmp_path)
    target = plan.write(tmp_path / "plan")
    rows = [[1, "B", "p", 8], [2, "B", "q", 8], [0, "A", "q", 16], [1, "A", "q", 16], [2, "A", "p", 8]]
    with (target / "allocations.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["hour", "workload", "pool", "chips"], *rows])
    report = optimizer.check_plan(instance, target)
    assert any("gang_run[B]: uses 2 pools" in v for v in report.violations), report.render()
    assert any("gang_run[A]: uses 2 pools" in v for v in report.violations), report.render()
    rows = [[1, "B", "p", 8], [2, "B", "p", 8], [3, "A", "q", 16], [4, "A", "q", 16], [5, "A", "q", 16]]
    with (target / "allocations.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["hour", "workload", "pool", "chips"], *rows])
    report = optimizer.check_plan(instance, target)
    assert any("gang_run[A]: holds 16 chips" in v for v in report.violations), report.render()


# -- engines agree on random gang instances --------------------------------------------------------


@st.composite
def gang_instances(draw):
    hours = draw(st.integers(3, 8))
    pools = []
    for i in range(draw(st.integers(1, 2))):
        pools.append({
            "id": f"p{i}", "site": "s", "chip": "c", "pricing": draw(st.sampled_from(["on_demand", "reserved"])),
            "usd_per_chip_hour": draw(st.sampled_from([0.5, 1.0, 2.5])), "block": draw(st.sampled_from([1, 4])),
            "available": draw(st.sampled_from([8, 12, 16])),
        })
    workloads = []
    for i in range(draw(st.integers(1, 3))):
        release = draw(st.integers(0, hours - 2))
        workloads.append({
            "type": "training", "id": f"g{i}", "efficiency": {"c": 1.0}, "gang_chips": draw(st.sampled_from([4, 8])),
            "work_eflop": draw(st.sampled_from([10.0, 30.0, 60.0])), "release_hour": release,
            "deadline_hour": draw(st.integers(release + 1, hours)),
            "short_usd_per_eflop": draw(st.sampled_from([0.1, 1.0, 5.0])),
        })
    if draw(st.booleans()):
        workloads.append({
            "type": "inference", "id": "serve", "efficiency": {"c": 1.0},
            "demand_pflops": [draw(st.sampled_from([0.0, 2.0, 6.0])) for _ in range(hours)],
            "unmet_usd_per_pflops_hour": draw(st.sampled_from([1.0, 10.0])),
        })
    site_entry = {"id": "s", "cloud": "owned", "region": "r",
                  "energy_usd_per_mwh": [draw(st.sampled_from([0.0, 100.0])) for _ in range(hours)]}
    if draw(st.booleans()):
        site_entry["power_cap_mw"] = draw(st.sampled_from([0.008, 0.012]))
    return {"name": "gangs", "hours": hours, "chips": [{"id": "c", "vendor": "nvidia", "peak_tflops": 1000.0, "power_kw": 1.0}],
            "sites": [site_entry], "pools": pools, "workloads": workloads}


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=gang_instances())
def test_engines_agree_on_random_gang_instances(tmp_path, data):
    plans = {engine: solve_checked(data, tmp_path, engine=engine) for engine in ("highs", "pulp-cbc", "cpsat")}
    for engine, plan in plans.items():
        assert plan.status is SolveStatus.OPTIMAL, (engine, plan.details["solver_status"])
    best = plans["highs"].objective_usd
    assert plans["pulp-cbc"].objective_usd == pytest.approx(best, rel=1e-6, abs=1e-6)
    scaling = plans["cpsat"].details["solver"]["scaling_bound_usd"]
    assert abs(plans["cpsat"].objective_usd - best) <= scaling + 1e-6 * max(1.0, best)
    started = {w for w in plans["highs"].allocations.workload if w.startswith("g")}
    event(f"gang runs scheduled: {len(started)}")


def test_a_start_grid_keeps_the_gang_span_on_it(tmp_path, engine):
    # 2 chips for D = 2 hours (14.4 EFLOP at 1000 TFLOP/s), $1 a chip-hour and 1 kW each at an energy
    # price of [100, 0, 0, 40, 50, 100] USD/MWh: start 1 costs 4 + 0 = 4.0; on a 3-hour grid from
    # release 0 only starts 0 (4 + 0.002 x 100 = 4.2) and 3 (4 + 0.002 x 90 = 4.18) exist: start 3.
    from tests.helpers import chip, chips_of, instance_data, pool, site, solve_checked, training

    def case(step):
        extra = {"gang_start_step_hours": step} if step else {}
        return instance_data(hours=6, chips=[chip(power_kw=1.0)],
                             sites=[site(energy_usd_per_mwh=[100.0, 0.0, 0.0, 40.0, 50.0, 100.0])],
                             pools=[pool("p", available=4)], workloads=[training(work_eflop=14.4, gang_chips=2, **extra)])

    free = solve_checked(case(None), tmp_path, engine=engine)
    assert free.objective_usd == pytest.approx(4.0) and chips_of(free, hour=1) == 2
    gridded = solve_checked(case(3), tmp_path, engine=engine)
    assert gridded.objective_usd == pytest.approx(4.18)
    assert [chips_of(gridded, hour=t) for t in range(6)] == [0, 0, 0, 2, 2, 0]


def test_the_checker_refuses_a_gang_span_off_its_grid(tmp_path):
    from tests.helpers import instance_data, pool, training

    data = instance_data(hours=6, pools=[pool("p", available=4)],
                         workloads=[training(work_eflop=14.4, gang_chips=2, gang_start_step_hours=3)])
    instance = optimizer.instance_from_data(data)
    plan = optimizer.solve(instance, mip_rel_gap=0.0)
    target = plan.write(tmp_path / "plan")
    lines = (target / "allocations.csv").read_text().splitlines()
    start = int(lines[1].split(",")[0])
    moved = [",".join([str(int(line.split(",")[0]) + 1), *line.split(",")[1:]]) for line in lines[1:]]
    (target / "allocations.csv").write_text("\n".join([lines[0], *moved]) + "\n")
    report = optimizer.check_plan(instance, target)
    assert any(f"starts in hour {start + 1}, not on its grid" in v for v in report.violations), report.violations
    with pytest.raises(optimizer.InputError, match="only a gang run has a start grid"):
        optimizer.instance_from_data(instance_data(workloads=[training(gang_start_step_hours=3)]))
