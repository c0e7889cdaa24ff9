"""Energy and grid: renewable supply, quotas, certificates, carbon, and shadow prices, with the
optima worked out by hand.

Units as in test_hand_checked: one chip-hour of a 1000 TFLOP/s chip at efficiency 1 delivers
3.6 EFLOP (or 1 PFLOP/s for an hour).  Chips here draw 100 kW, so 10 chips are 1 MW and one
chip-hour is 0.1 MWh.
"""

import csv
import json

import pytest

import optimizer
from optimizer import SolveStatus
from optimizer.analyses.greedy import greedy_plan
from optimizer.analyses.scenarios import apply_scenario, scenarios_from_data
from optimizer.plans.duals import binding_sentences
from tests.helpers import chip, chipmix, chips_of, inference, instance_data, pool, site, solve_checked, training

MILP_ENGINES = ("highs", "pulp-cbc")


def quota_case(share=0.5, rec=100.0, renewable_usd=80.0, carbon=None, carbon_price=None):
    # One campus, 4 hours, 10 chips an hour at $1; the run needs 10 chip-hours (36 EFLOP), 1 MWh
    # in all.  Grid energy costs $50/MWh in hours 0-1 and $70 in hours 2-3; renewable supply is
    # 1 MW in hours 2-3 only, at $80/MWh.
    # - No quota: all 10 chip-hours on the cheap grid: 10 + 1 MWh x 50 = $60.
    # - Quota 50% (0.5 MWh renewable or certified): certificates at $100 would add $50 ($110);
    #   moving x MWh of the run into hours 2-3 on renewable energy costs 50 (1 - x) + 80 x, so
    #   x = 0.5 meets the quota for 65 + 10 = $75, the optimum (its dual: 80 - 50 = $30/MWh).
    # - Certificates at $20: 10 + 50 + 0.5 x 20 = $70 beats shifting ($75).
    s = site("campus", cloud="owned", energy_usd_per_mwh=[50, 50, 70, 70], renewable_mw=[0, 0, 1, 1],
             renewable_usd_per_mwh=renewable_usd, **({} if rec is None else {"rec_usd_per_mwh": rec}),
             **({} if carbon is None else {"grid_carbon_kg_per_mwh": carbon}))
    data = instance_data(hours=4, chips=[chip(power_kw=100.0)], sites=[s],
                         pools=[pool("own", site="campus", pricing="owned", usd_per_chip_hour=1.0, available=10)],
                         workloads=[training(work_eflop=36.0)])
    if share:
        data["renewable_quotas"] = [{"id": "q", "sites": ["campus"], "share": share}]
    if carbon_price is not None:
        data["carbon_usd_per_t"] = carbon_price
    return data


@pytest.mark.parametrize("engine", MILP_ENGINES)
def test_quota_is_met_by_shifting_training_into_renewable_hours(tmp_path, engine):
    free = solve_checked(quota_case(share=None), tmp_path, engine=engine)
    assert free.objective_usd == pytest.approx(60.0)
    assert chips_of(free, hour=0) + chips_of(free, hour=1) == 10
    plan = solve_checked(quota_case(), tmp_path, engine=engine)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd == pytest.approx(75.0)
    assert chips_of(plan, hour=0) + chips_of(plan, hour=1) == 5
    assert chips_of(plan, hour=2) + chips_of(plan, hour=3) == 5
    assert plan.cost_usd["energy"] == pytest.approx(65.0)
    assert plan.cost_usd["certificates"] == pytest.approx(0.0)
    energy = plan.energy_summary
    assert energy["renewable_mwh"] == pytest.approx(0.5) and energy["certificates_mwh"] == pytest.approx(0.0)
    assert energy["quotas"]["q"]["achieved_share"] == pytest.approx(0.5)


@pytest.mark.parametrize("engine", MILP_ENGINES)
def test_cheap_certificates_beat_shifting(tmp_path, engine):
    plan = solve_checked(quota_case(rec=20.0), tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(70.0)
    assert chips_of(plan, hour=0) + chips_of(plan, hour=1) == 10
    assert plan.cost_usd["certificates"] == pytest.approx(10.0)
    assert plan.energy_summary["certificates_mwh"] == pytest.approx(0.5)


def test_cpsat_refuses_a_quota_and_names_the_row_family():
    outcome = optimizer.run_solve(optimizer.instance_from_data(quota_case()), optimizer.SolveOptions(engine="cpsat"))
    assert not outcome.ok
    assert "renewable_quota" in outcome.message and "highs" in outcome.message


def test_cpsat_takes_renewable_supply_without_a_quota(tmp_path):
    # Renewable energy at $60 beats the $70 grid of hours 2-3 but not the $50 of hours 0-1: no
    # quota, so the plan stays on the cheap grid ($60), and CP-SAT agrees with HiGHS.
    data = quota_case(share=None, renewable_usd=60.0)
    plan = solve_checked(data, tmp_path, engine="cpsat")
    assert plan.objective_usd == pytest.approx(solve_checked(data, tmp_path, engine="highs").objective_usd)
    assert plan.objective_usd == pytest.approx(60.0)


def test_carbon_price_moves_the_run_onto_renewable_energy(tmp_path):
    # 400 kg/MWh at $100/t adds $40 to each grid MWh: the grid costs 90 in hours 0-1 and 110 in
    # hours 2-3, renewable 80: the whole run goes into hours 2-3 (1 MWh of supply each), $10 + $80.
    plan = solve_checked(quota_case(share=None, carbon=400.0, carbon_price=100.0), tmp_path)
    assert plan.objective_usd == pytest.approx(90.0)
    assert chips_of(plan, hour=2) + chips_of(plan, hour=3) == 10
    assert plan.cost_usd["carbon"] == pytest.approx(0.0)
    assert plan.energy_summary["carbon_t"] == pytest.approx(0.0)
    # Unpriced, carbon is reported: 1 MWh of grid energy at 400 kg/MWh is 0.4 t.
    unpriced = solve_checked(quota_case(share=None, carbon=400.0), tmp_path)
    assert unpriced.objective_usd == pytest.approx(60.0)
    assert unpriced.energy_summary["carbon_t"] == pytest.approx(0.4)
    assert unpriced.energy_summary["carbon_t_by_site"] == {"campus": pytest.approx(0.4)}


@pytest.mark.parametrize("engine", ("highs", "pulp-cbc", "cpsat"))
def test_priced_grid_carbon_is_paid_where_renewable_energy_is_dearer(tmp_path, engine):
    # Renewable at $95 against a grid of 50 + 40 carbon in hours 0-1 and 70 + 40 in hours 2-3: the
    # run stays on the cheapest grid hours and pays 1 MWh of carbon (0.4 t x $100), $10 + 50 + 40.
    # (grid_mwh is the slack of a row whose other terms are the chips' draw: CP-SAT must bound it
    # by that draw, not by the row's bound of 0.)
    plan = solve_checked(quota_case(share=None, carbon=400.0, carbon_price=100.0, renewable_usd=95.0), tmp_path,
                         engine=engine)
    assert plan.objective_usd == pytest.approx(100.0)
    assert plan.cost_usd["carbon"] == pytest.approx(40.0)
    assert chips_of(plan, hour=0) + chips_of(plan, hour=1) == 10


def test_a_quota_no_plan_can_meet_is_explained():
    # No certificates and no renewable supply at all: the hard run's 1 MWh is grid energy.
    data = quota_case(rec=None)
    data["sites"][0]["renewable_mw"] = 0
    outcome = optimizer.run_solve(optimizer.instance_from_data(data))
    assert outcome.plan.status is SolveStatus.INFEASIBLE
    text = outcome.message
    assert "renewable_quotas[0](q).share" in text and "campus" in text and "MWh short" in text


def test_checker_catches_a_plan_that_misstates_renewable_energy(tmp_path):
    instance = optimizer.instance_from_data(quota_case())
    plan = optimizer.solve(instance)
    plan.write(tmp_path / "plan")
    path = tmp_path / "plan" / "energy.csv"
    rows = list(csv.DictReader(path.open()))
    grid_hour = next(r for r in rows if float(r["renewable_mwh"]) == 0)
    grid_hour["renewable_mwh"] = grid_hour["facility_mwh"]  # claims renewable energy in an hour with no supply
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = optimizer.check_plan(instance, tmp_path / "plan")
    assert not report.ok
    text = "\n".join(report.violations)
    assert f"renewable_use[campus,{grid_hour['hour']}]" in text and "supply is 0" in text
    assert "grid_mwh" in text  # grid = facility - renewable no longer holds


def test_checker_refuses_a_plan_without_energy_csv(tmp_path):
    instance = optimizer.instance_from_data(quota_case())
    optimizer.solve(instance).write(tmp_path / "plan")
    (tmp_path / "plan" / "energy.csv").unlink()
    assert "energy.csv: missing" in optimizer.check_plan(instance, tmp_path / "plan").violations


def test_greedy_buys_certificates_for_the_quota_and_passes_the_checker(tmp_path):
    # Greedy takes the cheapest chip-hours (the $50 grid hours) and knows no quota; its split is
    # the cheapest for its chips: 0.5 MWh of certificates at $100.
    instance = optimizer.instance_from_data(quota_case())
    plan = greedy_plan(instance)
    plan.write(tmp_path / "greedy")
    assert optimizer.check_plan(instance, tmp_path / "greedy").ok
    assert plan.cost_usd["certificates"] == pytest.approx(50.0)
    assert plan.energy_summary["quotas"]["q"]["achieved_share"] == pytest.approx(0.5)


def test_a_higher_quota_never_lowers_the_cost(tmp_path):
    costs = [solve_checked(quota_case(share=share), tmp_path).objective_usd for share in (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)]
    assert all(b >= a - 1e-6 for a, b in zip(costs, costs[1:])), costs
    assert costs[-1] > costs[0]


def test_energy_fields_that_change_nothing_keep_the_plan(tmp_path):
    # Renewable energy dearer than every grid hour, no quota, no carbon price: the plan and its
    # cost are those of the instance without the fields, and so is everything but the split.
    plain = quota_case(share=None, rec=None)
    for key in ("renewable_mw", "renewable_usd_per_mwh"):
        del plain["sites"][0][key]
    dear = quota_case(share=None, rec=None, renewable_usd=500.0)
    a, b = solve_checked(plain, tmp_path), solve_checked(dear, tmp_path)
    assert a.allocations.equals(b.allocations)
    assert a.cost_usd == b.cost_usd
    # An instance without the new fields keeps its fingerprint: they stay out of it.
    instance = optimizer.instance_from_data(plain)
    assert "renewable" not in json.dumps(instance.model_dump(mode="json", exclude_defaults=True))


def cap_case():
    # Site A (cap 0.5 MW: 5 chips of 100 kW) at $1 a chip-hour, site B uncapped at $3; demand
    # 10 PFLOP/s in hour 0 and 3 in hour 1, one chip serving 1 PFLOP/s.  Hour 0: 5 on A, 5 on
    # B, $20; hour 1: 3 on A, $3.  One more MW at A in hour 0 powers 10 more A chips, each saving
    # $2 over B: $20 per MW for the hour (fractional chips, as the dual LP has them).  Hour 1's cap
    # does not bind: 0.  Demand: one more PFLOP/s in hour 0 is a B chip ($3), in hour 1 an A chip ($1).
    return instance_data(
        hours=2, chips=[chip(power_kw=100.0)],
        sites=[site("A", power_cap_mw=0.5), site("B")],
        pools=[pool("a", site="A", usd_per_chip_hour=1.0, available=10),
               pool("b", site="B", usd_per_chip_hour=3.0, available=10)],
        workloads=[inference(demand_pflops=[10, 3])],
    )


def _dual(plan, family, index, hour=None):
    table = plan.duals
    rows = table[(table.family == family) & (table["index"] == index)]
    if hour is not None:
        rows = rows[rows.hour == hour]
    assert len(rows) == 1, rows
    return float(rows.value.iloc[0])


@pytest.mark.parametrize("engine", ("highs", "pulp-cbc", "cpsat"))
def test_a_binding_cap_is_worth_the_saving_of_the_chips_it_would_power(tmp_path, engine):
    plan = solve_checked(cap_case(), tmp_path, engine=engine, duals=True)
    assert plan.objective_usd == pytest.approx(23.0)
    assert _dual(plan, "site_power", "A", 0) == pytest.approx(20.0)
    assert _dual(plan, "site_power", "A", 1) == 0.0
    assert _dual(plan, "inference_demand", "serve", 0) == pytest.approx(3.0)
    assert _dual(plan, "inference_demand", "serve", 1) == pytest.approx(1.0)
    # Neither pool is full in any hour: non-binding rows have no price.
    pools = plan.duals[plan.duals.family == "pool_capacity"]
    assert len(pools) == 4 and (pools.value == 0.0).all()
    assert binding_sentences(plan.duals)[0] == "one more MW at A in hour 0 is worth 20 USD/h"
    assert plan.details["duals"]["lp_objective_usd"] == pytest.approx(23.0)


def test_a_full_pool_is_priced_per_chip(tmp_path):
    # Pool a has 4 chips (fewer than the cap allows), so the pool binds in hour 0, not the
    # site (whose rows cannot bind at 0.4 MW and are not built): one more chip of a saves $2 an hour.  The row has a single eligible allocation, which
    # the solve model leaves to the column's bound; the dual model keeps it as a row.
    data = cap_case()
    data["pools"][0]["available"] = 4
    plan = solve_checked(data, tmp_path, duals=True)
    assert _dual(plan, "pool_capacity", "a", 0) == pytest.approx(2.0)
    assert plan.duals[plan.duals.family == "site_power"].empty
    assert _dual(plan, "pool_capacity", "a", 1) == 0.0


def test_the_quota_dual_is_its_marginal_cost(tmp_path):
    plan = solve_checked(quota_case(), tmp_path, duals=True)
    assert _dual(plan, "renewable_quota", "q") == pytest.approx(30.0)


def test_solve_duals_writes_duals_csv_and_a_later_solve_drops_it(tmp_path):
    path = tmp_path / "cap.json"
    path.write_text(json.dumps(cap_case()))
    result = chipmix("solve", path, "--out", tmp_path / "plan", "--duals")
    assert result.returncode == 0, result.stderr
    assert "one more MW at A in hour 0 is worth 20 USD/h" in result.stdout
    with (tmp_path / "plan" / "duals.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["family", "index", "hour", "value", "unit"]
    assert {"family": "site_power", "index": "A", "hour": "0", "value": "20", "unit": "USD/MWh"} in rows
    result = chipmix("solve", path, "--out", tmp_path / "plan")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "plan" / "duals.csv").exists()  # no stale shadow prices beside a new plan


def test_quota_scenarios_add_set_and_remove_a_quota(tmp_path):
    instance = optimizer.instance_from_data(quota_case(share=None))
    scenarios = scenarios_from_data({"scenarios": [
        {"name": "q40", "changes": [{"kind": "renewable_quota", "quota": "state", "sites": ["campus"], "share": 0.4}]},
    ]}, instance)
    with_quota = apply_scenario(instance, scenarios[0])
    assert [(q.id, q.sites, q.share) for q in with_quota.renewable_quotas] == [("state", ["campus"], 0.4)]
    higher = apply_scenario(with_quota, scenarios_from_data({"scenarios": [
        {"name": "q60", "changes": [{"kind": "renewable_quota", "quota": "state", "share": 0.6}]}]}, with_quota)[0])
    assert higher.renewable_quotas[0].share == 0.6
    removed = apply_scenario(with_quota, scenarios_from_data({"scenarios": [
        {"name": "none", "changes": [{"kind": "renewable_quota", "quota": "state", "share": 0}]}]}, with_quota)[0])
    assert removed.renewable_quotas == []
    with pytest.raises(optimizer.InputError) as exc:
        scenarios_from_data({"scenarios": [{"name": "bad", "changes": [
            {"kind": "renewable_quota", "quota": "nope", "share": 0.4}]}]}, instance)
    assert "scenarios[0](bad).changes[0].sites" in exc.value.render()


def test_lockin_table_prices_the_quota_for_each_restriction():
    instance = optimizer.instance_from_data(quota_case())
    from optimizer.analyses.lockin import lockin_table

    table = lockin_table(instance, greedy=False)
    row = table[table.plan == "multi"].iloc[0]
    assert row.quota_usd == pytest.approx(15.0)  # 75 with the quota, 60 without


@pytest.mark.parametrize(("change", "path", "reason"), [
    ({"renewable_quotas": [{"id": "q", "sites": ["nowhere"], "share": 0.4}]},
     "renewable_quotas[0](q).sites[0]", "unknown site 'nowhere'"),
    ({"renewable_quotas": [{"id": "q", "sites": ["campus"], "share": 0.4},
                           {"id": "r", "sites": ["campus"], "share": 0.2}]},
     "renewable_quotas[1](r).sites[0]", "already in quota 'q'"),
])
def test_bad_quotas_name_the_field(tmp_path, change, path, reason):
    data = {**quota_case(share=None), **change}
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(data))
    result = chipmix("validate", file)
    assert result.returncode == 2
    assert path in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_a_renewable_profile_of_the_wrong_length_names_the_field(tmp_path):
    data = quota_case(share=None)
    data["sites"][0]["renewable_mw"] = [1, 1]
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(data))
    result = chipmix("validate", file)
    assert result.returncode == 2
    assert "sites[0](campus).renewable_mw" in result.stderr and "expected hours = 4" in result.stderr
