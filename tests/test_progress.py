"""Progress while solving: incumbent and bound over time, and the figures in summary.json."""

import json
from pathlib import Path

import pytest

import optimizer
from optimizer.analyses.scenarios import without_routing
from optimizer.solvers.progress import Progress
from tests.helpers import chipmix, solve_checked

FRONTIER = Path(__file__).resolve().parents[1] / "instances" / "frontier-lab-week.yaml"


def test_records_keep_the_best_incumbent_and_bound():
    seen = []
    progress = Progress(on_record=lambda *record: seen.append(record))
    progress.record(1.0, None, 50.0)
    progress.record(2.0, 120.0, 40.0)  # a lower bound than before is not news
    progress.record(3.0, 130.0, 60.0)  # a worse incumbent is not news either
    progress.record(4.0, 101.0, 100.0)
    assert progress.records == [(1.0, None, 50.0), (2.0, 120.0, 50.0), (3.0, 120.0, 60.0), (4.0, 101.0, 100.0)]
    assert seen == progress.records
    assert progress.time_to_first_plan() == 2.0
    assert progress.time_to_gap(0.01) == 4.0 and progress.time_to_gap(0.001) is None


@pytest.mark.parametrize("engine", ["highs", "cpsat"])
def test_solver_progress_reaches_summary_json(engine, tmp_path):
    instance = optimizer.load_instance(FRONTIER)
    if engine == "cpsat":  # CP-SAT refuses routing rows (test_economics)
        instance = without_routing(instance)
    plan = solve_checked(instance, tmp_path, engine=engine, mip_rel_gap=0.01, time_limit_s=30)
    records = plan.details["progress"]
    assert len(records) >= 2  # the solver reported while it ran, not only at the end
    times = [t for t, _, _ in records]
    assert times == sorted(times)
    incumbents = [o for _, o, _ in records if o is not None]
    bounds = [b for _, _, b in records if b is not None]
    assert incumbents == sorted(incumbents, reverse=True) and bounds == sorted(bounds)
    assert 0 <= plan.time_to_first_plan_s <= plan.solve_seconds + 0.01
    if plan.gap is not None and plan.gap <= 0.01:
        assert plan.time_to_first_plan_s <= plan.time_to_1pct_s <= plan.solve_seconds + 0.01
    summary = plan.summary()
    assert summary["time_to_first_plan_s"] == plan.time_to_first_plan_s


def test_cli_progress_prints_incumbent_and_bound(tmp_path):
    result = chipmix("solve", FRONTIER, "--progress", "--gap", "0.01", "--time-limit", "30", "--out", tmp_path / "plan")
    assert result.returncode == 0, result.stderr
    assert "incumbent" in result.stderr and "bound" in result.stderr and "gap" in result.stderr
    summary = json.loads((tmp_path / "plan" / "summary.json").read_text())
    assert summary["time_to_first_plan_s"] is not None
    assert "first plan / within 1%" in result.stdout


def test_checker_rejects_bad_progress_figures(tmp_path):
    from tests.test_gang import two_gangs

    instance = optimizer.instance_from_data(two_gangs())
    plan = solve_checked(instance, tmp_path)
    target = plan.write(tmp_path / "plan")
    summary = json.loads((target / "summary.json").read_text())
    summary.update(time_to_first_plan_s=5.0, time_to_1pct_s=1.0)
    (target / "summary.json").write_text(json.dumps(summary))
    report = optimizer.check_plan(instance, target)
    assert any("before time_to_first_plan_s" in v for v in report.violations), report.render()
    summary.update(time_to_first_plan_s="soon")
    (target / "summary.json").write_text(json.dumps(summary))
    assert any("seconds >= 0 or null" in v for v in optimizer.check_plan(instance, target).violations)
