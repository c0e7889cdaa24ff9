"""FOCUS 1.2 export, checked against the specification's own column list (tests/data/
focus-1.2-columns.csv: every column's feature level, nullability, data type and allowed values,
read from the FOCUS_Spec repository at tag v1.2, CC BY 4.0)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

import optimizer
from optimizer.plans.focus import export_focus, focus_rows
from tests.helpers import chip, chipmix, inference, instance_data, pool, site, solve_checked, training

SPEC = {row["column"]: row for row in csv.DictReader((Path(__file__).parent / "data" / "focus-1.2-columns.csv").open())}
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

DATA = {
    **instance_data(
        hours=30,
        chips=[chip("h100"), chip("tpu", vendor="google", peak_tflops=500.0, power_kw=0.5)],
        sites=[site("aws-east", cloud="aws", energy_usd_per_mwh=50.0), site("campus", cloud="owned", region="tx")],
        pools=[pool("od", site="aws-east", usd_per_chip_hour=4.0, available=16, block=8),
               pool("spot", site="aws-east", pricing="spot", usd_per_chip_hour=2.0, available=8, interruption_rate=0.1),
               pool("res", site="aws-east", chip="tpu", pricing="reserved", usd_per_chip_hour=1.5, available=8, block=4),
               pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.5, available=4)],
        workloads=[inference("chat", demand_pflops=[7.0 if t % 12 < 8 else 0.5 for t in range(30)],
                             efficiency={"h100": 0.5, "tpu": 0.5}, unmet_usd_per_pflops_hour=50.0),
                   training("pretrain", work_eflop=40.0, efficiency={"h100": 0.4}, short_usd_per_eflop=80.0)],
    ),
    "start": "2026-01-05T00:00:00Z",
}


def solved_and_written(data, tmp_path_factory, name):
    """(instance, plan, plan folder) of ``data``, solved through the checker."""
    instance = optimizer.instance_from_data(data)
    plan = solve_checked(instance, tmp_path_factory.mktemp(name))
    return instance, plan, plan.write(tmp_path_factory.mktemp(f"{name}-plan") / "plan")


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    return solved_and_written(DATA, tmp_path_factory, "focus")


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("period", ["hour", "day"])
def test_the_export_has_every_mandatory_column_typed_as_the_spec_says(solved, period):
    instance, plan, target = solved
    assert_typed(parse(export_focus(instance, target, period)))


def assert_typed(rows: list[dict[str, str]]) -> None:
    """Every row as the FOCUS 1.2 column list types it."""
    assert rows
    header = list(rows[0])
    mandatory = {name for name, spec in SPEC.items() if spec["feature_level"] == "Mandatory"}
    assert mandatory <= set(header), sorted(mandatory - set(header))
    assert all(name in SPEC or name.startswith("x_") for name in header), [n for n in header if n not in SPEC]
    for row in rows:
        for name in header:
            if name.startswith("x_"):
                continue
            spec, value = SPEC[name], row[name]
            if value == "":
                assert spec["allows_nulls"] == "True", (name, row)
                continue
            if spec["data_type"] == "Decimal":
                assert DECIMAL.match(value), (name, value)
            elif spec["data_type"] == "Date/Time":
                assert DATETIME.match(value), (name, value)
            if spec["allowed_values"]:
                assert value in spec["allowed_values"].split(";"), (name, value)
        # Spec: the product of PricingQuantity and a unit price is its cost metric.
        assert float(row["ContractedCost"]) == pytest.approx(
            float(row["PricingQuantity"]) * float(row["ContractedUnitPrice"]), abs=1e-6)
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]


@pytest.mark.parametrize("period", ["hour", "day"])
def test_billed_and_effective_cost_both_add_up_to_the_plans_compute_bill(solved, period):
    instance, plan, target = solved
    rows = parse(export_focus(instance, target, period))
    bill = plan.cost_usd["usage"] + plan.cost_usd["reserved"]
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(bill, rel=1e-9)
    assert sum(float(r["EffectiveCost"]) for r in rows) == pytest.approx(bill, rel=1e-9)
    assert sum(float(r["x_EnergyUsd"]) for r in rows if r["x_EnergyUsd"]) == pytest.approx(plan.cost_usd["energy"], rel=1e-9)


def test_pricing_and_commitment_columns_follow_the_pools_pricing(solved):
    instance, plan, target = solved
    rows = parse(export_focus(instance, target, "hour"))
    pricing = {p.id: p.pricing for p in instance.pools}
    for row in rows:
        kind = pricing[row["ResourceId"]]
        if kind == "reserved":
            assert row["CommitmentDiscountId"] == row["ResourceId"]
            assert (row["ChargeCategory"], row["CommitmentDiscountStatus"]) in {("Purchase", ""), ("Usage", "Used"),
                                                                                ("Usage", "Unused")}
        else:
            assert row["CommitmentDiscountId"] == "" and row["ChargeCategory"] == "Usage"
            assert row["PricingCategory"] == {"spot": "Dynamic"}.get(kind, "Standard")
    held = dict(zip(plan.reservations.pool, plan.reservations.chips))
    if held.get("res"):
        purchases = [r for r in rows if r["ChargeCategory"] == "Purchase"]
        assert len(purchases) == instance.hours  # one per hour held
        used = sum(float(r["PricingQuantity"]) for r in rows if r["CommitmentDiscountStatus"] == "Used")
        unused = sum(float(r["PricingQuantity"]) for r in rows if r["CommitmentDiscountStatus"] == "Unused")
        assert used + unused == pytest.approx(held["res"] * instance.hours)


def test_day_periods_are_24_hours_and_the_last_ends_with_the_horizon(solved):
    instance, plan, target = solved
    rows = parse(export_focus(instance, target, "day"))
    starts = sorted({r["ChargePeriodStart"] for r in rows})
    assert starts[0] == "2026-01-05T00:00:00Z" and set(starts) <= {"2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z"}
    assert max(r["ChargePeriodEnd"] for r in rows) == "2026-01-06T06:00:00Z"  # 30 hours from the start


def test_the_cli_writes_the_same_and_refuses_a_plan_for_another_instance(solved, tmp_path):
    instance, plan, target = solved
    path = tmp_path / "i.json"
    path.write_text(json.dumps(DATA))
    result = chipmix("export", "focus", target, "--instance", path, "--out", tmp_path / "focus.csv")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "focus.csv").read_text() == export_focus(instance, target, "hour")
    other = {**DATA, "name": "other"}
    path.write_text(json.dumps(other))
    refused = chipmix("export", "focus", target, "--instance", path)
    assert refused.returncode == 2 and "another instance" in refused.stderr


def test_an_unknown_period_is_refused():
    with pytest.raises(optimizer.InputError, match="unknown charge period"):
        focus_rows(optimizer.instance_from_data(DATA), [], [], "week")


def test_the_service_serves_the_same_focus_csv(solved, tmp_path):
    from tests.test_service import Server, request, wait

    instance, plan, target = solved
    server = Server(tmp_path / "jobs.sqlite").start()
    try:
        job = request(server, "POST", "/v1/solves", {"instance": DATA, "options": {"mip_rel_gap": 0.0}})[1]
        assert wait(server, job["id"])["status"] == "succeeded"
        for period in ("hour", "day"):
            status, text, _ = request(server, "GET", f"/v1/solves/{job['id']}/plan/focus.csv?period={period}")
            assert status == 200 and text == export_focus(instance, target, period)
    finally:
        server.stop()


def test_a_start_without_a_zone_is_utc_whatever_the_machines_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        rows = focus_rows(optimizer.instance_from_data({**DATA, "start": "2026-01-05T00:00:00"}), [
            {"hour": 0, "workload": "chat", "pool": "own", "chips": 1}], [])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert rows[0]["ChargePeriodStart"] == "2026-01-05T00:00:00Z"


#: Every instrument at once: a capacity block, a Savings-Plan-like spend level, a usage CUD, and a
#: take-or-pay minimum that the plan falls short of.
INSTRUMENTS = {
    **instance_data(
        hours=24,
        chips=[chip("h100"), chip("tpu", vendor="google", peak_tflops=800.0, power_kw=0.8)],
        sites=[site("use1", cloud="aws", energy_usd_per_mwh=50.0), site("gcp1", cloud="gcp", region="us-central1"),
               site("neo", cloud="fluidstack", region="eu")],
        pools=[pool("aws-od", site="use1", usd_per_chip_hour=4.0, available=16, block=8),
               pool("aws-cb", site="use1", pricing="capacity_block", usd_per_chip_hour=0.0, available=32, block=8),
               pool("gcp-od", site="gcp1", chip="tpu", usd_per_chip_hour=2.5, available=24),
               pool("neo-od", site="neo", usd_per_chip_hour=5.0, available=2)],
        workloads=[inference("chat", demand_pflops=[12.0 + 8.0 * (t % 12 >= 6) for t in range(24)],
                             efficiency={"h100": 0.5, "tpu": 0.45}, unmet_usd_per_pflops_hour=50.0),
                   training("ft", work_eflop=50.0, efficiency={"h100": 0.4, "tpu": 0.35})],
    ),
    "start": "2026-01-05T00:00:00Z",
    "capacity_blocks": [{"id": "cb-half-day", "pool": "aws-cb", "duration_hours": 12, "start_step_hours": 12,
                         "usd_per_chip_hour": 2.9}],
    "commitments": [{"id": "aws-sp", "kind": "spend", "applies_to": {"cloud": "aws"}, "discount": 0.3},
                    {"id": "gcp-cud", "kind": "usage", "applies_to": {"chip": "tpu"}, "usd_per_chip_hour": 1.6}],
    "contracts": [{"id": "neo-minimum", "applies_to": {"cloud": "fluidstack"}, "min_usd": 1000.0}],
}


@pytest.fixture(scope="module")
def bought(tmp_path_factory):
    return solved_and_written(INSTRUMENTS, tmp_path_factory, "focus-instruments")


@pytest.mark.parametrize("period", ["hour", "day"])
def test_instruments_are_purchases_used_and_unused_rows_that_add_up_to_the_bill(bought, period):
    instance, plan, target = bought
    kinds = set(plan.purchases[plan.purchases.usd > 0].kind)
    assert {"capacity_block", "usage", "contract"} <= kinds, plan.purchases  # the data puts them in play
    rows = parse(export_focus(instance, target, period))
    assert_typed(rows)
    bill = plan.cost_usd["total"] - plan.cost_usd["energy"] - plan.cost_usd["penalty"]
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(bill, rel=1e-9)
    assert sum(float(r["EffectiveCost"]) for r in rows) == pytest.approx(bill, rel=1e-9)
    assert sum(float(r["x_EnergyUsd"]) for r in rows if r["x_EnergyUsd"]) == pytest.approx(plan.cost_usd["energy"], rel=1e-9)
    # Each commitment's level is billed by its Purchase rows and spent by its Used and Unused rows.
    for row in plan.purchases.itertuples():
        if row.kind not in ("usage", "spend") or row.usd <= 0:
            continue
        mine = [r for r in rows if r["CommitmentDiscountId"] == row.instrument]
        assert sum(float(r["BilledCost"]) for r in mine) == pytest.approx(row.usd, rel=1e-9)
        assert sum(float(r["EffectiveCost"]) for r in mine if r["CommitmentDiscountStatus"]) == pytest.approx(row.usd, rel=1e-9)
        covered = plan.coverage[plan.coverage.commitment == row.instrument].chips.sum()
        used = sum(float(r["PricingQuantity"]) for r in mine if r["CommitmentDiscountStatus"] == "Used")
        assert used == pytest.approx(covered, rel=1e-9)
    blocks = [r for r in rows if r["CommitmentDiscountType"] == "Capacity Block"]
    assert sum(float(r["BilledCost"]) for r in blocks) == pytest.approx(plan.cost_usd["blocks"], rel=1e-9)
    shortfall = [r for r in rows if r["ChargeCategory"] == "Adjustment"]
    assert sum(float(r["BilledCost"]) for r in shortfall) == pytest.approx(plan.cost_usd["contract_shortfall"], rel=1e-9)
