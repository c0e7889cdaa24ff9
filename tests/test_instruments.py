"""Procurement instruments: capacity blocks, spend and usage commitments, take-or-pay contracts.

Each optimum is worked out by hand in the test; every solve goes through the independent checker
(solve_checked), and the checker is shown to catch tampered purchases and coverage."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

import optimizer
from optimizer.plans.checker import check_plan
from tests.helpers import chip, chipmix as run_cli, inference, instance_data, pool, site, solve_checked

#: Every engine and method.
ENGINES = [("highs", "direct"), ("highs", "decompose"), ("pulp-highs", "direct"), ("pulp-cbc", "direct"),
           ("cpsat", "direct")]


def solve(data, tmp_path, engine="highs", method="direct"):
    return solve_checked(data, tmp_path, engine=engine, method=method)


def block_week(demand_hours: list[int], hours: int = 10) -> dict:
    """One chip of work (1 PFLOP/s on a 1000 TFLOP/s chip) in each of ``demand_hours``: on demand at
    $3/chip-hour, or on a capacity-block pool under 4-hour blocks at $2/chip-hour ($8 a block)."""
    demand = [1.0 if t in demand_hours else 0.0 for t in range(hours)]
    data = instance_data(hours=hours, pools=[pool("od", usd_per_chip_hour=3.0),
                                             pool("cb", pricing="capacity_block", usd_per_chip_hour=0.0, available=8)],
                         workloads=[inference(demand_pflops=demand)])
    data["capacity_blocks"] = [{"id": "cb4", "pool": "cb", "duration_hours": 4, "usd_per_chip_hour": 2.0}]
    return data


def purchases(plan, kind):
    return plan.purchases[plan.purchases.kind == kind]


@pytest.mark.parametrize("engine,method", ENGINES)
def test_a_block_pays_only_when_used_three_of_its_four_hours(tmp_path, engine, method):
    # A block costs $8; its hours on demand cost $3 each: worth it for 3 used hours (8 < 9), not 2 (8 > 6).
    two = solve(block_week([3, 4]), tmp_path / "two", engine, method)
    assert two.objective_usd == pytest.approx(6.0) and purchases(two, "capacity_block").empty
    three = solve(block_week([3, 4, 5]), tmp_path / "three", engine, method)
    assert three.objective_usd == pytest.approx(8.0)
    bought = purchases(three, "capacity_block")
    assert bought.quantity.tolist() == [1] and bought.start_hour.iloc[0] in (2, 3)
    assert three.cost_usd["blocks"] == pytest.approx(8.0) and three.cost_usd["usage"] == pytest.approx(0.0)


@pytest.mark.parametrize("engine,method", ENGINES)
def test_blocks_cover_what_they_can_and_on_demand_the_rest(tmp_path, engine, method):
    # Ten hours of one chip: two blocks (8 hours at $2) and two hours on demand ($6) = $22; a third
    # block would cost $8 for two useful hours.
    plan = solve(block_week(list(range(10))), tmp_path, engine, method)
    assert plan.objective_usd == pytest.approx(22.0)
    assert len(purchases(plan, "capacity_block")) == 2
    assert plan.cost_usd["blocks"] == pytest.approx(16.0) and plan.cost_usd["usage"] == pytest.approx(6.0)


def test_a_lead_time_and_max_blocks_hold_and_bought_blocks_are_paid(tmp_path):
    data = block_week(list(range(10)))
    data["capacity_blocks"][0].update(earliest_start_hour=4, max_blocks=1)
    plan = solve(data, tmp_path / "lead")
    # One block, no earlier than hour 4: four hours at $2 and six on demand = $8 + $18.
    assert plan.objective_usd == pytest.approx(26.0)
    assert purchases(plan, "capacity_block").start_hour.iloc[0] >= 4
    bought = copy.deepcopy(block_week([]))
    bought["capacity_blocks"][0]["bought"] = [{"start_hour": 1, "blocks": 2}]
    # Nothing to serve, and two blocks already bought: paid anyway, 2 x 4 h x $2.
    idle = solve(bought, tmp_path / "idle")
    assert idle.cost_usd["blocks"] == pytest.approx(16.0) and idle.objective_usd == pytest.approx(16.0)


def commitment_week(commitment: dict, demand=(1.0, 2.0, 3.0, 4.0)) -> dict:
    """Chips in use per hour = demand (PFLOP/s on 1000 TFLOP/s chips), on demand at $4/chip-hour."""
    data = instance_data(hours=len(demand), pools=[pool("od", usd_per_chip_hour=4.0)],
                         workloads=[inference(demand_pflops=list(demand))])
    data["commitments"] = [commitment]
    return data


SPEND = {"id": "aws-sp", "kind": "spend", "applies_to": {"cloud": "aws"}, "discount": 0.5}
USAGE = {"id": "h100-ri", "kind": "usage", "applies_to": {"chip": "h100"}, "usd_per_chip_hour": 2.5}


@pytest.mark.parametrize("engine", ["highs", "pulp-highs", "pulp-cbc", "cpsat"])
def test_the_best_spend_level_is_a_quantile_of_hourly_usage(tmp_path, engine):
    # Usage 1, 2, 3, 4 chips at $4. A level of L USD/h covers x = L / (0.5 x 4) = L / 2 chips an
    # hour, so the cost is 4L + 4 sum max(0, u_t - x) = 8x + 4 sum max(0, u_t - x). Its slope is
    # 8 - 4 #{t: u_t > x}: the best x is where the share of hours above it is 1 - discount = 1/2,
    # any x in [2, 3], costing 16 + 4 (1 + 2) = 28 (against 40 with no commitment).
    plan = solve(commitment_week(SPEND), tmp_path, engine)
    assert plan.objective_usd == pytest.approx(28.0)
    level = purchases(plan, "spend").quantity.iloc[0]
    assert 4.0 - 1e-6 <= level <= 6.0 + 1e-6
    assert plan.cost_usd["commitments"] == pytest.approx(4 * level)
    coverage = plan.coverage
    assert (coverage.commitment == "aws-sp").all() and coverage.chips.max() <= level / 2 + 1e-6


@pytest.mark.parametrize("engine,method", ENGINES)
def test_a_usage_commitment_holds_the_chips_most_hours_use(tmp_path, engine, method):
    # A committed chip costs $2.5 x 4 h = $10 and saves $4 in each hour it is used: worth it while
    # used in 3 hours or more (12 > 10), not 2 (8 < 10). Usage 1, 2, 3, 4: the 2nd chip is used in
    # 3 hours, the 3rd in 2: commit 2, cost 20 + 4 (0 + 0 + 1 + 2) = 32.
    plan = solve(commitment_week(USAGE), tmp_path, engine, method)
    assert plan.objective_usd == pytest.approx(32.0)
    assert purchases(plan, "usage").quantity.tolist() == [2]
    # Covered chips are chips in use, never more than the level (a committed chip idle in hour 0 may
    # as well run: it is paid for).
    assert plan.coverage.groupby("hour").chips.sum().tolist() in ([1, 2, 2, 2], [2, 2, 2, 2])


def test_a_commitment_at_no_discount_never_lowers_the_cost_and_is_not_bought_with_an_idle_hour(tmp_path):
    plain = solve(commitment_week(SPEND, demand=(1.0, 0.0, 3.0, 4.0)) | {"commitments": []}, tmp_path / "plain")
    worthless = solve(commitment_week({**SPEND, "discount": 0.0}, demand=(1.0, 0.0, 3.0, 4.0)), tmp_path / "zero")
    # At discount 0 a level of L costs L every hour and saves at most L in an hour: hour 1 uses
    # nothing, so any L > 0 costs more than it saves.
    assert worthless.objective_usd == pytest.approx(plain.objective_usd)
    assert purchases(worthless, "spend").quantity.iloc[0] == pytest.approx(0.0, abs=1e-9)


def test_a_bought_level_is_paid_with_no_usage(tmp_path):
    data = commitment_week({**USAGE, "level": 3}, demand=(0.0, 0.0, 1.0, 0.0))
    data["chips"].append(chip("tpu", vendor="google"))
    data["pools"] = [pool("od", usd_per_chip_hour=4.0), pool("tpu-od", chip="tpu", usd_per_chip_hour=1.0)]
    data["workloads"] = [inference(demand_pflops=[0.0, 0.0, 1.0, 0.0], efficiency={"tpu": 1.0})]
    plan = solve(data, tmp_path)
    # The 3 committed H100s are paid in all 4 hours ($2.5 x 3 x 4 = $30); the one TPU-hour is $1.
    assert plan.cost_usd["commitments"] == pytest.approx(30.0)
    assert plan.objective_usd == pytest.approx(31.0) and plan.coverage.empty


def contract_week(min_usd: float) -> dict:
    """Ten chip-hours (usage 1, 2, 3, 4) on aws at $4, or on a neocloud at $5 with a take-or-pay minimum."""
    data = commitment_week(USAGE)
    data["commitments"] = []
    data["sites"] = [site(), site("neo", cloud="fluidstack", region="x")]
    data["pools"].append(pool("neo", site="neo", usd_per_chip_hour=5.0))
    data["contracts"] = [{"id": "fs-minimum", "applies_to": {"cloud": "fluidstack"}, "min_usd": min_usd}]
    return data


@pytest.mark.parametrize("engine,method", ENGINES)
def test_a_take_or_pay_minimum_makes_the_dearer_provider_free_at_the_margin(tmp_path, engine, method):
    # With a $15 minimum the first $15 on the neocloud is paid anyway: 3 chip-hours there ($15)
    # and 7 on aws ($28) = $43, against 10 on aws ($40) plus $15 unused = $55.
    plan = solve(contract_week(15.0), tmp_path, engine, method)
    assert plan.objective_usd == pytest.approx(43.0)
    neo = plan.allocations[plan.allocations.pool == "neo"].chips.sum()
    assert neo == 3 and plan.cost_usd["contract_shortfall"] == pytest.approx(0.0)
    # Under a $100 minimum every neocloud chip-hour lowers the shortfall by the $5 it bills and
    # saves an aws hour ($4): serve all ten there, $50 billed and $50 short, $100 in all (or run
    # idle neocloud chips instead of leaving the shortfall: the same $100).
    big = solve(contract_week(100.0), tmp_path / "big", engine, method)
    assert big.objective_usd == pytest.approx(100.0)
    assert big.allocations[big.allocations.pool == "od"].empty
    assert big.cost_usd["usage"] + big.cost_usd["contract_shortfall"] == pytest.approx(100.0)


def test_cpsat_solves_spend_commitments_on_a_grid_and_states_what_it_may_cost(tmp_path):
    # CP-SAT chooses covered chips and the level on a grid of 1/1000: the quantile optimum (28) is
    # on it, the bound is lowered by the stated scaling bound, and the checker passes the plan.
    plan = solve(commitment_week(SPEND), tmp_path, "cpsat")
    scaling = plan.details["solver"]["scaling_bound_usd"]
    assert 0 < scaling < 0.1
    assert plan.objective_usd == pytest.approx(28.0, abs=scaling)
    assert plan.bound_usd <= 28.0 + 1e-9
    (tmp_path / "sp.json").write_text(json.dumps(commitment_week({**SPEND, "level": 4.0005})))
    result = run_cli("solve", tmp_path / "sp.json", "--out", tmp_path / "plan", "--engine", "cpsat")
    assert result.returncode == 0, result.stderr  # a bought level off the 1/1000 grid gets a finer one
    assert json.loads((tmp_path / "plan" / "purchases.csv").read_text().splitlines()[1].split(",")[3]) == 4.0005


def write_plan(data, tmp_path):
    plan = solve(data, tmp_path / "solve")
    folder = tmp_path / "plan"
    plan.write(folder)
    return optimizer.instance_from_data(copy.deepcopy(data)), folder


def tamper(folder, name, edit):
    """Edit a plan file's table in place (``edit`` changes the frame, or returns a new one)."""
    frame = pd.read_csv(folder / name)
    edited = edit(frame)
    (frame if edited is None else edited).to_csv(folder / name, index=False)


def test_the_checker_catches_tampered_blocks(tmp_path):
    instance, folder = write_plan(block_week(list(range(10))), tmp_path)
    assert check_plan(instance, folder).ok
    def drop_a_block(frame):
        return frame.drop(index=frame.index[frame.kind == "capacity_block"][:1])

    tamper(folder, "purchases.csv", drop_a_block)
    violations = check_plan(instance, folder).violations
    assert any(v.startswith("block_capacity[cb,") and "under blocks bought" in v for v in violations), violations


def test_the_checker_catches_blocks_outside_their_window(tmp_path):
    data = block_week(list(range(10)))
    data["capacity_blocks"][0]["earliest_start_hour"] = 2
    instance, folder = write_plan(data, tmp_path)
    def start_at_zero(frame):
        frame.loc[frame.kind == "capacity_block", "start_hour"] = 0

    tamper(folder, "purchases.csv", start_at_zero)
    violations = check_plan(instance, folder).violations
    assert any("blocks_bought[cb4,0]: a block may start in hours 2-6" in v for v in violations), violations


def test_the_checker_catches_tampered_coverage_and_levels(tmp_path):
    instance, folder = write_plan(commitment_week(USAGE), tmp_path)
    assert check_plan(instance, folder).ok
    tamper(folder, "coverage.csv", lambda f: f.__setitem__("chips", f.chips + 5))
    violations = check_plan(instance, folder).violations
    assert any(v.startswith("covered_usage[od,") for v in violations), violations
    assert any(v.startswith("commitment_cover[h100-ri,") for v in violations), violations
    assert any(v.startswith("summary.json: cost_usd.usage") for v in violations), violations

    instance, folder = write_plan(commitment_week(SPEND), tmp_path / "spend")
    tamper(folder, "purchases.csv", lambda f: f.__setitem__("usd", f.usd / 2))
    violations = check_plan(instance, folder).violations
    assert any(v.startswith("spend_level[aws-sp]: usd is") for v in violations), violations


def test_the_checker_catches_a_hidden_contract_shortfall(tmp_path):
    data = contract_week(100.0)
    data["pools"][1]["available"] = 1  # the neocloud can bill at most 4 x $5: $80 short
    instance, folder = write_plan(data, tmp_path)
    assert check_plan(instance, folder).ok
    assert pd.read_csv(folder / "purchases.csv").set_index("instrument").usd["fs-minimum"] == pytest.approx(80.0)
    tamper(folder, "purchases.csv", lambda f: f.__setitem__("usd", [0.0 if k == "contract" else u
                                                                    for k, u in zip(f.kind, f.usd)]))
    violations = check_plan(instance, folder).violations
    assert any(v.startswith("contract_minimum[fs-minimum]: shortfall 0.0 USD") for v in violations), violations


@pytest.mark.parametrize("edit,path,reason", [
    (lambda d: d["capacity_blocks"][0].update(pool="nowhere"), "capacity_blocks[0](cb4).pool", "unknown pool"),
    (lambda d: d["capacity_blocks"][0].update(pool="od"), "capacity_blocks[0](cb4).pool", "not capacity_block"),
    (lambda d: d["capacity_blocks"][0].update(bought=[{"start_hour": 9, "blocks": 1}]),
     "capacity_blocks[0](cb4).bought[0].start_hour", "not a start this offer allows"),
    (lambda d: d["capacity_blocks"][0].update(max_blocks=1, bought=[{"start_hour": 0, "blocks": 2}]),
     "capacity_blocks[0](cb4).bought", "more than max_blocks"),
    (lambda d: d["capacity_blocks"][0].update(latest_start_hour=8), "capacity_blocks[0](cb4).latest_start_hour",
     "past the horizon"),
    (lambda d: d.update(capacity_blocks=[]), "pools[1](cb).pricing", "no offer"),
    (lambda d: d.update(commitments=[{k: v for k, v in SPEND.items() if k != "discount"}]),
     "commitments[0](aws-sp).discount", "needs its discount"),
    (lambda d: d.update(commitments=[{**SPEND, "applies_to": {"chip": "b200"}}]),
     "commitments[0](aws-sp).applies_to.chip", "unknown chip"),
    (lambda d: d.update(commitments=[{**SPEND, "applies_to": {"pool": "cb"}}]),
     "commitments[0](aws-sp).applies_to", "matches no on_demand pool"),
    (lambda d: d.update(commitments=[{**USAGE, "level": 2.5}]), "commitments[0](h100-ri).level", "whole chips"),
    (lambda d: d.update(commitments=[{**USAGE, "end_hour": 11}]), "commitments[0](h100-ri).end_hour", "past the horizon"),
    (lambda d: d.update(contracts=[{"id": "cb4", "applies_to": {"cloud": "aws"}, "min_usd": 1.0}]),
     "contracts[0](cb4).id", "duplicate instrument id"),
])
def test_bad_instruments_are_refused_with_the_field_path(tmp_path, edit, path, reason):
    data = block_week([1])
    edit(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    result = run_cli("validate", tmp_path / "bad.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{path}: " in result.stderr and reason in result.stderr, result.stderr


def test_a_usage_commitment_over_two_chip_kinds_is_refused(tmp_path):
    data = commitment_week({**USAGE, "applies_to": {"cloud": "aws"}})
    data["chips"].append(chip("tpu", vendor="google"))
    data["pools"].append(pool("tpu-od", chip="tpu"))
    with pytest.raises(optimizer.InputError, match=r"commitments\[0\]\(h100-ri\).applies_to: a usage commitment covers chips of one kind"):
        optimizer.instance_from_data(data)


def test_an_instance_without_instruments_keeps_its_fingerprint():
    data = instance_data()
    bare = optimizer.instance_from_data(copy.deepcopy(data)).sha256()
    listed = optimizer.instance_from_data({**data, "capacity_blocks": [], "commitments": [], "contracts": []}).sha256()
    assert bare == listed
    with_block = block_week([1])
    assert optimizer.instance_from_data(with_block).sha256() != optimizer.instance_from_data(
        {**with_block, "capacity_blocks": [{**with_block["capacity_blocks"][0], "usd_per_chip_hour": 2.5}]}).sha256()


def test_greedy_rents_no_block_and_its_bought_levels_pay_for_what_they_cover(tmp_path):
    from optimizer.analyses.greedy import greedy_plan
    from optimizer.plans.outcome import check_plan_tables

    # Greedy buys nothing: the capacity-block pool's free-looking chips are not its to take.
    data = block_week(list(range(10)))
    instance = optimizer.instance_from_data(copy.deepcopy(data))
    plan = greedy_plan(instance)
    assert set(plan.allocations.pool) == {"od"} and plan.purchases[plan.purchases.kind == "capacity_block"].empty
    assert check_plan_tables(instance, plan).ok and plan.cost_usd["total"] == pytest.approx(30.0)
    # A usage level of 2 chips bought already: greedy pays it ($2.5 x 2 x 4 = $20), and the bill
    # applies it to 1 + 2 + 2 + 2 of its chip-hours ($28 not billed at $4): 40 - 28 + 20 = 32.
    data = commitment_week({**USAGE, "level": 2})
    instance = optimizer.instance_from_data(copy.deepcopy(data))
    plan = greedy_plan(instance)
    assert check_plan_tables(instance, plan).ok
    assert plan.coverage.chips.tolist() == [1, 2, 2, 2]
    assert plan.cost_usd["commitments"] == pytest.approx(20.0) and plan.cost_usd["total"] == pytest.approx(32.0)


def test_a_restriction_keeps_only_the_instruments_on_its_pools():
    from optimizer.analyses.lockin import restrict

    data = contract_week(15.0)
    data["commitments"] = [SPEND]
    instance = optimizer.instance_from_data(data)
    aws = restrict(instance, "cloud=aws")
    assert [p.id for p in aws.pools] == ["od"] and aws.contracts == [] and [c.id for c in aws.commitments] == ["aws-sp"]
    neo = restrict(instance, "cloud=fluidstack")
    assert [c.id for c in neo.contracts] == ["fs-minimum"] and neo.commitments == []
    blocks = restrict(optimizer.instance_from_data(block_week([1])), "cloud=aws")
    assert [o.id for o in blocks.capacity_blocks] == ["cb4"]  # both pools are aws


def test_the_service_returns_and_checks_purchases_and_coverage(tmp_path):
    from tests.test_service import Server, request, wait

    server = Server(tmp_path / "jobs.sqlite", "--workers", "1").start()
    try:
        job = request(server, "POST", "/v1/solves", {"instance": commitment_week(USAGE)})[1]
        done = wait(server, job["id"])
        assert done["status"] == "succeeded", done
        plan = request(server, "GET", f"/v1/solves/{job['id']}/plan")[1]
        assert [row["instrument"] for row in plan["purchases"]] == ["h100-ri"] and plan["purchases"][0]["quantity"] == 2
        assert sum(row["chips"] for row in plan["coverage"]) >= 7
        status, verdict, _ = request(server, "POST", "/v1/check", {"instance": commitment_week(USAGE), "plan": plan})
        assert status == 200 and verdict["ok"], verdict
        # Without its purchases the same plan pays no level: the checker says so.
        bare = {key: plan[key] for key in ("allocations", "reservations", "summary", "coverage", "energy")}
        verdict = request(server, "POST", "/v1/check", {"instance": commitment_week(USAGE), "plan": bare})[1]
        assert not verdict["ok"] and any(v.startswith("usage_level[h100-ri]: no purchases.csv row") for v in verdict["violations"])
        status, text, _ = request(server, "GET", f"/v1/solves/{job['id']}/plan/purchases.csv")
        assert status == 200 and text.splitlines()[0] == "instrument,kind,start_hour,quantity,unit,usd"
    finally:
        server.stop()


def test_the_lockin_table_shows_what_instruments_are_worth(tmp_path):
    from optimizer.analyses.lockin import lockin_table

    # All pools are aws/nvidia: every restriction is the whole instance. With the blocks the ten
    # hours cost $22 (two blocks and two hours on demand), on hourly prices $30.
    table = lockin_table(optimizer.instance_from_data(block_week(list(range(10)))))
    multi = table[table.plan == "multi"].set_index("view")
    assert multi.total_usd["instruments"] == pytest.approx(22.0) and multi.total_usd["hourly"] == pytest.approx(30.0)
    assert multi.instruments_saving_usd["instruments"] == pytest.approx(8.0)
    assert set(table[table.view == "hourly"].plan) == {"multi", "vendor=nvidia", "cloud=aws", "greedy"}
    assert set(table[table.view == "instruments"].plan) == {"multi", "vendor=nvidia", "cloud=aws", "buy-to-average"}
    assert (table.status != "checker_violations").all()


def test_buying_to_the_average_leaves_money_on_the_table(tmp_path):
    from optimizer.analyses.greedy import buy_to_average_plan
    from optimizer.plans.outcome import check_plan_tables

    # Usage 1, 1, 1, 9 chips at $4; a committed chip costs $2.5 x 4 = $10. Only the first chip is
    # used in enough hours (4 x $4 > $10): the optimum commits 1, $10 + 8 x $4 = $42. The average
    # is 3 chips: $30 of level, 1 chip covered in three hours and 3 in the last, 6 chips billed: $54.
    data = commitment_week(USAGE, demand=(1.0, 1.0, 1.0, 9.0))
    instance = optimizer.instance_from_data(copy.deepcopy(data))
    optimum = solve(data, tmp_path)
    assert optimum.objective_usd == pytest.approx(42.0) and purchases(optimum, "usage").quantity.tolist() == [1]
    rule = buy_to_average_plan(instance)
    assert check_plan_tables(instance, rule).ok
    assert purchases(rule, "usage").quantity.tolist() == [3] and rule.cost_usd["total"] == pytest.approx(54.0)


def test_the_held_view_of_a_sweep_keeps_every_purchase_of_the_base_plan():
    from optimizer.analyses.lockin import sweep
    from optimizer.analyses.scenarios import scenarios_from_data

    instance = optimizer.instance_from_data(block_week(list(range(10))))
    scenarios = scenarios_from_data({"scenarios": [{"name": "cheap-od", "changes": [
        {"kind": "price", "match": {"pool": "od"}, "scale": 0.1}]}]}, instance, "scenarios")
    table = sweep(instance, scenarios, ["multi"], workers=1)
    shocked = table[table.scenario == "cheap-od"].set_index("view")
    # Re-optimised, on-demand at $0.30 beats any block: ten hours, $3. Held, the base plan's two
    # blocks ($16) are paid whatever happens; the two hours they leave are on demand: $16.60.
    assert shocked.total_usd["reoptimised"] == pytest.approx(3.0)
    assert shocked.blocks_usd["reservations_held"] == pytest.approx(16.0)
    assert shocked.total_usd["reservations_held"] == pytest.approx(16.6)


def test_every_bad_commitment_is_reported_in_one_pass(tmp_path):
    # The first commitment's missing discount must not hide that the second matches no pool.
    data = commitment_week({k: v for k, v in SPEND.items() if k != "discount"})
    data["commitments"].append({**USAGE, "applies_to": {"pool": "nowhere-od"}, "id": "lost"})
    data["commitments"][1]["applies_to"] = {"cloud": "gcp"}
    data["sites"].append(site("gcp1", cloud="gcp", region="us-central1"))
    (tmp_path / "bad.json").write_text(json.dumps(data))
    result = run_cli("validate", tmp_path / "bad.json")
    assert result.returncode == 2
    assert "commitments[0](aws-sp).discount" in result.stderr and "commitments[1](lost).applies_to: matches no" in result.stderr
