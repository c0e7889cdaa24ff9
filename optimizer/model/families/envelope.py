"""The compute envelope: one budget over the horizon, and floors per category.

- ``envelope_budget``: every column's spend (its spend cost terms: usage, reservations, energy,
  blocks, commitments, fixed, certificates, carbon, contract shortfall) <= budget_usd.  With a
  budget, a service with revenue_usd_per_mtok prices its unserved tokens at the paying revenue
  they lose (model/data.py), so the objective (spend + revenue lost + the other penalties) serves
  the most revenue the budget can buy.
- ``envelope_floor[category]``: the category's ``compute_eflop`` >= eflop, or >= share x the
  compute of every workload.  Hard: in the diagnostic model ``floor_slack[category]`` says by how
  much no plan within the budget can meet it.
"""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    COMPUTE_EFLOP, ELASTIC_SLACK_COST, Binding, BuildContext, ConstraintFamily, Rows, ShadowPrice, Shortfall, Terms,
    Variable, row_worth,
)
from optimizer.model.families.inference_demand import SLACK_TOLERANCE

ENVELOPE_BUDGET = Rows("envelope_budget", (), "<=", "sum of every column's spend <= budget_usd")
ENVELOPE_FLOOR = Rows("envelope_floor", ("category",), ">=",
                      "compute_eflop of the category (- share x compute_eflop of all) + floor_slack >= eflop (or 0)")
FLOOR_SLACK = Variable("floor_slack", ("category",), integer=False, hourly=False, covered_by=ENVELOPE_FLOOR.name,
                       doc="EFLOP a category's floor falls short (diagnostic model only)")
#: Spend within this share of the budget has used it up.
BUDGET_FULL = 1e-6


class EnvelopeFamily(ConstraintFamily):
    name = "envelope"
    doc = "a budget over the horizon for all spend, and the least compute each category gets"
    elastic = (FLOOR_SLACK,)
    rows = (ENVELOPE_BUDGET, ENVELOPE_FLOOR)
    couples_hours = "the budget and the floors sum over every hour"

    def add_elastic(self, ctx: BuildContext) -> None:
        e = ctx.data.economics
        ctx.add_variables(FLOOR_SLACK, (e.floor_category,), lower=0.0, upper=np.inf, cost=ELASTIC_SLACK_COST,
                          elastic=True)

    def add_rows(self, ctx: BuildContext) -> None:
        e = ctx.data.economics
        spend = ctx.spend_terms() if e.has_budget else Terms.concat([], 0)  # no budget: no row
        ctx.add_rows(ENVELOPE_BUDGET, (), rows_of=np.zeros(len(spend.column), dtype=np.int64), cols=spend.column,
                     vals=spend.coefficient, lower=-np.inf, upper=e.budget_usd)
        compute = ctx.terms(COMPUTE_EFLOP)
        category = e.workload_category[compute.coords[0]]
        rows, cols, vals = [], [], []
        for r, c in enumerate(e.floor_category):
            share = 0.0 if np.isnan(e.floor_share[r]) else float(e.floor_share[r])
            weight = (category == c).astype(float) - share  # own compute, less the share of all
            k = np.nonzero(weight)[0]
            rows.append(np.full(len(k), r))
            cols.append(compute.column[k])
            vals.append(compute.coefficient[k] * weight[k])
        slack = ctx.block(FLOOR_SLACK)
        if slack is not None and slack.size:
            rows.append(np.arange(slack.size))
            cols.append(slack.start + np.arange(slack.size))
            vals.append(np.ones(slack.size))
        empty = [np.zeros(0, dtype=np.int64)]
        ctx.add_rows(ENVELOPE_FLOOR, (e.floor_category,), rows_of=np.concatenate(rows + empty),
                     cols=np.concatenate(cols + empty), vals=np.concatenate(vals + [np.zeros(0)]),
                     lower=np.nan_to_num(e.floor_eflop, nan=0.0), upper=np.inf)

    def shortfalls(self, data, model, values):
        fam = model.variables.get(FLOOR_SLACK.name)
        if fam is None:
            return []
        e = data.economics
        budget = f" within budget_usd {e.budget_usd:,.2f}" if e.has_budget else ""
        out = []
        for r, c in enumerate(fam.coords[0]):
            slack = float(values[fam.start + r])
            if slack <= SLACK_TOLERANCE:
                continue
            category = e.category_ids[c]
            path = f"envelope.floors.{category}"
            floor = (f"{e.floor_eflop[r]:,.6g} EFLOP" if np.isfinite(e.floor_eflop[r])
                     else f"{e.floor_share[r]:.0%} of all compute")
            out.append(Shortfall(
                category, "floor", [], slack, path,
                f"{path}: no plan{budget} gives {category} its floor of {floor} (short by {slack:,.6g} EFLOP)",
                unserved_eflop=slack))
        return out

    def full(self, data, model, values, pool_hours):
        fam = model.constraints.get(ENVELOPE_BUDGET.name)
        if fam is None or fam.size == 0:
            return []
        spent = float((model.matrix @ values)[fam.start])
        budget = data.economics.budget_usd
        if spent < budget * (1 - BUDGET_FULL):
            return []
        return [Binding("envelope", 0, f"envelope_budget (all {budget:,.2f} USD spent)")]

    def shadow_prices(self, data, model, worth):
        """The budget: revenue (and penalty) one more USD of budget would win, USD per USD; a
        floor: USD per EFLOP."""
        out = []
        fam, value = row_worth(model, ENVELOPE_BUDGET.name, worth)
        if fam is not None and fam.size:
            out.append(ShadowPrice(ENVELOPE_BUDGET.name, "budget", None, float(value[0]), "USD/USD"))
        fam, value = row_worth(model, ENVELOPE_FLOOR.name, worth)
        if fam is not None:
            out += [ShadowPrice(ENVELOPE_FLOOR.name, data.economics.category_ids[c], None, float(x), "USD/EFLOP")
                    for c, x in zip(fam.coords[0], value)]
        return out


FAMILY = EnvelopeFamily()
