"""Two-stage hedges (``chipmix hedge``): purchases chosen once for every scenario.

The hand-checked case.  One pool at 10 USD per chip-hour, a usage commitment at 6 USD per chip-hour
over 3 hours (so each committed chip costs 18), chips of 1 PFLOP/s.  Scenario ``base`` needs
(2, 6, 10) chips in the three hours, ``late-surge`` (0, 0, 10); probability 1/2 each.  A committed
chip at level L saves 10 in every hour whose demand is above L and costs 18:

- ``base`` alone: the chip from 0 to 2 saves 30, from 2 to 6 saves 20, above 6 saves 10: L = 6,
  cost 18 x 6 + 10 x 4 = 148;
- ``late-surge`` alone: any chip saves only 10: L = 0, cost 100;
- the hedge: expected saving 1/2 (30 + 10) = 20 > 18 up to 2, then 1/2 (20 + 10) = 15 < 18: L = 2,
  with costs 156 and 116, expected 136, against 140 for L = 0 and 148 for L = 6.

So the hedge differs from both scenarios' own purchases.  Foresight: 1/2 (148 + 100) = 124, so
EVPI = 136 - 124 = 12; the base case's purchases (L = 6) expect 148, so VSS = 148 - 136 = 12.
With all weight on CVaR at alpha 0.5 (the worse scenario's cost), max(A(L), B(L)) with
A = 160 - 2L and B = 100 + 8L on [2, 6] is least where they meet: L = 6, 148.
"""

from __future__ import annotations

import json

import pytest
import yaml

import optimizer
from optimizer.analyses.hedge import hedge
from optimizer.analyses.hedge.risk import cvar, risk_value
from optimizer.analyses.scenarios import Risk, apply_scenario, hedge_scenarios_from_data, load_hedge_scenarios
from optimizer.errors import InputError
from tests.helpers import chipmix, inference, instance_data, pool

HAND_SCENARIOS = {"scenarios": [
    {"name": "base", "probability": 0.5},
    {"name": "late-surge", "probability": 0.5,
     "changes": [{"kind": "demand", "scale": 0.0, "from_hour": 0, "to_hour": 2}]},
]}


def hand_instance() -> optimizer.Instance:
    data = instance_data(hours=3, pools=[pool("od", usd_per_chip_hour=10.0, available=20)],
                         workloads=[inference(demand_pflops=[2.0, 6.0, 10.0])])
    data["commitments"] = [{"id": "cud", "kind": "usage", "applies_to": {"pool": "od"}, "usd_per_chip_hour": 6.0,
                            "max_level": 20}]
    return optimizer.instance_from_data(data)


def buyer_instance() -> optimizer.Instance:
    """Six hours with every kind of purchase: on demand at 10, a reserved pool at 6 (paid every
    hour), 3-hour capacity blocks of 2 chips at 5, a usage commitment at 7; priced unmet demand."""
    data = instance_data(hours=6, pools=[
        pool("od", usd_per_chip_hour=10.0, available=16),
        pool("rsv", pricing="reserved", usd_per_chip_hour=6.0, available=16),
        pool("cb", pricing="capacity_block", usd_per_chip_hour=0.0, available=16, block=2),
    ], workloads=[inference(demand_pflops=[2.0, 4.0, 9.0, 8.0, 5.0, 2.0], unmet_usd_per_pflops_hour=50.0)])
    data["capacity_blocks"] = [{"id": "cb3", "pool": "cb", "duration_hours": 3, "usd_per_chip_hour": 5.0,
                                "max_blocks": 6}]
    data["commitments"] = [{"id": "cud", "kind": "usage", "applies_to": {"pool": "od"}, "usd_per_chip_hour": 7.0,
                            "max_level": 16}]
    return optimizer.instance_from_data(data)


BUYER_SCENARIOS = {"scenarios": [
    {"name": "base", "probability": 0.5},
    {"name": "surge", "probability": 0.3, "changes": [{"kind": "demand", "scale": 1.75, "from_hour": 2, "to_hour": 5}]},
    {"name": "slump", "probability": 0.2, "changes": [{"kind": "demand", "scale": 0.5}]},
]}


def scenarios_of(instance, data, risk=None):
    return hedge_scenarios_from_data({**data, **({"risk": risk} if risk else {})}, instance)


@pytest.mark.parametrize("method", ["extensive", "l-shaped"])
def test_hand_checked_hedge_differs_from_both_scenarios_own_purchases(method):
    instance = hand_instance()
    scenarios, risk = scenarios_of(instance, HAND_SCENARIOS)
    result = hedge(instance, scenarios, risk, method=method, workers=1, mip_rel_gap=0.0)
    assert result.ok and result.chosen_from == method
    assert result.purchases == {"usage_level[cud]": 2.0}
    assert result.objective_usd == pytest.approx(136.0)
    assert result.bound_usd == pytest.approx(136.0)
    rows = {row["scenario"]: row for row in result.scenario_rows()}
    assert rows["base"]["hedged_usd"] == pytest.approx(156.0) and rows["late-surge"]["hedged_usd"] == pytest.approx(116.0)
    assert rows["base"]["foresight_usd"] == pytest.approx(148.0) and rows["late-surge"]["foresight_usd"] == pytest.approx(100.0)
    assert rows["late-surge"]["base_held_usd"] == pytest.approx(148.0)  # L = 6 held: 108 + 40
    assert result.base.plan.first_stage == {"usage_level[cud]": 6.0}
    assert result.evpi_usd.value == pytest.approx(12.0) and result.vss_usd.value == pytest.approx(12.0)


def test_hand_checked_cvar_buyer_commits_more():
    instance = hand_instance()
    scenarios, risk = scenarios_of(instance, HAND_SCENARIOS, {"cvar_alpha": 0.5, "cvar_weight": 1.0})
    for method in ("extensive", "l-shaped"):
        result = hedge(instance, scenarios, risk, method=method, workers=1, mip_rel_gap=0.0)
        assert result.purchases == {"usage_level[cud]": 6.0}, method
        assert result.objective_usd == pytest.approx(148.0)


def test_cvar_is_the_mean_of_the_worst_tail():
    assert cvar([100, 200], [0.5, 0.5], 0.5) == pytest.approx(200)
    assert cvar([100, 200], [0.5, 0.5], 0.0) == pytest.approx(150)
    assert cvar([100, 200, 300], [0.5, 0.3, 0.2], 0.75) == pytest.approx((0.2 * 300 + 0.05 * 200) / 0.25)
    assert risk_value([100, 200], [0.5, 0.5], Risk(cvar_alpha=0.5, cvar_weight=0.5)) == pytest.approx(175)


def test_hedge_beats_every_scenarios_own_purchases_and_the_gaps_bound_vss_and_evpi():
    instance = buyer_instance()
    scenarios, risk = scenarios_of(instance, BUYER_SCENARIOS)
    result = hedge(instance, scenarios, risk, method="extensive", workers=1, mip_rel_gap=0.0)
    assert result.ok and result.gap is not None and result.gap <= 1e-6
    instances = [apply_scenario(instance, s) for s in scenarios]
    p = [s.probability for s in scenarios]
    for own in result.foresight:
        held = [optimizer.solve(i, mip_rel_gap=0.0, fixed_purchases=own.plan.first_stage) for i in instances]
        assert all(plan.has_plan for plan in held)
        assert result.objective_usd <= risk_value([h.objective_usd for h in held], p, risk) + 1e-6
    for interval in (result.vss_usd, result.evpi_usd):
        assert interval.low - 1e-6 <= interval.value <= interval.high + 1e-6
        assert interval.high >= -1e-6
    # Something is bought, and the three scenarios pay for it differently.
    assert any(value > 0 for value in result.purchases.values())


def test_l_shaped_bound_is_valid_and_its_plan_matches_the_extensive_form():
    instance = buyer_instance()
    scenarios, risk = scenarios_of(instance, BUYER_SCENARIOS)
    extensive = hedge(instance, scenarios, risk, method="extensive", workers=1, mip_rel_gap=0.0, references=False)
    decomposed = hedge(instance, scenarios, risk, method="l-shaped", workers=2, mip_rel_gap=0.0, references=False)
    assert decomposed.first_stage["bound_usd"] <= extensive.objective_usd + 1e-6
    assert decomposed.first_stage["rounds"] >= 1
    assert decomposed.objective_usd == pytest.approx(extensive.objective_usd, rel=1e-9)
    assert decomposed.ok


def test_one_scenario_of_probability_one_is_a_solve():
    instance = buyer_instance()
    scenarios, risk = scenarios_of(instance, {"scenarios": [{"name": "base", "probability": 1.0}]})
    result = hedge(instance, scenarios, risk, method="extensive", workers=1, mip_rel_gap=0.0)
    plan = optimizer.solve(instance, mip_rel_gap=0.0)
    assert result.objective_usd == pytest.approx(plan.objective_usd, rel=1e-9)
    assert result.evpi_usd.value == pytest.approx(0.0, abs=1e-6) and result.vss_usd.value == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("data, path, words", [
    ({"scenarios": [{"name": "base", "probability": 0.5}, {"name": "x", "probability": 0.4}]},
     "scenarios[*].probability", "sum to 0.9"),
    ({"scenarios": [{"name": "base", "probability": 0.5}, {"name": "x"}]}, "scenarios[1](x).probability", "missing"),
    ({"scenarios": [{"name": "base", "probability": 1.0, "changes": [{"kind": "demand", "scale": 2.0}]}]},
     "scenarios[0](base).changes", "instance as given"),
    ({"scenarios": [{"name": "x", "probability": 1.0,
                     "changes": [{"kind": "availability", "match": {"pool": "nope"}, "scale": 0.5}]}]},
     "scenarios[0](x).changes[0].match", "matches no pool"),
    ({"scenarios": [{"name": "x", "probability": 1.0}], "risk": {"cvar_alpha": 1.0}}, "risk.cvar_alpha", ""),
])
def test_bad_hedge_scenario_files_name_the_scenario_and_field(data, path, words):
    with pytest.raises(InputError) as caught:
        hedge_scenarios_from_data(data, hand_instance(), "scen.yaml")
    text = caught.value.render()
    assert path in text and words in text


def test_cli_hedge_writes_checked_scenario_plans_and_refuses_bad_files_writing_nothing(tmp_path):
    instance_file = tmp_path / "inst.yaml"
    instance_file.write_text(yaml.safe_dump(hand_instance().model_dump(mode="json", exclude_none=True)))
    scenario_file = tmp_path / "scen.yaml"
    scenario_file.write_text(yaml.safe_dump(HAND_SCENARIOS))
    out = tmp_path / "hedge"
    result = chipmix("hedge", str(instance_file), str(scenario_file), "--out", str(out), "--gap", "0", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "136.00" in result.stdout and "VSS" in result.stdout
    summary = json.loads((out / "hedge.json").read_text())
    assert summary["purchases"] == {"usage_level[cud]": 2.0} and summary["ok"]
    assert [row["scenario"] for row in summary["scenarios"]] == ["base", "late-surge"]
    assert (out / "purchases.csv").read_text().splitlines()[1].startswith("cud,usage,0,2,chips,36")
    for name in ("base", "late-surge"):
        check = chipmix("check", str(out / "scenarios" / name / "instance.yaml"), str(out / "scenarios" / name))
        assert check.returncode == 0, check.stdout + check.stderr
    page = chipmix("report", str(out))
    assert page.returncode == 0, page.stderr
    text = (out / "report.html").read_text()
    assert "What to buy" in text and "cost_distribution" in text and "Regret of the base-case plan" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"scenarios": [{"name": "base", "probability": 0.7}]}))
    refused = chipmix("hedge", str(instance_file), str(bad), "--out", str(tmp_path / "nothing"))
    assert refused.returncode == 2 and "sum to 0.7" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "nothing").exists()


def test_hedge_on_a_dask_cluster_gives_the_same_hedge():
    distributed = pytest.importorskip("distributed")
    instance = buyer_instance()
    scenarios, risk = scenarios_of(instance, BUYER_SCENARIOS)
    local = hedge(instance, scenarios, risk, method="l-shaped", workers=1, mip_rel_gap=0.0, references=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = hedge(instance, scenarios, risk, method="l-shaped", cluster=cluster.scheduler_address,
                       mip_rel_gap=0.0, references=False)
    assert remote.purchases == local.purchases
    assert remote.objective_usd == pytest.approx(local.objective_usd, rel=1e-12)


def test_shipped_hedge_scenarios_validate_against_frontier_lab_week():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    instance = optimizer.load_instance(root / "instances" / "frontier-lab-week.yaml")
    scenarios, risk = load_hedge_scenarios(root / "instances" / "scenarios" / "frontier-lab-week-hedge.yaml", instance)
    assert sum(s.probability for s in scenarios) == pytest.approx(1.0)
    spiked = apply_scenario(instance, next(s for s in scenarios if s.name == "energy-spike"))
    price = spiked.sites[[s.id for s in spiked.sites].index("campus-texas")].energy_usd_per_mwh
    assert price[47] == 65.0 and price[48] == 4 * 65.0 and price[119] == 4 * 65.0 and price[120] == 65.0


def test_nothing_to_buy_is_each_scenario_alone():
    # No reserved pool, block offer or commitment: the first stage is empty, so the hedge is
    # perfect foresight and EVPI is 0 (2 and 1 PFLOP/s at 1 USD per chip-hour, half each: 1.5).
    instance = optimizer.instance_from_data(instance_data(workloads=[inference(demand_pflops=2.0)]))
    scenarios, risk = scenarios_of(instance, {"scenarios": [
        {"name": "base", "probability": 0.5},
        {"name": "half", "probability": 0.5, "changes": [{"kind": "demand", "scale": 0.5}]}]})
    for method in ("extensive", "l-shaped"):
        result = hedge(instance, scenarios, risk, method=method, workers=1, mip_rel_gap=0.0)
        assert result.purchases == {} and result.ok
        assert result.objective_usd == pytest.approx(0.5 * 4 + 0.5 * 2)
        assert result.evpi_usd.value == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["extensive", "l-shaped"])
def test_a_shock_that_caps_one_scenarios_use_does_not_cap_the_purchase(method):
    """Committed chips at 5 USD per hour (15 over the 3 hours); demand (2, 6, 10) at 10 per chip-hour.
    ``base`` (p 0.9) alone buys 6 (the chips from 2 to 6 save 20 > 15).  In ``scarce`` (p 0.1) the pool
    has 4 chips, so no level above 4 is of use there, and unmet demand costs 100 per PFLOP/s-h.  The
    hedge still buys 6: from 4 to 6 a chip saves 0.9 x 20 = 18 > 15.  Costs: base 90 + 10 x 4 = 130;
    scarce 90 + 8 x 100 = 890 (2, 4 and 4 chips served, all covered); expected 206 (a cap at 4: 212)."""
    data = instance_data(hours=3, pools=[pool("od", usd_per_chip_hour=10.0, available=20)],
                         workloads=[inference(demand_pflops=[2.0, 6.0, 10.0], unmet_usd_per_pflops_hour=100.0)])
    data["commitments"] = [{"id": "cud", "kind": "usage", "applies_to": {"pool": "od"}, "usd_per_chip_hour": 5.0,
                            "max_level": 20}]
    instance = optimizer.instance_from_data(data)
    scenarios, risk = scenarios_of(instance, {"scenarios": [
        {"name": "base", "probability": 0.9},
        {"name": "scarce", "probability": 0.1,
         "changes": [{"kind": "availability", "match": {"pool": "od"}, "scale": 0.2}]}]})
    result = hedge(instance, scenarios, risk, method=method, workers=1, mip_rel_gap=0.0)
    assert result.chosen_from == method and result.purchases == {"usage_level[cud]": 6.0}
    assert result.objective_usd == pytest.approx(206.0)
    assert result.bound_usd <= result.objective_usd + 1e-9
    assert [row["hedged_usd"] for row in result.scenario_rows()] == pytest.approx([130.0, 890.0])


def test_scenario_files_have_their_own_schema_and_errors_point_to_it():
    with pytest.raises(InputError) as caught:
        hedge_scenarios_from_data({"scenarios": [{"name": "x", "probability": 1.0, "probabilty": 1.0}]},
                                  hand_instance(), "scen.yaml")
    assert "scenarios[0](x).probabilty" in caught.value.render()
    assert "chipmix schema --scenarios" in caught.value.render()
    printed = chipmix("schema", "--scenarios")
    assert printed.returncode == 0
    schema = json.loads(printed.stdout)
    assert "risk" in schema["properties"] and "probability" in json.dumps(schema) and "energy_price" in json.dumps(schema)
