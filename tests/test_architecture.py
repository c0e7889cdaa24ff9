"""The structure holds: stages import only earlier stages, no import circles, the checker shares
no model code, and the families' declarations are what the model, the docs and the backends use."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import optimizer
from optimizer.model.build import build_model
from optimizer.model.data import build_model_data
from optimizer.model.families import FAMILIES, RegistryError, check_registry
from optimizer.model.families.base import ConstraintFamily, Rows, Variable
from optimizer.model.linear import ModelError
from optimizer.plans.accounting import COST_KEYS
from optimizer.solvers.backends import get_backend
from optimizer.solvers.options import ENGINE_METHODS
from tests.helpers import chip, inference, instance_data, pool, site, solve_checked, training
from tests.test_gang import two_gangs

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optimizer"

#: The pipeline's stages, in the order data flows (docs/architecture.md).  A module may import
#: its own stage and earlier ones, never a later one.
STAGES = ["shared", "input", "model", "solvers", "plans", "analyses", "surfaces"]
SHARED = {"optimizer.errors", "optimizer.units", "optimizer.files", "optimizer.tasks"}


def stage_of(module: str) -> int:
    if module in SHARED:
        return 0
    if module == "optimizer":  # the public API is a surface: no module of the package imports it
        return STAGES.index("surfaces")
    part = module.split(".")[1]
    if part == "library":  # the instance library's builder feeds the input stage
        return STAGES.index("input")
    if part in ("__main__", "client"):  # the command, and the HTTP client: surfaces at the top
        return STAGES.index("surfaces")
    return STAGES.index(part)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The optimizer modules ``path`` imports (``top_level_only``: at import time, leaving out
    imports inside functions and under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes, top: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                if not top_level_only:
                    visit(node.body, top)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("optimizer"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optimizer"):
                found.add(node.module)
                for alias in node.names:  # "from optimizer.x import y" may name a module y
                    candidate = f"{node.module}.{alias.name}"
                    if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or (
                            PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists():
                        found.add(candidate)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and top_level_only:
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []) or [], top)

    visit(tree.body, True)
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_every_module_imports_only_its_own_and_earlier_stages():
    wrong = [
        f"{module} ({STAGES[stage_of(module)]}) imports {target} ({STAGES[stage_of(target)]})"
        for module, path in sorted(MODULES.items())
        for target in sorted(imports(path, top_level_only=False))
        if target in MODULES and stage_of(target) > stage_of(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = {module: {t for t in imports(path, top_level_only=True) if t in MODULES and t != module}
             for module, path in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in state:
                walk(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)


def test_the_checker_shares_no_model_code():
    checker = {m: p for m, p in MODULES.items() if m.startswith("optimizer.plans.checker")}
    assert len(checker) >= 10  # the package, its rules and readers
    for module, path in checker.items():
        allowed = ("optimizer.plans.checker", "optimizer.input", "optimizer.errors")
        for target in imports(path, top_level_only=False):
            assert target.startswith(allowed), f"{module} imports {target}"
        assert not re.search(r"^\s*(import numpy|from numpy)", path.read_text(), re.M), module


def test_every_family_has_a_checker_rule_named_after_it():
    rules = {p.stem for p in (PACKAGE / "plans" / "checker" / "rules").glob("*.py")} - {"__init__"}
    assert {family.name for family in FAMILIES} == rules


def test_pyproject_comments_point_at_files_that_exist():
    text = (ROOT / "pyproject.toml").read_text()
    comments = [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]
    paths = [p for c in comments for p in re.findall(r"[\w./-]+\.(?:py|md|yaml)\b", c)]
    assert paths, "the dependency comments name the files that guard them"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing
    script = re.search(r'chipmix = "([\w.]+):(\w+)"', text)
    module = __import__(script.group(1), fromlist=[script.group(2)])
    assert callable(getattr(module, script.group(2)))


# -- the declarations ------------------------------------------------------------------------------


def test_the_registry_is_consistent():
    check_registry()


def _family(**attributes) -> ConstraintFamily:
    family = ConstraintFamily()
    for key, value in attributes.items():
        setattr(family, key, value)
    return family


def test_the_registry_refuses_a_continuous_variable_in_no_declared_row_and_a_duplicate_name():
    loose = _family(name="loose", variables=(Variable("loose_slack", ("workload",), integer=False, doc=""),))
    with pytest.raises(RegistryError, match="loose_slack must name the one '>=' row family"):
        check_registry(FAMILIES + (loose,))
    at_most = _family(name="capped", rows=(Rows("capped_rows", ("workload",), "<=", ""),),
                      variables=(Variable("capped_slack", ("workload",), integer=False, covered_by="capped_rows", doc=""),))
    with pytest.raises(RegistryError, match="capped_slack"):
        check_registry(FAMILIES + (at_most,))
    twin = _family(name="twin", rows=(Rows("pool_capacity", ("pool", "hour"), "<=", ""),))
    with pytest.raises(RegistryError, match="'pool_capacity' is declared twice"):
        check_registry(FAMILIES + (twin,))


@pytest.mark.parametrize("elastic", [False, True])
def test_each_family_builds_exactly_what_it_declares(elastic):
    model = build_model(build_model_data(optimizer.instance_from_data(two_gangs())), elastic=elastic)
    declared_vars = {v.name: v for f in FAMILIES for v in f.variables + (f.elastic if elastic else ())}
    declared_rows = {r.name: r for f in FAMILIES for r in f.rows}
    assert set(model.variables) == set(declared_vars)
    assert set(model.constraints) == set(declared_rows)
    for name, fam in model.variables.items():
        assert fam.dims == declared_vars[name].dims and fam.hourly == declared_vars[name].hourly
        assert bool(model.col_integer[fam.slice].all()) == declared_vars[name].integer or fam.size == 0
    for name, fam in model.constraints.items():
        assert fam.dims == declared_rows[name].dims and fam.sense == declared_rows[name].sense
        finite_lower = np.isfinite(model.row_lower[fam.slice]).all()
        finite_upper = np.isfinite(model.row_upper[fam.slice]).all()
        assert {"<=": (not finite_lower) and finite_upper, ">=": finite_lower and not finite_upper,
                "=": finite_lower and finite_upper}[fam.sense] or fam.size == 0
    model.check_continuous_columns()


def test_formulation_md_names_every_declared_variable_and_row():
    text = (ROOT / "docs" / "formulation.md").read_text()
    names = [v.name for f in FAMILIES for v in f.variables + f.elastic] + [r.name for f in FAMILIES for r in f.rows]
    missing = [name for name in names if f"`{name}[" not in text and f"`{name}`" not in text]
    assert not missing, missing


def test_a_continuous_column_in_two_rows_is_refused_by_name():
    model = build_model(build_model_data(optimizer.instance_from_data(instance_data(
        workloads=[inference(unmet_usd_per_pflops_hour=5.0)]))))
    unmet = model.variables["unmet"]
    assert unmet.size and not model.col_integer[unmet.slice].any()
    model.check_continuous_columns()
    own_row = model.matrix.tocsc()[:, unmet.start].nonzero()[0][0]
    matrix = model.matrix.tolil()
    matrix[(own_row + 1) % model.n_rows, unmet.start] = 1.0  # a second row for the same column
    model.matrix = matrix.tocsc()
    with pytest.raises(ModelError, match="unmet: a continuous column sits in 2 rows"):
        model.check_continuous_columns()
    with pytest.raises(ModelError, match="unmet"):
        get_backend("cpsat").solve(model, optimizer.SolveOptions(engine="cpsat"))


def test_each_backend_registers_the_methods_the_options_allow():
    for engine, methods in ENGINE_METHODS.items():
        assert get_backend(engine).methods == methods
    assert set(ENGINE_METHODS) == set(optimizer.ENGINES)


def test_the_model_cost_terms_add_up_to_the_plan_cost_breakdown(tmp_path):
    # Every cost key a family declares, evaluated at the solver's values, is the plan's own term as
    # accounting recomputes it from whole chips (a reserved pool, priced unmet demand, a training run).
    data = instance_data(
        hours=3,
        chips=[chip("h100"), chip("tpu", vendor="google", peak_tflops=500.0, power_kw=0.5)],
        sites=[site("cloud", energy_usd_per_mwh=40.0), site("campus", cloud="owned", power_cap_mw=0.004)],
        pools=[pool("od", usd_per_chip_hour=4.0, available=16, block=8),
               pool("res", chip="tpu", pricing="reserved", usd_per_chip_hour=1.5, available=8, block=4),
               pool("own", site="campus", pricing="owned", usd_per_chip_hour=0.5, available=4)],
        workloads=[inference("chat", demand_pflops=[4.0, 9.0, 2.0], efficiency={"h100": 0.5, "tpu": 0.5},
                             unmet_usd_per_pflops_hour=3.0),
                   training("pretrain", work_eflop=20.0, efficiency={"h100": 0.4}, short_usd_per_eflop=50.0)],
    )
    plan = solve_checked(data, tmp_path)
    terms = plan.details["objective_terms_usd"]
    assert set(terms) <= set(COST_KEYS)
    for key, value in plan.cost_usd.items():
        if key != "total":
            assert terms.get(key, 0.0) == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert sum(terms.values()) == pytest.approx(plan.objective_usd, rel=1e-6)
