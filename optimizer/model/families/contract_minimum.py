"""Take-or-pay minimums (the neocloud contract shape): ``contract_minimum[contract]``:
``contract_shortfall + what the matching pools bill over the horizon >= min_usd``, where a pool
bills its usage at its rate on chips no commitment covers, its reserved fee and its capacity-block
fees (energy and commitment fees do not count).  The shortfall is paid."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.base import (
    BILLED_USD, POOL_BLOCKS, BuildContext, ConstraintFamily, CostTerm, Rows, Variable,
)

CONTRACT_SHORTFALL_USD = CostTerm("contract_shortfall", "what a take-or-pay contract's pools billed below its min_usd")
CONTRACT_SHORTFALL = Variable(
    "contract_shortfall", ("contract",), integer=False, hourly=False, cost=(CONTRACT_SHORTFALL_USD,),
    covered_by="contract_minimum", doc="USD a contract's minimum exceeds what its pools billed (paid anyway)",
)
CONTRACT_MINIMUM = Rows(
    "contract_minimum", ("contract",), ">=",
    "contract_shortfall + usage, reserved and block fees billed by the contract's pools >= min_usd",
)


class ContractMinimum(ConstraintFamily):
    name = "contract_minimum"
    doc = CONTRACT_MINIMUM.doc
    variables = (CONTRACT_SHORTFALL,)
    rows = (CONTRACT_MINIMUM,)
    cost_terms = (CONTRACT_SHORTFALL_USD,)
    couples_hours = "a contract's minimum sums what its pools bill over every hour of the horizon"

    def add_variables(self, ctx: BuildContext) -> None:
        i = ctx.data.instruments
        n = len(i.contract_ids)
        fam = ctx.add_variables(CONTRACT_SHORTFALL, (np.arange(n),), lower=0.0, upper=i.contract_min_usd,
                                cost=np.ones(n), cost_terms={CONTRACT_SHORTFALL_USD: np.ones(n)})
        ctx.own(self)["columns"] = fam.start + np.arange(n)

    def add_rows(self, ctx: BuildContext) -> None:
        d, i = ctx.data, ctx.data.instruments
        columns = ctx.own(self)["columns"]
        # What each pool bills: its rate on the chips in use (rented pools), and the fees and
        # covered usage other families add to BILLED_USD.
        used = ctx.terms(POOL_BLOCKS)
        used = used.where(~d.pool_reserved[used.coords[0]])
        pool_of_use = used.coords[0]
        billed = ctx.terms(BILLED_USD)
        pool = np.concatenate([pool_of_use, billed.coords[0]])
        column = np.concatenate([used.column, billed.column])
        usd = np.concatenate([used.coefficient * d.pool_block[pool_of_use] * d.pool_usd_per_chip_hour[pool_of_use],
                              billed.coefficient])
        order = np.argsort(pool, kind="stable")
        bounds = np.searchsorted(pool[order], np.arange(len(d.pool_ids) + 1))
        rows_of, cols, vals = [np.arange(len(columns))], [columns], [np.ones(len(columns))]
        for k, p in zip(i.billed_contract, i.billed_pool):
            members = order[bounds[p]:bounds[p + 1]]
            rows_of.append(np.full(len(members), k))
            cols.append(column[members])
            vals.append(usd[members])
        ctx.add_rows(CONTRACT_MINIMUM, (np.arange(len(columns)),), rows_of=np.concatenate(rows_of),
                     cols=np.concatenate(cols), vals=np.concatenate(vals), lower=i.contract_min_usd, upper=np.inf)


FAMILY = ContractMinimum()
