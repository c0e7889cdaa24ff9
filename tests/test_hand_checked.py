"""Tiny instances whose optimum is worked out by hand, one per constraint family.

Units used throughout: a chip of 1000 TFLOP/s at efficiency 1 serves 1 PFLOP/s,
and one chip-hour of it delivers 1000 * 0.0036 = 3.6 EFLOP.
"""

import pytest

from optimizer import SolveStatus
from tests.helpers import chip, chips_of, inference, instance_data, pool, site, solve_checked, training


def test_cheapest_pool_first_until_its_capacity(tmp_path, engine):
    # Demand 5: the cheap pool (3 chips at $1) is full, 2 more from the dear one at $3: 3 + 6 = 9.
    data = instance_data(
        hours=1,
        pools=[pool("cheap", usd_per_chip_hour=1, available=3), pool("dear", usd_per_chip_hour=3, available=10)],
        workloads=[inference(demand_pflops=5)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd == pytest.approx(9)
    assert chips_of(plan, pool="cheap") == 3 and chips_of(plan, pool="dear") == 2
    assert plan.gap == 0


def test_blocks_round_up_and_mix_with_smaller_blocks(tmp_path, engine):
    # Demand 10 chips.  Blocks of 8 at $1 alone need 16 chips ($16); 8 + 2 single chips at
    # $1.5 cost 8 + 3 = 11, the optimum.
    data = instance_data(
        hours=1,
        pools=[pool("big", usd_per_chip_hour=1, available=16, block=8), pool("small", usd_per_chip_hour=1.5, available=4)],
        workloads=[inference(demand_pflops=10)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(11)
    assert chips_of(plan, pool="big") == 8 and chips_of(plan, pool="small") == 2


@pytest.mark.parametrize(
    ("reservable", "reserved", "cost"),
    [
        # cost(R) = 4 R + 2 * sum_t max(d_t - R, 0) with d = [3, 3, 3, 1]:
        # R=0: 20, R=1: 16, R=2: 14, R=3: 12, R=4: 16 -> reserve 3.
        (10, 3, 12),
        # At most 2 reservable: R=2 and 3 on-demand chip-hours: 8 + 6 = 14.
        (2, 2, 14),
    ],
)
def test_reserved_paid_every_hour_versus_on_demand(tmp_path, engine, reservable, reserved, cost):
    data = instance_data(
        hours=4,
        pools=[
            pool("res", pricing="reserved", usd_per_chip_hour=1, available=reservable),
            pool("od", usd_per_chip_hour=2, available=10),
        ],
        workloads=[inference(demand_pflops=[3, 3, 3, 1])],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(cost)
    assert plan.reservations.set_index("pool").chips["res"] == reserved
    assert plan.cost_usd["reserved"] == pytest.approx(4 * reserved)


@pytest.mark.parametrize(
    ("interruption", "spot_chips", "cost"),
    [
        (0.5, 4, 1.6),  # spot serves 0.5 PFLOP/s per chip: 4 chips x $0.4 = 1.6 < 2 on-demand
        (0.75, 0, 2.0),  # spot serves 0.25: 8 chips x $0.4 = 3.2 > 2 on-demand
    ],
)
def test_spot_delivers_its_uninterrupted_share(tmp_path, engine, interruption, spot_chips, cost):
    data = instance_data(
        hours=1,
        pools=[
            pool("spot", pricing="spot", usd_per_chip_hour=0.4, available=10, interruption_rate=interruption),
            pool("od", usd_per_chip_hour=1.0, available=10),
        ],
        workloads=[inference(demand_pflops=2)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(cost)
    assert chips_of(plan, pool="spot") == spot_chips


def test_power_cap_binds_at_owned_campus(tmp_path, engine):
    # Campus cap 5 kW; a chip draws 1 kW x PUE 1.25 = 1.25 kW, so 4 chips at most.
    # Owned chip: $0.5 + 1.25 kWh x $100/MWh = $0.625 < $2 cloud.  Demand 6:
    # 4 campus (2.0 usage + 0.5 energy) + 2 cloud (4.0) = 6.5.
    data = instance_data(
        hours=1,
        sites=[site("cloud"), site("campus", cloud="owned", power_cap_mw=0.005, pue=1.25, energy_usd_per_mwh=100)],
        pools=[
            pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.5, available=10),
            pool("rent", usd_per_chip_hour=2, available=10),
        ],
        workloads=[inference(demand_pflops=6)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(6.5)
    assert chips_of(plan, pool="own") == 4
    assert plan.cost_usd == pytest.approx({"usage": 6.0, "reserved": 0.0, "energy": 0.5, "penalty": 0.0, "restarts": 0.0, "blocks": 0.0, "commitments": 0.0, "fixed": 0.0, "certificates": 0.0, "carbon": 0.0,
                                            "contract_shortfall": 0.0, "total": 6.5})


def test_training_moves_to_cheap_energy_hours(tmp_path, engine):
    # 3 chip-hours of work, 2 chips per hour, energy $0.10 / $0.01 / $0.05 per chip-hour:
    # 2 chips in hour 1 and 1 in hour 2 = 0.02 + 0.05 = 0.07.
    data = instance_data(
        hours=3,
        sites=[site("campus", cloud="owned", energy_usd_per_mwh=[100, 10, 50])],
        pools=[pool("own", site="campus", pricing="owned", usd_per_chip_hour=0, available=2)],
        workloads=[training(work_eflop=3 * 3.6)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(0.07)
    assert [chips_of(plan, hour=t) for t in range(3)] == [0, 2, 1]


@pytest.mark.parametrize(("unmet_price", "cost", "unmet"), [(3, 9, 3), (10, 15, 0)])
def test_unmet_demand_is_priced(tmp_path, engine, unmet_price, cost, unmet):
    # Serving costs $5 per PFLOP/s-hour; demand [1, 2].  At $3 unmet leave it all: 3 x 3 = 9;
    # at $10 serve it all: 3 chip-hours x 5 = 15.
    data = instance_data(
        pools=[pool("p", usd_per_chip_hour=5)],
        workloads=[inference(demand_pflops=[1, 2], unmet_usd_per_pflops_hour=unmet_price)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(cost)
    assert plan.unmet_pflops_hours == pytest.approx(unmet)
    assert plan.cost_usd["penalty"] == pytest.approx(unmet * unmet_price)


def test_training_shortfall_is_priced(tmp_path, engine):
    # Work 7.2 EFLOP but one chip-hour (3.6 EFLOP) exists at $2: use it ($0.56/EFLOP < $1) and pay
    # 3.6 x $1 for the rest: 5.6.
    data = instance_data(
        hours=1,
        pools=[pool("p", usd_per_chip_hour=2, available=1)],
        workloads=[training(work_eflop=7.2, short_usd_per_eflop=1.0)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(5.6)
    assert plan.short_eflop == pytest.approx(3.6)
    assert plan.shortfall.set_index("workload").short_eflop["train"] == pytest.approx(3.6)


def test_max_chips_spreads_a_run_over_hours(tmp_path, engine):
    # 4 chip-hours of work, at most 2 chips in any hour, only hours 1-2 in the window, two pools.
    data = instance_data(
        hours=4,
        pools=[pool("a", available=10), pool("b", available=10)],
        workloads=[training(work_eflop=4 * 3.6, release_hour=1, deadline_hour=3, max_chips=2)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(4)
    assert [chips_of(plan, hour=t) for t in range(4)] == [0, 2, 2, 0]


def test_single_site_keeps_a_run_in_one_site(tmp_path, engine):
    # 4 chip-hours over 2 hours.  Site A: 1 chip at $1; site B: 2 chips at $1.5.
    # Split: A 2 chip-hours + B 2 = 2 + 3 = 5.  In one site only B fits: 4 x 1.5 = 6.
    sites = [site("A"), site("B")]
    pools = [pool("a", site="A", usd_per_chip_hour=1, available=1), pool("b", site="B", usd_per_chip_hour=1.5, available=2)]
    split = solve_checked(
        instance_data(sites=sites, pools=pools, workloads=[training(work_eflop=4 * 3.6)]), tmp_path, engine=engine
    )
    assert split.objective_usd == pytest.approx(5)
    single = solve_checked(
        instance_data(sites=sites, pools=pools, workloads=[training(work_eflop=4 * 3.6, single_site=True)]),
        tmp_path,
        engine=engine,
    )
    assert single.objective_usd == pytest.approx(6)
    assert set(single.allocations.pool) == {"b"}


def test_sites_allow_list_and_efficiency_restrict_pools(tmp_path, engine):
    # The cheapest pool is in a site the workload may not use; the next is a chip it cannot run on.
    data = instance_data(
        hours=1,
        chips=[chip("h100"), chip("tpu", vendor="google")],
        sites=[site("ok"), site("banned")],
        pools=[
            pool("banned-h100", site="banned", usd_per_chip_hour=0.1),
            pool("ok-tpu", site="ok", chip="tpu", usd_per_chip_hour=0.2),
            pool("ok-h100", site="ok", usd_per_chip_hour=1.0),
        ],
        workloads=[inference(demand_pflops=2, efficiency={"h100": 0.5}, sites=["ok"])],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    # 2 PFLOP/s at 0.5 PFLOP/s per chip: 4 chips of ok-h100.
    assert plan.objective_usd == pytest.approx(4)
    assert set(plan.allocations.pool) == {"ok-h100"}


def test_workloads_share_pool_capacity(tmp_path, engine):
    # One pool of 3 chips at $1 serves inference (2 chips) and training; training needs 2
    # chip-hours in one hour, so 1 comes from the $4 pool: 3 + 4 = 7.
    data = instance_data(
        hours=1,
        pools=[pool("shared", usd_per_chip_hour=1, available=3), pool("dear", usd_per_chip_hour=4, available=3)],
        workloads=[inference(demand_pflops=2), training(work_eflop=2 * 3.6)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(7)
    assert chips_of(plan, pool="shared") == 3


def test_reserved_chips_serve_several_workloads_and_hours(tmp_path, engine):
    # A reservation is paid once per horizon-hour and shared: 2 reserved chips ($0.5 x 2 hours
    # each) serve inference in hour 0 and training in hour 1 = 2; on-demand would cost 4 x 1.
    data = instance_data(
        hours=2,
        pools=[pool("res", pricing="reserved", usd_per_chip_hour=0.5, available=4), pool("od", usd_per_chip_hour=1.0)],
        workloads=[inference(demand_pflops=[2, 0]), training(work_eflop=2 * 3.6, release_hour=1)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(2)
    assert plan.reservations.set_index("pool").chips["res"] == 2
    assert chips_of(plan, pool="od") == 0


def test_nothing_to_decide_is_an_empty_optimal_plan(tmp_path, engine):
    # No demand in any hour and no capacity: the model has no columns at all.
    data = instance_data(hours=1, pools=[pool("p", available=0)], workloads=[inference(demand_pflops=0)])
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.status is SolveStatus.OPTIMAL and plan.objective_usd == 0 and plan.allocations.empty


def test_only_priced_unmet_demand(tmp_path, engine):
    # No pool can serve (capacity 0), demand priced: all of it is unmet, 2 x 3 x $7 = 42.
    data = instance_data(
        hours=2,
        pools=[pool("p", available=0)],
        workloads=[inference(demand_pflops=3, unmet_usd_per_pflops_hour=7)],
    )
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(42) and plan.unmet_pflops_hours == pytest.approx(6)
