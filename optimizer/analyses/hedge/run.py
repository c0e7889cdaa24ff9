"""``chipmix hedge``: purchases chosen once for every scenario, each scenario's hours played with
them, and what the choice is worth against the base-case purchases and against foresight.

1. **First stage.**  The extensive form (:mod:`.extensive`, one HiGHS model of every scenario)
   or the L-shaped method (:mod:`.lshaped`) chooses the purchases and proves a lower bound on
   the hedge objective.
2. **Play.**  Every scenario is solved with those purchases held (``fixed_purchases``): one plan
   per scenario, each checked by the independent checker against that scenario's instance.
3. **References** (unless ``references=False``): the base case solved alone, its purchases held in
   every scenario (what a planner who plans for the base case pays), and every scenario solved
   alone (perfect foresight).  Where the base-case purchases play better than the first stage's,
   the hedge takes them: it is never worse than a candidate it has evaluated.

The hedge's value is risk(cost of each scenario's plan); its bound the best valid one of the
first stage's and the foresight plans' (no purchase beats foresight).  VSS = value of the
base-case purchases - the hedge's; EVPI = the hedge's - foresight's; each with the range the
gaps leave (docs/hedge.md).  Independent solves run on a :class:`~.tasks.TaskPool`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from optimizer.analyses.hedge.extensive import extensive_form
from optimizer.analyses.hedge.lshaped import l_shaped
from optimizer.analyses.hedge.risk import risk_value
from optimizer.analyses.scenarios import Risk, Scenario, apply_scenario
from optimizer.tasks import TaskPool, default_workers
from optimizer.errors import ChipmixError, InputError
from optimizer.files import replace_folder, staging_folder
from optimizer.input.schema import Instance
from optimizer.plans.instruments import PURCHASE_COLUMNS
from optimizer.plans.outcome import Outcome, OutcomeKind, run_solve
from optimizer.solvers.options import SolveOptions, solve_options
from optimizer.solvers.result import relative_gap

METHODS = ("auto", "extensive", "l-shaped")
#: ``auto`` takes the extensive form up to this many columns over all scenarios: it did better at
#: 18.7k and 62k columns (benchmarks/hedge.py), L-shaped at 87k (frontier-lab-week's 5 scenarios,
#: docs/hedge.md) and 187k.
EXTENSIVE_MAX_COLUMNS = 70_000


def _play(task: dict) -> Outcome:
    """One scenario's hours, solved and checked (with the given purchases held, or freely)."""
    from optimizer.input.loading import instance_from_data

    instance = instance_from_data(task["instance"], source=task["name"])
    options = SolveOptions.model_validate(task["options"])
    try:
        return run_solve(instance, options, source=task["name"], label=task["name"], fixed_purchases=task["fixed"])
    except InputError as exc:  # purchases this scenario cannot hold: its row says so, the others run
        return Outcome(OutcomeKind.ERROR, exc.render())


@dataclass(frozen=True)
class Interval:
    """A figure between two others the gaps leave it in: ``value`` is what the plans give."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass
class HedgeResult:
    instance: str
    method: str
    method_reason: str
    risk: Risk
    scenarios: list[Scenario]
    instances: list[Instance]  # each scenario's instance
    purchases: dict[str, float]  # the hedge: purchase column name -> value
    chosen_from: str  # which candidate the purchases are ("extensive form", "l-shaped", "base-case purchases")
    hedged: list[Outcome]  # per scenario, its hours played with the hedge
    objective_usd: float | None
    bound_usd: float | None
    first_stage: dict[str, Any]  # the first stage's own figures (status, bound, seconds, rounds)
    base_held: list[Outcome] | None = None
    foresight: list[Outcome] | None = None
    base: Outcome | None = None
    vss_usd: Interval | None = None
    evpi_usd: Interval | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def probabilities(self) -> np.ndarray:
        return np.array([s.probability for s in self.scenarios], dtype=float)

    @property
    def ok(self) -> bool:
        """Every scenario has a plan that passes the checker."""
        return all(outcome.ok for outcome in self.hedged)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective_usd, self.bound_usd)

    def purchase_table(self) -> pd.DataFrame:
        """What to buy: the purchases.csv rows of the scenario plans (blocks, commitment levels)
        and each reserved pool's chips, with USD as the probability-weighted fee."""
        parts = []
        for p, outcome, instance in zip(self.probabilities, self.hedged, self.instances):
            plan = outcome.plan
            rows = plan.purchases[plan.purchases.kind != "contract"][PURCHASE_COLUMNS].copy()
            rate = {pool.id: pool.usd_per_chip_hour for pool in instance.pools}
            reserved = pd.DataFrame({
                "instrument": plan.reservations.pool, "kind": "reserved", "start_hour": 0,
                "quantity": plan.reservations.chips.astype(object), "unit": "chips",
                "usd": [chips * rate[pool] * instance.hours for pool, chips in zip(plan.reservations.pool,
                                                                                  plan.reservations.chips)]})
            frame = pd.concat([rows, reserved[PURCHASE_COLUMNS]], ignore_index=True)
            frame["usd"] = frame["usd"].astype(float) * p
            parts.append(frame)
        table = pd.concat(parts, ignore_index=True)
        keys = ["instrument", "kind", "start_hour", "quantity", "unit"]
        return table.groupby(keys, sort=False, as_index=False, dropna=False)["usd"].sum(min_count=1)[PURCHASE_COLUMNS]

    def scenario_rows(self) -> list[dict[str, Any]]:
        rows = []
        for k, scenario in enumerate(self.scenarios):
            plan = self.hedged[k].plan
            row = {"scenario": scenario.name, "probability": scenario.probability,
                   "hedged_usd": _cost(self.hedged[k]), "hedged_bound_usd": plan.bound_usd if plan else None,
                   "hedged_status": plan.status.value if plan else self.hedged[k].kind.value,
                   "unmet_pflops_hours": plan.unmet_pflops_hours if plan and plan.has_plan else None,
                   "short_eflop": plan.short_eflop if plan and plan.has_plan else None}
            if self.base_held is not None:
                row["base_held_usd"] = _cost(self.base_held[k])
                row["foresight_usd"] = _cost(self.foresight[k])
                row["foresight_bound_usd"] = _bound(self.foresight[k])
                if row["base_held_usd"] is not None and row["foresight_usd"] is not None:
                    row["base_regret_usd"] = row["base_held_usd"] - row["foresight_usd"]
                if row["hedged_usd"] is not None and row["foresight_usd"] is not None:
                    row["hedged_regret_usd"] = row["hedged_usd"] - row["foresight_usd"]
            rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """hedge.json."""
        out = {
            "instance": self.instance, "method": self.method, "method_reason": self.method_reason,
            "risk": self.risk.model_dump(), "chosen_from": self.chosen_from, "ok": self.ok,
            "objective_usd": self.objective_usd, "bound_usd": self.bound_usd, "gap": self.gap,
            "first_stage": self.first_stage, "purchases": self.purchases,
            "scenarios": self.scenario_rows(), "seconds": round(self.seconds, 3), "notes": self.notes,
        }
        if self.base_held is not None:
            out["base_case"] = {"objective_usd": _risk_of(self.base_held, self.probabilities, self.risk),
                                "purchases": self.base.plan.first_stage if self.base and self.base.plan else None}
            out["foresight_usd"] = _risk_of(self.foresight, self.probabilities, self.risk)
            out["vss_usd"] = self.vss_usd.as_dict() if self.vss_usd else None
            out["evpi_usd"] = self.evpi_usd.as_dict() if self.evpi_usd else None
        return out

    def write(self, directory: str | Path) -> Path:
        """purchases.csv, hedge.json and ``scenarios/<name>/`` (the plan files and the scenario's
        ``instance.yaml``, for ``chipmix check``), all at once: nothing half-way."""
        if not all(outcome.plan is not None and outcome.plan.has_plan for outcome in self.hedged):
            raise ChipmixError("no hedge to write: a scenario has no plan")
        directory = Path(directory)
        staging = staging_folder(directory)
        try:
            self.purchase_table().to_csv(staging / "purchases.csv", index=False)
            (staging / "hedge.json").write_text(json.dumps(self.summary(), indent=2, default=_json) + "\n")
            for scenario, instance, outcome in zip(self.scenarios, self.instances, self.hedged):
                folder = staging / "scenarios" / scenario.name
                outcome.plan.write(folder)
                data = instance.model_dump(mode="json", exclude_none=True)
                (folder / "instance.yaml").write_text(yaml.safe_dump(data, sort_keys=False, width=110))
            replace_folder(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory


def _json(value):
    if isinstance(value, float) and not np.isfinite(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def _cost(outcome: Outcome | None) -> float | None:
    plan = outcome.plan if outcome else None
    return plan.objective_usd if plan is not None and plan.has_plan else None


def _bound(outcome: Outcome | None) -> float | None:
    plan = outcome.plan if outcome else None
    return plan.bound_usd if plan is not None and plan.bound_usd is not None and plan.has_plan else None


def _risk_of(outcomes, probabilities, risk, pick=_cost) -> float | None:
    values = [pick(o) for o in outcomes]
    return None if any(v is None for v in values) else risk_value(np.array(values), probabilities, risk)


def scenario_instances(instance: Instance, scenarios: list[Scenario]) -> list[Instance]:
    return [instance if scenario.name == "base" and not scenario.changes else apply_scenario(instance, scenario)
            for scenario in scenarios]


def choose_method(method: str, instances: list[Instance]) -> tuple[str, str]:
    if method not in METHODS:
        raise ChipmixError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    if method != "auto":
        return method, "asked for"
    from optimizer.model.build import build_model
    from optimizer.model.data import build_model_data

    columns = build_model(build_model_data(instances[0])).n_cols * len(instances)
    if columns <= EXTENSIVE_MAX_COLUMNS:
        return "extensive", f"{columns:,} columns in all <= {EXTENSIVE_MAX_COLUMNS:,}: one model"
    return "l-shaped", f"{columns:,} columns in all > {EXTENSIVE_MAX_COLUMNS:,}: scenario subproblems"


def _extensive(instances, names, probabilities, risk, options) -> tuple[dict[str, float] | None, dict[str, Any]]:
    from optimizer.model.build import build_model
    from optimizer.model.data import build_model_data
    from optimizer.solvers.backends import get_backend

    started = time.perf_counter()
    models = [build_model(build_model_data(instance)) for instance in instances]
    ef = extensive_form(models, names, probabilities, risk)
    result = get_backend("highs").solve(ef.model, options.model_copy(update={"engine": "highs", "method": "direct"}))
    figures = {"method": "extensive", "status": result.status.value, "objective_usd": result.objective,
               "bound_usd": result.bound, "gap": result.gap, "columns": ef.model.n_cols, "rows": ef.model.n_rows,
               "seconds": round(time.perf_counter() - started, 3)}
    if not result.status.has_plan:
        return None, figures
    values = result.values[: len(ef.labels)]
    integer = ef.model.col_integer[: len(ef.labels)]
    return {k: float(np.rint(v)) if i else float(v) for k, v, i in zip(ef.labels, values, integer)}, figures


def hedge(instance: Instance, scenarios: list[Scenario], risk: Risk | None = None, options: SolveOptions | None = None,
          *, method: str = "auto", workers: int | None = None, cluster: str | None = None, references: bool = True,
          first_stage_time_limit_s: float | None = None, on_event: Callable[[str], None] | None = None,
          **overrides) -> HedgeResult:
    """Choose purchases for every scenario at once (see the module docstring).  ``scenarios``:
    validated by :func:`~optimizer.analyses.scenarios.hedge_scenarios_from_data` (probabilities).
    ``options.time_limit_s`` limits each scenario's solve, and the first stage as a whole unless
    ``first_stage_time_limit_s`` says otherwise."""
    started = time.perf_counter()
    risk = risk or Risk()
    options = solve_options(options, **overrides)
    tell = on_event or (lambda text: None)

    def say(text: str) -> None:
        tell(f"{time.perf_counter() - started:7.1f} s  {text}")
    workers = workers or default_workers(options.threads)
    if options.threads is None and (workers > 1 or cluster):
        options = options.model_copy(update={"threads": 1})  # parallelism comes from the workers
    instances = scenario_instances(instance, scenarios)
    names = [s.name for s in scenarios]
    probabilities = np.array([s.probability for s in scenarios], dtype=float)
    chosen, reason = choose_method(method, instances)
    first_limit = options.time_limit_s if first_stage_time_limit_s is None else first_stage_time_limit_s
    first_options = options.model_copy(update={"time_limit_s": first_limit})
    payloads = [i.model_dump(mode="json", exclude_none=True) for i in instances]
    dumped = options.model_dump()

    def tasks(fixed):
        return [{"instance": p, "name": n, "options": dumped, "fixed": fixed} for p, n in zip(payloads, names)]

    with TaskPool(min(workers, max(len(scenarios), 1)), cluster) as pool:
        say(f"first stage: {chosen} ({reason})")
        if chosen == "extensive":
            purchases, figures = _extensive(instances, names, probabilities, risk, first_options)
        else:
            key = hashlib.sha256("".join(i.sha256() for i in instances).encode()).hexdigest()[:16]
            outcome = l_shaped([{"key": f"{key}:{n}", "name": n, "instance": p} for p, n in zip(payloads, names)],
                               probabilities, risk, options, pool, time_limit_s=first_limit)
            purchases = outcome.purchases
            figures = {"method": "l-shaped", "status": outcome.stopped, "bound_usd": outcome.bound,
                       "lp_value_usd": outcome.lp_value, "rounds": outcome.rounds,
                       "seconds": round(outcome.seconds, 3), "history": outcome.history}
        if purchases is None:
            raise ChipmixError(f"the first stage found no purchases that serve every scenario "
                               f"({figures.get('status')}); solve the scenarios alone to see which cannot be served")
        say(f"playing {len(scenarios)} scenarios with the hedge's purchases")
        hedged = pool.results(_play, tasks(purchases))
        result = HedgeResult(instance.name, chosen, reason, risk, list(scenarios), instances, purchases, chosen,
                             hedged, None, figures.get("bound_usd"), figures)
        if references:
            say("references: the base case alone, each scenario alone, the base-case purchases in every scenario")
            alone = pool.results(_play, [{"instance": instance.model_dump(mode="json", exclude_none=True),
                                          "name": "base case", "options": dumped, "fixed": None}] + tasks(None))
            result.base, result.foresight = alone[0], alone[1:]
            if result.base.plan is not None and result.base.plan.has_plan:
                result.base_held = pool.results(_play, tasks(result.base.plan.first_stage))
            else:
                result.notes.append(f"the base case alone has no plan ({result.base.kind.value}): no VSS")
                result.base_held = [result.base] * len(scenarios)
    _conclude(result)
    result.seconds = time.perf_counter() - started
    return result


def _conclude(result: HedgeResult) -> None:
    """The hedge's value and bound, the candidate it keeps, VSS and EVPI with their ranges."""
    p, risk = result.probabilities, result.risk
    value = _risk_of(result.hedged, p, risk)
    if result.base_held is not None:
        base_value = _risk_of(result.base_held, p, risk)
        if base_value is not None and all(o.ok for o in result.base_held) and (value is None or base_value < value):
            theirs = "no plan in every scenario" if value is None else f"{value:,.2f} USD"
            result.notes.append(f"the base-case purchases play better than the {result.chosen_from}'s "
                                f"({base_value:,.2f} USD against {theirs}): the hedge keeps them")
            result.hedged, value = list(result.base_held), base_value
            result.purchases, result.chosen_from = dict(result.base.plan.first_stage), "base-case purchases"
        bounds = [result.bound_usd]
        foresight_low = _risk_of(result.foresight, p, risk, _bound)
        foresight_high = _risk_of(result.foresight, p, risk)
        if foresight_low is not None:
            bounds.append(foresight_low)  # no purchase beats foresight in any scenario
        result.bound_usd = max(b for b in bounds if b is not None) if any(b is not None for b in bounds) else None
        base_low = _risk_of(result.base_held, p, risk, _bound)
        if value is not None and base_value is not None and result.bound_usd is not None and base_low is not None:
            result.vss_usd = Interval(base_value - value, base_low - value, base_value - result.bound_usd)
        if value is not None and foresight_high is not None and result.bound_usd is not None:
            result.evpi_usd = Interval(value - foresight_high, result.bound_usd - foresight_high, value - foresight_low)
    result.objective_usd = value
    if value is not None and result.bound_usd is not None and result.bound_usd > value + 1e-6 * max(1.0, abs(value)):
        # A plan that every scenario's checker passed costs less than the proven bound: the bound
        # is wrong, so nothing here can be trusted.  Never a silent wrong answer.
        raise ChipmixError(f"internal error: the hedge's bound {result.bound_usd:,.2f} USD is above a checked plan's "
                           f"value {value:,.2f} USD; please report this instance and scenario file")
