"""Engines: honest status at time limits, HiGHS and CP-SAT in one process, determinism, LP files."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import optimizer
from optimizer.analyses.scenarios import without_routing
from optimizer import SolveStatus
from optimizer.solvers.backends.highs import write_model_file
from optimizer.solvers.backends.pulp_backend import read_cbc_log
from optimizer.model.data import build_model_data
from optimizer.model.build import build_model
from tests.helpers import solve_checked

DEFAULT = Path(__file__).resolve().parents[1] / "instances" / "default.yaml"


@pytest.fixture(scope="module")
def default_instance():
    # Without routing: CP-SAT refuses routing rows (test_economics), and every engine runs here.
    return without_routing(optimizer.load_instance(DEFAULT))


def test_time_limit_is_never_reported_optimal(default_instance, engine, tmp_path):
    # The default week cannot be proven to a zero gap in 2 s on any engine (it takes HiGHS
    # ~13 s to reach 0.1%).  PuLP calls a HiGHS time-out "Optimal" and CBC may leave LP values:
    # the result must say feasible (with a bound and a positive gap) or no_solution (no plan).
    plan = solve_checked(default_instance, tmp_path, engine=engine, mip_rel_gap=0.0, time_limit_s=2.0)
    assert plan.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION), plan.details["solver_status"]
    if plan.status is SolveStatus.FEASIBLE:
        assert plan.gap is not None and plan.gap > 0
        assert plan.bound_usd < plan.objective_usd
        assert len(plan.allocations) > 0
    else:
        assert plan.allocations.empty
        with pytest.raises(optimizer.ChipmixError, match="no plan to write"):
            plan.write(tmp_path / "nothing")


def test_cbc_log_parsing():
    log = textwrap.dedent(
        """
        Result - Stopped on time limit

        Objective value:                167700.12000000
        Lower bound:                    167301.500
        Gap:                            0.00
        """
    )
    assert read_cbc_log(log) == {
        "result": "Stopped on time limit", "objective": 167700.12, "bound": 167301.5, "no_integer_solution": False,
    }
    assert read_cbc_log("Result - Stopped on time limit\nNo feasible solution found\n")["no_integer_solution"]


@pytest.mark.parametrize("first", ["ortools", "highspy"])
def test_highs_and_cpsat_share_one_process(first):
    # ortools bundles its own libhighs.so.1; a mismatched highspy fails to import beside it.
    # Run in a fresh interpreter so the import order is the one under test.
    code = textwrap.dedent(
        f"""
        if "{first}" == "ortools":
            from ortools.sat.python import cp_model
            import optimizer
        else:
            import optimizer
            from optimizer.solvers.backends import highs
            from ortools.sat.python import cp_model
        import pulp
        from tests.helpers import instance_data
        model = cp_model.CpModel()
        x = model.new_int_var(0, 10, "x")
        model.add(2 * x >= 7)
        model.minimize(x)
        solver = cp_model.CpSolver()
        assert solver.solve(model) == cp_model.OPTIMAL and solver.value(x) == 4
        plan = optimizer.solve(optimizer.instance_from_data(instance_data()), engine="highs")
        assert plan.status.value == "optimal"
        plan = optimizer.solve(optimizer.instance_from_data(instance_data()), engine="pulp-highs")
        assert plan.status.value == "optimal"
        plan = optimizer.solve(optimizer.instance_from_data(instance_data()), engine="cpsat")
        assert plan.status.value == "optimal"
        print("both engines ran")
        """
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    assert "both engines ran" in result.stdout


def test_same_instance_same_plan(default_instance):
    # Determinism: a solve that ends on its gap (not on the clock) gives the same plan every time.
    # The default week without its spot pools proves 0.01% in about 3 s here.
    data = default_instance.model_dump(mode="json")
    data["pools"] = [p for p in data["pools"] if p["pricing"] != "spot"]
    instance = optimizer.instance_from_data(data)
    first = optimizer.solve(instance, mip_rel_gap=1e-4)
    second = optimizer.solve(instance, mip_rel_gap=1e-4)
    assert first.status is SolveStatus.OPTIMAL and second.status is SolveStatus.OPTIMAL
    assert first.allocations.equals(second.allocations)
    assert first.reservations.equals(second.reservations)
    assert first.objective_usd == second.objective_usd


def test_lp_file_uses_the_family_names(tmp_path):
    instance = optimizer.load_instance(DEFAULT)
    path = tmp_path / "default.lp"
    write_model_file(build_model(build_model_data(instance)), path)
    text = path.read_text()
    for name in ("blocks[chat/flagship,aws-h100-od,0]", "blocks[chat/draft,aws-h100-od,0]", "blocks[images,aws-h100-od,0]",
                 "routed_pflops[chat/draft,0]", "routing_max_share[chat/draft,0]", "variant_compute[chat/flagship,0]",
                 "reserved_blocks[aws-trn2-reserved]", "inference_demand[chat,0]",
                 "training_work[pretrain-7b]", "single_site_choice[pretrain-7b]", "unmet[images,0]"):
        assert name in text, name


def test_unknown_engine_is_an_input_error():
    with pytest.raises(ValueError, match="engine"):
        optimizer.SolveOptions(engine="gurobi")
