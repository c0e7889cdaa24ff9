"""Properties on random small instances (hypothesis), each solved to a zero gap.

Every demand is priced (soft), so every instance and every restriction of it is
feasible and the optimal costs are comparable.
"""

import copy

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import optimizer
from tests.helpers import solve_checked

VENDORS = ["nvidia", "google", "aws"]
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def instances(draw):
    hours = draw(st.integers(1, 4))
    n_chips = draw(st.integers(1, 3))
    chips = [
        {"id": f"c{i}", "vendor": VENDORS[i % 3], "peak_tflops": draw(st.sampled_from([250.0, 500.0, 1000.0])),
         "power_kw": draw(st.sampled_from([0.5, 1.0]))}
        for i in range(n_chips)
    ]
    sites = []
    for i in range(draw(st.integers(1, 2))):
        entry = {"id": f"s{i}", "cloud": draw(st.sampled_from(["aws", "gcp", "owned"])), "region": "r"}
        if draw(st.booleans()):
            entry["power_cap_mw"] = draw(st.sampled_from([0.002, 0.005, 0.01]))
            entry["energy_usd_per_mwh"] = [draw(st.sampled_from([0.0, 50.0, 200.0])) for _ in range(hours)]
            entry["pue"] = draw(st.sampled_from([1.0, 1.2]))
        sites.append(entry)

    def pool_entry(index):
        pricing = draw(st.sampled_from(["on_demand", "spot", "reserved", "owned"]))
        block = draw(st.sampled_from([1, 2, 4]))
        if pricing == "reserved" or draw(st.booleans()):
            available = draw(st.integers(0, 12))
        else:
            available = [draw(st.integers(0, 12)) for _ in range(hours)]
        entry = {
            "id": f"p{index}", "site": f"s{draw(st.integers(0, len(sites) - 1))}",
            "chip": f"c{draw(st.integers(0, n_chips - 1))}", "pricing": pricing,
            "usd_per_chip_hour": draw(st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0])),
            "available": available, "block": block,
        }
        if pricing == "spot":
            entry["interruption_rate"] = draw(st.sampled_from([0.0, 0.2, 0.5]))
        return entry

    pools = [pool_entry(i) for i in range(draw(st.integers(1, 4)))]
    workloads = []
    for i in range(draw(st.integers(1, 3))):
        efficiency = {c["id"]: draw(st.sampled_from([0.3, 0.6, 1.0])) for c in chips if draw(st.booleans())} or {"c0": 0.5}
        if draw(st.booleans()):
            workloads.append({
                "type": "inference", "id": f"w{i}", "efficiency": efficiency,
                "demand_pflops": [draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])) for _ in range(hours)],
                "unmet_usd_per_pflops_hour": draw(st.sampled_from([1.0, 5.0, 20.0])),
            })
        else:
            release = draw(st.integers(0, hours - 1))
            workloads.append({
                "type": "training", "id": f"w{i}", "efficiency": efficiency,
                "work_eflop": draw(st.sampled_from([1.0, 5.0, 20.0])),
                "release_hour": release, "deadline_hour": draw(st.integers(release + 1, hours)),
                "max_chips": draw(st.sampled_from([None, 2, 8])), "single_site": draw(st.booleans()),
                "short_usd_per_eflop": draw(st.sampled_from([0.5, 2.0, 10.0])),
                # Gang runs take 4 or 8 chips: whole blocks of every pool (blocks are 1, 2 or 4).
                "gang_chips": draw(st.sampled_from([None, None, 4, 8])),
            })
    for w in workloads:
        if w.get("gang_chips") is not None:
            w["max_chips"] = None
        for key in ("max_chips", "gang_chips"):
            if key in w and w[key] is None:
                w.pop(key)
    return {"name": "random", "hours": hours, "chips": chips, "sites": sites, "pools": pools, "workloads": workloads}


def optimum(data, tmp_path, engine="highs"):
    plan = solve_checked(data, tmp_path, engine=engine)
    assert plan.status is optimizer.SolveStatus.OPTIMAL, plan.details["solver_status"]
    return plan.objective_usd


def close_or_below(a, b):
    return a <= b + 1e-6 * max(1.0, abs(b))


@PROPERTY_SETTINGS
@given(data=instances(), extra=st.data())
def test_adding_a_pool_never_raises_the_optimal_cost(tmp_path, data, extra):
    base = optimum(data, tmp_path)
    bigger = copy.deepcopy(data)
    bigger["pools"].append({
        "id": "extra", "site": "s0", "chip": extra.draw(st.sampled_from([c["id"] for c in data["chips"]])),
        "pricing": extra.draw(st.sampled_from(["on_demand", "reserved", "spot"])),
        "usd_per_chip_hour": extra.draw(st.sampled_from([0.0, 1.0, 3.0])),
        "available": extra.draw(st.integers(0, 8)), "block": extra.draw(st.sampled_from([1, 2])),
    })
    assert close_or_below(optimum(bigger, tmp_path), base)


@PROPERTY_SETTINGS
@given(data=instances(), vendor=st.sampled_from(VENDORS))
def test_removing_a_vendor_never_lowers_the_optimal_cost(tmp_path, data, vendor):
    chips_of_vendor = {c["id"] for c in data["chips"] if c["vendor"] == vendor}
    kept = [p for p in data["pools"] if p["chip"] not in chips_of_vendor]
    if not kept or len(kept) == len(data["pools"]):
        event("skipped: vendor absent or the only one")
        return  # nothing to compare: the instance needs a pool, and removing none proves nothing
    base = optimum(data, tmp_path)
    restricted = {**copy.deepcopy(data), "pools": kept}
    assert close_or_below(base, optimum(restricted, tmp_path))


@PROPERTY_SETTINGS
@given(data=instances())
def test_highs_cbc_and_cpsat_agree(tmp_path, data):
    highs_plan = solve_checked(data, tmp_path, engine="highs")
    assert highs_plan.status is optimizer.SolveStatus.OPTIMAL
    highs = highs_plan.objective_usd
    gangs = {w["id"] for w in data["workloads"] if "gang_chips" in w}
    if gangs & set(highs_plan.allocations.workload):
        event("a gang run is scheduled")
    elif gangs:
        event("a gang run is skipped")
    cbc = optimum(data, tmp_path, "pulp-cbc")
    assert cbc == pytest.approx(highs, rel=1e-6, abs=1e-6)
    plan = solve_checked(data, tmp_path, engine="cpsat")
    assert plan.status is optimizer.SolveStatus.OPTIMAL, plan.details["solver_status"]
    # CP-SAT solves the integer-scaled model: its optimum is within the stated bound of the MILP's.
    scaling = plan.details["solver"]["scaling_bound_usd"]
    assert abs(plan.objective_usd - highs) <= scaling + 1e-6 * max(1.0, highs)
    assert plan.bound_usd <= highs + 1e-6 * max(1.0, highs)


@st.composite
def instrument_for(draw, data):
    """An instrument the instance can take: a capacity-block pool with an offer, or a spend or usage
    commitment on its on-demand pools (None when it has no on-demand pool to commit to)."""
    hours = data["hours"]
    kind = draw(st.sampled_from(["block", "spend", "usage"]))
    on_demand = [p for p in data["pools"] if p["pricing"] == "on_demand"]
    if kind == "block":
        duration = draw(st.integers(1, hours))
        pool = {"id": "cb", "site": "s0", "chip": draw(st.sampled_from([c["id"] for c in data["chips"]])),
                "pricing": "capacity_block", "usd_per_chip_hour": 0.0, "available": draw(st.integers(1, 8)),
                "block": draw(st.sampled_from([1, 2]))}
        offer = {"id": "offer", "pool": "cb", "duration_hours": duration,
                 "usd_per_chip_hour": draw(st.sampled_from([0.25, 1.0, 3.0])),
                 "max_blocks": draw(st.sampled_from([None, 1, 3]))}
        return {"pools": [pool], "capacity_blocks": [offer]}
    if not on_demand:
        return None
    chip = draw(st.sampled_from(sorted({p["chip"] for p in on_demand})))
    if kind == "spend":
        commitment = {"id": "plan", "kind": "spend", "applies_to": {"chip": chip},
                      "discount": draw(st.sampled_from([0.0, 0.2, 0.5]))}
    else:
        commitment = {"id": "cud", "kind": "usage", "applies_to": {"chip": chip},
                      "usd_per_chip_hour": draw(st.sampled_from([0.25, 1.0, 3.0]))}
    start = draw(st.integers(0, hours - 1))
    commitment.update(start_hour=start, end_hour=draw(st.integers(start + 1, hours)))
    return {"commitments": [commitment]}


def with_instrument(data, extra):
    """A copy of ``data`` with one drawn instrument (and the pool it brings), or None."""
    instrument = extra.draw(instrument_for(data))
    if instrument is None:
        event("skipped: no on-demand pool to commit to")
        return None
    bigger = copy.deepcopy(data)
    bigger["pools"] += instrument.pop("pools", [])
    bigger.update(instrument)
    event(f"instrument: {next(iter(instrument))}")
    return bigger


@PROPERTY_SETTINGS
@given(data=instances(), extra=st.data())
def test_adding_an_offer_or_a_commitment_never_raises_the_optimal_cost(tmp_path, data, extra):
    bigger = with_instrument(data, extra)
    if bigger is None:
        return
    assert close_or_below(optimum(bigger, tmp_path), optimum(data, tmp_path))


@PROPERTY_SETTINGS
@given(data=instances(), extra=st.data())
def test_highs_cbc_and_cpsat_agree_with_instruments(tmp_path, data, extra):
    data = with_instrument(data, extra)
    if data is None:
        return
    highs = optimum(data, tmp_path)
    assert optimum(data, tmp_path, "pulp-cbc") == pytest.approx(highs, rel=1e-6, abs=1e-6)
    # CP-SAT: spend commitments on their grid, within the stated scaling bound of the MILP.
    plan = solve_checked(data, tmp_path, engine="cpsat")
    assert plan.status is optimizer.SolveStatus.OPTIMAL, plan.details["solver_status"]
    scaling = plan.details["solver"]["scaling_bound_usd"]
    assert abs(plan.objective_usd - highs) <= scaling + 1e-6 * max(1.0, highs)
    assert plan.bound_usd <= highs + 1e-6 * max(1.0, highs)


def with_energy(data, draw, share=None):
    """``data`` with renewable supply, grid carbon and certificates at its first site, a carbon
    price, and (``share``) a quota on that site."""
    out = copy.deepcopy(data)
    hours = out["hours"]
    site = out["sites"][0]
    site["renewable_mw"] = [draw(st.sampled_from([0.0, 0.001, 0.004])) for _ in range(hours)]
    site["renewable_usd_per_mwh"] = draw(st.sampled_from([0.0, 40.0, 120.0]))
    site["grid_carbon_kg_per_mwh"] = [draw(st.sampled_from([0.0, 300.0, 800.0])) for _ in range(hours)]
    site["rec_usd_per_mwh"] = draw(st.sampled_from([5.0, 60.0]))
    out["carbon_usd_per_t"] = draw(st.sampled_from([0.0, 50.0, 200.0]))
    if share is not None:
        out["renewable_quotas"] = [{"id": "q", "sites": [site["id"]], "share": share}]
    return out


ENERGY_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=25)


@ENERGY_SETTINGS
@given(data=instances(), extra=st.data(), shares=st.lists(st.sampled_from([0.1, 0.4, 0.7, 1.0]), min_size=2,
                                                            max_size=2, unique=True))
def test_a_higher_quota_never_lowers_the_optimal_cost(tmp_path, data, extra, shares):
    # Certificates can always meet a quota, so every share is feasible and the costs compare.
    low, high = sorted(shares)
    plain = with_energy(data, extra.draw)
    no_quota = optimum(plain, tmp_path)
    lower = optimum({**plain, "renewable_quotas": [{"id": "q", "sites": [plain["sites"][0]["id"]], "share": low}]},
                    tmp_path)
    higher = optimum({**plain, "renewable_quotas": [{"id": "q", "sites": [plain["sites"][0]["id"]], "share": high}]},
                     tmp_path)
    assert close_or_below(no_quota, lower) and close_or_below(lower, higher)


@ENERGY_SETTINGS
@given(data=instances(), extra=st.data())
def test_highs_and_cpsat_agree_with_renewable_supply_and_priced_carbon(tmp_path, data, extra):
    data = with_energy(data, extra.draw)
    highs = optimum(data, tmp_path)
    plan = solve_checked(data, tmp_path, engine="cpsat")
    assert plan.status is optimizer.SolveStatus.OPTIMAL, plan.details["solver_status"]
    # Within CP-SAT's stated scaling bound of the MILP's optimum, and its bound valid: renewable
    # energy is a decision on CP-SAT's grid and grid energy a slack whose row holds the chips' draw.
    scaling = plan.details["solver"]["scaling_bound_usd"]
    assert abs(plan.objective_usd - highs) <= scaling + 1e-6 * max(1.0, highs)
    assert plan.bound_usd <= highs + 1e-6 * max(1.0, highs)


def with_revenue(data, draw):
    """The instance's services in tokens (1e12 FLOP per token) at a drawn revenue, no training."""
    out = copy.deepcopy(data)
    services = [w for w in out["workloads"] if w["type"] == "inference"]
    if not services:
        services = [{"type": "inference", "id": "w-s", "efficiency": {"c0": 0.5}, "demand_pflops": [1.0] * out["hours"]}]
    for w in services:
        w["demand_tokens_per_s"] = [v * 1000.0 for v in w.pop("demand_pflops")]
        w["flop_per_token"] = 1e12
        w.pop("unmet_usd_per_pflops_hour", None)
        # Revenues that cannot tie with a chip's price per PFLOP/s-hour (3.6 x these: 6.12, 26.28, 62.64).
        w["revenue_usd_per_mtok"] = draw(st.sampled_from([1.7, 7.3, 17.4]))
        w["paying_share"] = draw(st.sampled_from([0.5, 1.0]))
    out["workloads"] = services
    return out


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=instances(), extra=st.data(),
       shares=st.lists(st.sampled_from([0.2, 0.5, 0.8]), min_size=2, max_size=2, unique=True))
def test_raising_the_budget_never_lowers_the_revenue_served(tmp_path, data, extra, shares):
    # With a budget the objective is spend + paying revenue lost, and a smaller budget's plan is a
    # plan of the larger one: the larger serves at least as much revenue (ties aside, which the
    # revenues above rule out) and its objective is not higher.
    from optimizer.plans.accounting import spend_usd

    plain = with_revenue(data, extra.draw)
    unconstrained = solve_checked({**plain, "envelope": {"budget_usd": 1e9}}, tmp_path)
    spend = spend_usd(unconstrained.cost_usd)
    if spend <= 1e-6:
        event("nothing to spend")
        return
    plans = []
    for share in sorted(shares):
        plan = solve_checked({**plain, "envelope": {"budget_usd": share * spend}}, tmp_path)
        assert plan.status is optimizer.SolveStatus.OPTIMAL
        assert spend_usd(plan.cost_usd) <= share * spend * (1 + 1e-9) + 1e-6
        plans.append(plan)
    low, high = plans
    assert low.economics["revenue_usd"] <= high.economics["revenue_usd"] + 1e-6 * max(1.0, high.economics["revenue_usd"])
    assert close_or_below(high.objective_usd, low.objective_usd)
    assert close_or_below(high.objective_usd, low.objective_usd) and close_or_below(
        unconstrained.objective_usd, high.objective_usd)
