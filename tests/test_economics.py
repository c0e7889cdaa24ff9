"""Tokens, routing, the envelope and unit economics, with the optima worked out by hand.

Units: chips of 1000 TFLOP/s at efficiency 1 deliver 1 PFLOP/s each.  A service at 1e12 FLOP
per token needs 1 PFLOP/s for 1000 tokens/s; one PFLOP/s-hour at that size is 3.6 Mtok.
"""

import copy
import json

import pytest

import optimizer
from optimizer import SolveStatus
from optimizer.analyses.greedy import greedy_plan
from tests.helpers import chip, chipmix, chips_of, inference, instance_data, pool, solve_checked, training

MILP_ENGINES = ("highs", "pulp-cbc")


def routing_case(draft_max=0.5, tokens=(5000, 16000, 30000)):
    # Flagship (1e12 FLOP/token) runs only on chip a (pool A: 10 chips at $0.1); the draft
    # (1e11, ratio 0.1) only on chip b (pool B: $2 a chip, one chip serves 10 reference PFLOP/s
    # of draft tokens), at most draft_max of the tokens.  Demand 5, 16, 30 reference PFLOP/s;
    # unserved costs $1000 per PFLOP/s-hour.
    # - hour 0: 5 A chips serve it all ($0.5); a draft chip would cost $2: draft share 0.
    # - hour 1: all-flagship needs 16 > 10 A chips; the draft takes at most 8 (half of 16), so
    #   the flagship needs >= 8: 8 A chips + 1 B chip = $2.8; draft share 0.5, at its bound.
    # - hour 2: at most 10 flagship + 10 draft (share 0.5) = 20 served, 10 unmet ($10,000):
    #   10 A + 1 B = $3.
    # Total: 0.5 + 2.8 + 3 + 10,000 = $10,006.3; tokens 5 + 16 + 20 = 41 PFLOP/s-hours x 3.6 = 147.6 Mtok.
    chips = [chip("a", peak_tflops=1000.0), chip("b", vendor="amd", peak_tflops=1000.0)]
    pools = [pool("A", chip="a", usd_per_chip_hour=0.1, available=10),
             pool("B", chip="b", usd_per_chip_hour=2.0, available=10)]
    service = {"type": "inference", "id": "chat", "demand_tokens_per_s": list(tokens),
               "efficiency": {"a": 1.0}, "unmet_usd_per_pflops_hour": 1000.0, "revenue_usd_per_mtok": 5.0,
               "paying_share": 0.4,
               "variants": [{"id": "flagship", "flop_per_token": 1e12, "efficiency": {"a": 1.0}},
                            {"id": "draft", "flop_per_token": 1e11, "efficiency": {"b": 1.0}, "max_share": draft_max}]}
    return instance_data(hours=3, chips=chips, pools=pools, workloads=[service])


def shares(plan, variant="draft"):
    frame = plan.routing[plan.routing.variant == variant]
    return {int(h): float(s) for h, s in zip(frame.hour, frame.share)}


@pytest.mark.parametrize("engine", MILP_ENGINES)
def test_draft_share_sits_at_its_bound_only_in_peak_hours(tmp_path, engine):
    plan = solve_checked(routing_case(), tmp_path, engine=engine)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd == pytest.approx(10_006.3)
    assert shares(plan) == pytest.approx({1: 0.5, 2: 0.5})
    assert shares(plan, "flagship") == pytest.approx({0: 1.0, 1: 0.5, 2: 0.5})
    assert chips_of(plan, pool="A") == 5 + 8 + 10 and chips_of(plan, pool="B") == 2
    assert set(plan.allocations[plan.allocations.pool == "B"].variant) == {"draft"}
    assert plan.unmet_pflops_hours == pytest.approx(10.0)
    econ = plan.economics
    assert econ["mtok"] == pytest.approx(147.6)
    # Spend $6.3 is all the service's; revenue: 147.6 Mtok x $5 x 40% paying = $295.2.
    assert econ["services"]["chat"]["usd_per_mtok"] == pytest.approx(6.3 / 147.6)
    assert econ["revenue_usd"] == pytest.approx(295.2)
    assert econ["compute_margin"] == pytest.approx((295.2 - 0.4 * 6.3) / 295.2)
    assert econ["pnl_full_usd"] == pytest.approx(295.2 - 6.3)


def test_a_tighter_draft_bound_costs_what_the_flagship_chips_cost(tmp_path):
    # Draft at most 25%: hour 1 needs flagship >= 12 > 10 chips, so it serves 10 / 0.75 = 13.33
    # (draft 3.33 on one chip), 2.67 unmet; hour 2 the same 13.33 served, 16.67 unmet.
    plan = solve_checked(routing_case(draft_max=0.25), tmp_path)
    assert shares(plan) == pytest.approx({1: 0.25, 2: 0.25})
    assert plan.unmet_pflops_hours == pytest.approx((16 - 40 / 3) + (30 - 40 / 3))


def test_one_variant_equals_the_plain_service(tmp_path):
    plain = instance_data(hours=2, pools=[pool("p", usd_per_chip_hour=1.0, available=10)],
                          workloads=[inference("chat", demand_pflops=[3.5, 12.0], unmet_usd_per_pflops_hour=7.0)])
    routed = copy.deepcopy(plain)
    service = routed["workloads"][0]
    del service["demand_pflops"]
    service.update(demand_tokens_per_s=[3500.0, 12000.0],
                   variants=[{"id": "only", "flop_per_token": 1e12}])
    a, b = solve_checked(plain, tmp_path), solve_checked(routed, tmp_path)
    assert a.objective_usd == pytest.approx(b.objective_usd) == pytest.approx(4 + 10 + 2 * 7)
    assert a.allocations.chips.sum() == b.allocations.chips.sum()
    assert shares(b, "only") == pytest.approx({0: 1.0, 1: 1.0})


def test_checker_rejects_routing_its_chips_cannot_cover(tmp_path):
    instance = optimizer.instance_from_data(routing_case())
    plan = solve_checked(instance, tmp_path)
    target = tmp_path / "edited"
    plan.write(target)
    lines = (target / "routing.csv").read_text().splitlines()
    # Hour 1: claim the draft served 30% and the flagship 70% (11.2 > 8 chips' worth).
    edited = [line.replace(",draft,0.5", ",draft,0.3") if line.startswith("1,") else line for line in lines]
    edited = [line.replace(",flagship,0.5", ",flagship,0.7") if line.startswith("1,") else line for line in edited]
    (target / "routing.csv").write_text("\n".join(edited) + "\n")
    report = optimizer.check_plan(instance, target)
    assert not report.ok
    assert any("cost_usd.penalty" in v for v in report.violations)  # less served at these shares
    (target / "routing.csv").write_text("\n".join(lines[:1] + [lines[1].replace(",1.0", ",0.9")] + lines[2:]) + "\n")
    report = optimizer.check_plan(instance, target)
    assert any("shares add up to" in v for v in report.violations)
    (target / "routing.csv").unlink()
    report = optimizer.check_plan(instance, target)
    assert any("routing.csv: missing" in v for v in report.violations)


def envelope_case(budget=7.0, floor=None, research_eflop=None):
    # Two services on one pool ($1 per 1-PFLOP/s chip), 1 hour, 5 PFLOP/s each, at 1e12 FLOP per
    # token (3.6 Mtok per PFLOP/s-hour): premium earns $10/Mtok ($36 per PFLOP/s-hour), basic
    # $1/Mtok ($3.60).  Budget $7: premium gets 5 chips, basic 2; basic's 3 unserved PFLOP/s lose
    # 3 x 3.6 = $10.80: objective 7 + 10.80 = $17.80.
    workloads = [
        {"type": "inference", "id": "premium", "demand_tokens_per_s": 5000.0, "flop_per_token": 1e12,
         "efficiency": {"h100": 1.0}, "revenue_usd_per_mtok": 10.0},
        {"type": "inference", "id": "basic", "demand_tokens_per_s": 5000.0, "flop_per_token": 1e12,
         "efficiency": {"h100": 1.0}, "revenue_usd_per_mtok": 1.0},
    ]
    if research_eflop:
        workloads.append(training("research", work_eflop=research_eflop, short_usd_per_eflop=0.0))
    data = instance_data(hours=1, pools=[pool("p", usd_per_chip_hour=1.0, available=20)], workloads=workloads)
    data["envelope"] = {"budget_usd": budget, **({"floors": floor} if floor else {})}
    return data


@pytest.mark.parametrize("engine", MILP_ENGINES)
def test_a_binding_budget_cuts_the_lowest_revenue_service_first(tmp_path, engine):
    plan = solve_checked(envelope_case(), tmp_path, engine=engine)
    assert plan.objective_usd == pytest.approx(17.8)
    assert chips_of(plan, workload="premium") == 5 and chips_of(plan, workload="basic") == 2
    assert plan.cost_usd["usage"] == pytest.approx(7.0) and plan.cost_usd["penalty"] == pytest.approx(10.8)
    assert plan.economics["revenue_usd"] == pytest.approx(5 * 36 + 2 * 3.6)
    assert plan.economics["budget_usd"] == 7.0


def test_a_research_floor_takes_its_share_of_the_budget_first(tmp_path):
    # A research run (free to cut) with a floor of 7.2 EFLOP = 2 chip-hours: the $7 budget leaves
    # $5 for serving: premium 5, basic 0.
    plan = solve_checked(envelope_case(floor={"research": {"eflop": 7.2}}, research_eflop=36.0), tmp_path)
    assert chips_of(plan, workload="research") == 2
    assert chips_of(plan, workload="premium") == 5 and chips_of(plan, workload="basic") == 0
    assert plan.economics["eflop_by_category"]["research"] == pytest.approx(7.2)


def test_a_floor_the_budget_cannot_buy_is_explained(tmp_path):
    data = envelope_case(budget=3.0, floor={"research": {"eflop": 14.4}}, research_eflop=36.0)
    outcome = optimizer.run_solve(optimizer.instance_from_data(data))
    assert outcome.plan.status is SolveStatus.INFEASIBLE
    text = outcome.message
    assert "envelope.floors.research" in text and "budget_usd 3.00" in text
    assert "short by 3.6 EFLOP" in text  # $3 buys 3 chip-hours = 10.8 of the 14.4
    assert "envelope_budget" in text


def test_more_budget_never_serves_less_revenue(tmp_path):
    served = []
    for budget in (2.0, 5.0, 7.0, 9.5, 20.0):
        plan = solve_checked(envelope_case(budget=budget), tmp_path)
        served.append(plan.economics["revenue_usd"])
    assert served == sorted(served)
    assert served[-1] == pytest.approx(5 * 36 + 5 * 3.6)


def test_checker_recomputes_the_economics_block(tmp_path):
    instance = optimizer.instance_from_data(routing_case())
    plan = solve_checked(instance, tmp_path)
    target = tmp_path / "edited"
    plan.write(target)
    summary = json.loads((target / "summary.json").read_text())
    summary["economics"]["compute_margin"] += 0.01
    (target / "summary.json").write_text(json.dumps(summary))
    report = optimizer.check_plan(instance, target)
    assert any("economics.compute_margin" in v for v in report.violations)


def test_bad_economics_fields_name_their_paths(tmp_path):
    data = routing_case()
    data["workloads"][0]["variants"][1]["min_share"] = 0.9  # above its max_share 0.5
    data["workloads"][0]["demand_pflops"] = 1.0  # and tokens too
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = chipmix("validate", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "workloads[0](chat).variants[1](draft).min_share" in result.stderr
    assert "exactly one of demand_pflops and demand_tokens_per_s" in result.stderr


def test_greedy_routes_and_passes_the_checker(tmp_path):
    instance = optimizer.instance_from_data(routing_case())
    plan = greedy_plan(instance)
    plan.write(tmp_path / "greedy")
    report = optimizer.check_plan(instance, tmp_path / "greedy")
    assert report.ok, report.render()


def test_cpsat_refuses_routing_and_without_routing_is_the_flagship_alone(tmp_path):
    from optimizer.analyses.scenarios import without_routing

    instance = optimizer.instance_from_data(routing_case())
    outcome = optimizer.run_solve(instance, optimizer.SolveOptions(engine="cpsat"))
    assert not outcome.ok and "variant_compute" in outcome.message and "highs" in outcome.message
    # The flagship alone: 5, 10 and 10 A chips serve 5, 10 and 10; 6 + 20 unmet: 2.5 + 26,000.
    alone = without_routing(instance)
    assert not alone.workloads[0].variants
    for engine in ("highs", "cpsat"):
        plan = solve_checked(alone, tmp_path, engine=engine)
        assert plan.cost_usd["usage"] == pytest.approx(2.5)
        assert plan.unmet_pflops_hours == pytest.approx(26.0)


def test_routed_names_are_unique_in_the_model():
    from optimizer.model.build import build_model
    from optimizer.model.data import build_model_data

    model = build_model(build_model_data(optimizer.instance_from_data(routing_case())))
    names = model.column_names()
    assert len(names) == len(set(names))
    assert "blocks[chat/draft,B,1]" in names and "blocks[chat/flagship,A,1]" in names


def test_the_service_returns_and_checks_routing(tmp_path):
    from tests.test_service import Server, request, wait

    server = Server(tmp_path / "jobs.sqlite", "--workers", "1").start()
    try:
        job = request(server, "POST", "/v1/solves", {"instance": routing_case()})[1]
        done = wait(server, job["id"])
        assert done["status"] == "succeeded", done
        plan = request(server, "GET", f"/v1/solves/{job['id']}/plan")[1]
        assert {row["variant"] for row in plan["routing"]} == {"flagship", "draft"}
        assert plan["summary"]["economics"]["mtok"] == pytest.approx(147.6)
        status, verdict, _ = request(server, "POST", "/v1/check", {"instance": routing_case(), "plan": plan})
        assert status == 200 and verdict["ok"], verdict
        bare = {key: value for key, value in plan.items() if key != "routing"}
        verdict = request(server, "POST", "/v1/check", {"instance": routing_case(), "plan": bare})[1]
        assert not verdict["ok"] and "routing.csv: missing" in verdict["violations"][0]
        status, text, _ = request(server, "GET", f"/v1/solves/{job['id']}/plan/routing.csv")
        assert status == 200 and text.splitlines()[0] == "hour,workload,variant,share"
    finally:
        server.stop()


def test_a_demand_scenario_scales_token_demand(tmp_path):
    from optimizer.analyses.scenarios import apply_scenario, scenarios_from_data

    instance = optimizer.instance_from_data(routing_case())
    scenario = scenarios_from_data({"scenarios": [
        {"name": "surge", "changes": [{"kind": "demand", "workload": "chat", "scale": 2.0, "from_hour": 1}]}]}, instance)[0]
    surged = apply_scenario(instance, scenario)
    assert surged.workloads[0].demand_tokens_per_s == (5000.0, 32000.0, 60000.0)
    assert surged.workloads[0].variants == instance.workloads[0].variants
