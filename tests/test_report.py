"""chipmix report: the HTML page in a real headless Chromium, the PNGs, and the xlsx in openpyxl."""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
import pandas as pd
from openpyxl import load_workbook

import optimizer
from optimizer.analyses.lockin import lockin_table
from optimizer.surfaces.report import build_tables
from tests.helpers import chip, chipmix, inference, instance_data, pool, site, solve_checked, training

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = ["chips_by_vendor", "chips_by_cloud", "workload_pool", "cost_per_day", "site_power", "pool_utilisation", "unmet",
          "lockin"]


def mixed_week():
    """Two days, three vendors, a campus whose cap binds (two 8-chip blocks of 1 kW chips: 16 kW) and
    two clouds: something in every chart."""
    hours = 48
    return instance_data(
        hours=hours,
        chips=[chip("h100", "nvidia", 1000.0, 1.0), chip("v6e", "google", 900.0, 0.5), chip("trn2", "aws", 650.0, 0.5)],
        sites=[site("campus", cloud="owned", power_cap_mw=0.016, energy_usd_per_mwh=60.0), site("aws"), site("gcp", cloud="gcp")],
        pools=[
            pool("own-h100", site="campus", pricing="owned", usd_per_chip_hour=0.8, available=32, block=8),
            pool("aws-trn2", site="aws", chip="trn2", usd_per_chip_hour=1.5, available=32, block=16),
            pool("aws-h100-res", site="aws", pricing="reserved", usd_per_chip_hour=2.5, available=16, block=8),
            pool("gcp-v6e", site="gcp", chip="v6e", usd_per_chip_hour=1.2, available=[16] * 24 + [64] * 24, block=8),
        ],
        workloads=[
            inference("chat", demand_pflops=[6.0 + 8.0 * ((t % 24) >= 8) for t in range(hours)],
                      efficiency={"h100": 0.5, "v6e": 0.5, "trn2": 0.4}, unmet_usd_per_pflops_hour=4.0),
            training("train", work_eflop=300.0, efficiency={"h100": 0.4, "v6e": 0.35}, short_usd_per_eflop=3.0),
        ],
    )


@pytest.fixture(scope="module")
def report_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    data = mixed_week()
    instance_path = folder / "week.yaml"
    instance_path.write_text(yaml.safe_dump(data))
    instance = optimizer.load_instance(instance_path)
    plan = solve_checked(instance, folder, mip_rel_gap=1e-3)
    plan_dir = plan.write(folder / "plan")
    lockin = lockin_table(instance, optimizer.SolveOptions(mip_rel_gap=1e-3))
    lockin.to_csv(folder / "lockin.csv", index=False)
    return instance_path, plan_dir, folder / "lockin.csv"


def test_tables_add_up_to_the_plan(report_inputs):
    instance_path, plan_dir, lockin = report_inputs
    instance = optimizer.load_instance(instance_path)
    tables = build_tables(instance, plan_dir, lockin)
    import pandas as pd

    allocations = pd.read_csv(plan_dir / "allocations.csv")
    assert tables.chips_by_vendor.to_numpy().sum() == allocations.chips.sum()
    assert tables.chips_by_cloud.to_numpy().sum() == allocations.chips.sum()
    # Cost per day adds up to the plan's cost less the training-shortfall penalty (not hourly).
    costs = tables.headline
    short_penalty = tables.unmet.short_eflop.sum() * 3.0
    assert tables.cost_per_day.to_numpy().sum() == pytest.approx(costs["total_usd"] - short_penalty, rel=1e-9)
    assert (tables.site_power["campus"].draw_mw <= tables.site_power["campus"].cap_mw + 1e-9).all()
    assert tables.headline["checker"] == "OK"
    assert set(tables.lockin.plan) >= {"multi", "vendor=nvidia", "vendor=google", "vendor=aws", "greedy"}
    assert len(tables.lockin) == len(pd.read_csv(lockin))  # every row, cloud= included
    # Chips per workload and pool over time add up to the plan too.
    assert tables.workload_pool_chips.to_numpy().sum() == allocations.chips.sum()
    assert tables.workload_pool_chips.shape[1] == 48


def test_report_opens_in_headless_chromium_with_every_chart(report_inputs, tmp_path):
    if CHROMIUM is None:
        message = "Chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("CHIPMIX_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    instance_path, plan_dir, lockin = report_inputs
    html_path = tmp_path / "report.html"
    result = chipmix("report", plan_dir, "--instance", instance_path, "--lockin", lockin, "--out", html_path,
                     "--xlsx", tmp_path / "report.xlsx")
    assert result.returncode == 0, result.stderr
    for name in CHARTS:
        png = tmp_path / "report_charts" / f"{name}.png"
        assert png.stat().st_size > 1000, name

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
        page.goto(html_path.as_uri())
        page.wait_for_load_state("load")
        charts = page.eval_on_selector_all(
            "figure img.chart",
            "images => images.map(i => ({id: i.closest('figure').id, w: i.naturalWidth, h: i.naturalHeight, done: i.complete}))",
        )
        headline = page.inner_text(".cards")
        power = json.loads(page.get_attribute("#site_power", "data-chart"))
        lockin_rows = page.eval_on_selector_all("#lockin-table tbody tr", "rows => rows.map(r => r.innerText)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert problems == []
    assert sorted(c["id"] for c in charts) == sorted(CHARTS)
    assert all(c["done"] and c["w"] > 100 and c["h"] > 100 for c in charts), charts
    assert "USD per delivered EFLOP" in headline and "checker" in headline and "OK" in headline
    # The campus cap binds, and the cap line sits inside the plot with head-room above it.
    (axis,) = power["axes"]
    assert power["binding_hours"]["campus"], power
    assert axis["ylim"][0] == 0 and axis["ylim"][1] >= 1.1 * power["cap_mw_max"] >= 1.1 * power["draw_mw_max"] * (1 - 1e-9)
    # Every lock-in row is on the page, vendor= and cloud= alike.
    frame = pd.read_csv(lockin)
    assert len(lockin_rows) == len(frame) and any(row.startswith("cloud=") for row in lockin_rows)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_xlsx_has_every_sheet_and_native_chart(report_inputs, tmp_path):
    instance_path, plan_dir, lockin = report_inputs
    result = chipmix("report", plan_dir, "--instance", instance_path, "--lockin", lockin, "--out", tmp_path / "r.html",
                     "--xlsx", tmp_path / "r.xlsx")
    assert result.returncode == 0, result.stderr
    book = load_workbook(tmp_path / "r.xlsx")
    charted = ["ChipsByVendor", "ChipsByCloud", "CostPerDay", "SitePower", "PoolUtilisation", "Unmet"]
    expected = ["Summary", *charted, "Allocations", "Reservations", "Purchases", "Energy", "Economics", "LockIn"]
    assert book.sheetnames == expected
    for name in charted + ["LockIn"]:
        assert len(book[name]._charts) == 1, name
        assert book[name].max_row > 1, name
    # The plan itself, one row per allocation, as allocations.csv has it: a spreadsheet can pivot it.
    allocations = pd.read_csv(plan_dir / "allocations.csv")
    sheet = book["Allocations"]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["hour", "workload", "pool", "chips"] and {"vendor", "cloud", "pricing"} <= set(header)
    assert sheet.max_row == len(allocations) + 1
    assert sum(row[3].value for row in sheet.iter_rows(min_row=2)) == allocations.chips.sum()
    reservations = pd.read_csv(plan_dir / "reservations.csv")
    assert book["Reservations"].max_row == len(reservations) + 1
    summary = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert summary["checker"] == "OK" and summary["total_usd"] > 0
    assert book["ChipsByVendor"].max_row == 49  # header + 48 hours


def test_report_of_a_tampered_plan_lists_the_violations_and_exits_1(report_inputs, tmp_path):
    instance_path, plan_dir, _ = report_inputs
    broken = tmp_path / "plan"
    shutil.copytree(plan_dir, broken)
    lines = (broken / "allocations.csv").read_text().splitlines()
    first = lines[1].split(",")
    first[3] = str(int(first[3]) + 1000)
    (broken / "allocations.csv").write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    result = chipmix("report", broken, "--instance", instance_path)
    assert result.returncode == 1
    assert "violation" in result.stderr
    assert "Checker violations" in (broken / "report.html").read_text()


def test_report_of_a_folder_without_a_plan_is_an_input_error(tmp_path):
    instance = Path(__file__).resolve().parents[1] / "instances" / "default.yaml"
    result = chipmix("report", tmp_path, "--instance", instance)
    assert result.returncode == 2
    assert "summary.json: missing" in result.stderr and "Traceback" not in result.stderr


def test_the_report_shows_what_to_buy_and_each_commitment_s_use(tmp_path):
    from tests.test_instruments import USAGE, commitment_week

    data = commitment_week(USAGE)
    instance = optimizer.instance_from_data(data)
    plan = solve_checked(data, tmp_path / "solve")
    plan.write(tmp_path / "plan")
    tables = build_tables(instance, tmp_path / "plan")
    assert tables.purchases.instrument.tolist() == ["h100-ri"] and tables.purchases.quantity.tolist() == [2]
    use = tables.commitment_use
    assert use.hour.tolist() == [0, 1, 2, 3] and (use.level == 2).all()
    assert (use.used + use.unused == 2).all() and use.used.sum() == plan.coverage.chips.sum()
    # The cost per day adds up to the plan: usage net of what the commitment paid for, plus its fee.
    assert tables.cost_per_day.to_numpy().sum() == pytest.approx(plan.cost_usd["total"])
    assert "commitments" in tables.cost_per_day.columns
    from optimizer.surfaces.report import write_report

    charts = write_report(tables, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "<h2>What to buy</h2>" in page and "<h2>Commitment use</h2>" in page and "commitment_use" in charts


def test_binding_hours_are_shaded_as_runs():
    import pandas as pd

    from optimizer.surfaces.report import binding_runs

    frame = pd.DataFrame({"draw_mw": [5.0, 12.0, 11.995, 7.0, 12.0], "cap_mw": [12.0] * 5})
    assert binding_runs(frame) == [(1, 3), (4, 5)]  # 11.995 is within 0.1% of 12: the cap binds


def test_charts_show_dates_when_the_instance_has_a_start_and_units_on_their_own_axes(tmp_path):
    from optimizer.surfaces.report import render_charts

    data = mixed_week()
    data["start"] = "2026-01-05T00:00:00Z"
    instance = optimizer.instance_from_data(data)
    plan = solve_checked(instance, tmp_path, mip_rel_gap=1e-3)
    plan.write(tmp_path / "plan")
    tables = build_tables(instance, tmp_path / "plan")
    assert str(tables.times([0, 25])[1]) == "2026-01-06 01:00:00+00:00"
    charts = render_charts(tables, tmp_path / "charts")
    meta = {name: json.loads(path.with_suffix(".json").read_text()) for name, path in charts.items()}
    for name in ("chips_by_vendor", "site_power", "workload_pool"):
        assert meta[name]["axes"][0]["xlabel"] == "UTC", name
    assert meta["cost_per_day"]["axes"][0]["xlabel"] == "day (UTC)"
    # Unmet inference (PFLOP/s-hours) and training short (EFLOP): two axes, never one.
    titles = [axis["title"] for axis in meta["unmet"]["axes"]]
    assert titles == ["Unmet inference (PFLOP/s-hours)", "Training work short (EFLOP)"]


def test_a_restricted_plan_that_serves_less_is_marked_in_the_report(tmp_path):
    from optimizer.surfaces.report import _lockin_table_html

    frame = pd.DataFrame([
        {"plan": "multi", "status": "optimal", "gap": 0.0009179, "total_usd": 159_600.0, "premium_usd": None,
         "premium_pct": None, "unmet_pflops_hours": 0.0, "short_eflop": 0.0, "note": None},
        {"plan": "cloud=gcp", "status": "optimal", "gap": 0.0, "total_usd": 170_000.0, "premium_usd": 10_400.0,
         "premium_pct": 6.52, "unmet_pflops_hours": 0.0, "short_eflop": 0.0, "note": None},
        {"plan": "vendor=aws", "status": "feasible", "gap": 0.003, "total_usd": 623_000.0, "premium_usd": 463_400.0,
         "premium_pct": None, "unmet_pflops_hours": 433.9, "short_eflop": 0.0,
         "note": "leaves 433.9 PFLOP/s-h more unmet and 0 EFLOP more short than multi"},
    ])
    page = _lockin_table_html(frame)
    assert "0.092%" in page and "159,600" in page and "+6.52%" in page  # as the CLI formats them
    assert "0.0009179" not in page and "1.596e+05" not in page
    rows = page.split("<tr")[2:]
    assert [("serves less" in row) for row in rows] == [False, False, True]


def test_cost_per_day_counts_restart_prices_and_owned_fixed_cost(tmp_path):
    from tests.test_run_shape import restart_case

    data = restart_case(0.5)  # [4, 0, 4] chips: 4 chips added in hour 2 at 0.5 each
    data["sites"].append({"id": "campus", "cloud": "owned", "region": "tx"})
    data["pools"].append(pool("own", site="campus", pricing="owned", usd_per_chip_hour=50.0, available=2,
                              fixed_usd_per_chip_hour=0.25))
    instance = optimizer.instance_from_data(data)
    plan = solve_checked(instance, tmp_path)
    plan.write(tmp_path / "plan")
    tables = build_tables(instance, tmp_path / "plan")
    assert tables.cost_per_day["restarts"].sum() == pytest.approx(plan.cost_usd["restarts"]) == pytest.approx(2.0)
    assert tables.cost_per_day["fixed"].sum() == pytest.approx(plan.cost_usd["fixed"]) == pytest.approx(2 * 3 * 0.25)
    assert tables.cost_per_day.to_numpy().sum() == pytest.approx(plan.cost_usd["total"])


def test_the_report_shows_energy_carbon_and_shadow_prices(tmp_path):
    from optimizer.surfaces.report import render_charts, render_html
    from tests.test_energy import cap_case, quota_case

    # The quota week: renewable energy at its own price, certificates, carbon: each in its hour.
    data = quota_case(rec=20.0, carbon=[400, 400, 300, 300], carbon_price=10.0)
    instance = optimizer.instance_from_data(data)
    plan = solve_checked(instance, tmp_path, duals=True)
    plan.write(tmp_path / "quota")
    tables = build_tables(instance, tmp_path / "quota")
    assert tables.cost_per_day.to_numpy().sum() == pytest.approx(plan.cost_usd["total"])
    for term in ("certificates", "carbon"):
        assert tables.cost_per_day[term].sum() == pytest.approx(plan.cost_usd[term]) and plan.cost_usd[term] > 0
    assert tables.headline["carbon_t"] == pytest.approx(plan.energy_summary["carbon_t"])
    assert tables.quotas.achieved_share.iloc[0] == pytest.approx(0.5)
    page = render_html(tables, render_charts(tables, tmp_path / "charts"))
    assert "Energy and carbon" in page and "one more MWh of quota q costs" in page
    # The capped week: the site's shadow price as a heat map, and the binding cap in words.
    instance = optimizer.instance_from_data(cap_case())
    solve_checked(instance, tmp_path, duals=True).write(tmp_path / "cap")
    tables = build_tables(instance, tmp_path / "cap")
    charts = render_charts(tables, tmp_path / "cap-charts")
    meta = json.loads(charts["duals_site"].with_suffix(".json").read_text())
    assert meta["rows"] == ["A"] and meta["max_value"] == pytest.approx(20.0)
    assert "duals_pool" not in charts  # no pool is full: nothing to show
    assert "one more MW at A in hour 0 is worth 20 USD/h" in render_html(tables, charts)
