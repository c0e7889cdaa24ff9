"""Single-site training runs: ``site_choice[workload,site]`` (1: the run uses that site),
``single_site_choice[workload]``: at most one site, and ``single_site_link[workload,pool,hour]``:
blocks at a site not chosen are 0."""

from __future__ import annotations

import numpy as np

from optimizer.model.families.allocation import BLOCKS
from optimizer.model.families.base import BuildContext, ConstraintFamily, Rows, Variable, group

SITE_CHOICE = Variable("site_choice", ("workload", "site"), integer=True, hourly=False,
                       doc="1 if a single-site training run uses that site")
SINGLE_SITE_CHOICE = Rows("single_site_choice", ("workload",), "<=", "sum over sites of site_choice <= 1")
SINGLE_SITE_LINK = Rows("single_site_link", ("workload", "pool", "hour"), "<=",
                        "blocks - max_blocks x site_choice[workload, site of the pool] <= 0")


class SingleSite(ConstraintFamily):
    name = "single_site"
    doc = "a single_site training run uses the pools of one site only"
    variables = (SITE_CHOICE,)
    rows = (SINGLE_SITE_CHOICE, SINGLE_SITE_LINK)
    couples_hours = "site_choice[workload,site] is one decision for every hour of the run"

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        single = d.training_single_site[d.alloc_workload]
        (w, s), _ = group(d.alloc_workload[single], d.pool_site[d.alloc_pool[single]])
        fam = ctx.add_variables(SITE_CHOICE, (w, s), lower=0.0, upper=1.0, cost=0.0)
        column = np.full((len(d.workload_ids), len(d.site_ids)), -1, dtype=np.int64)
        column[w, s] = fam.start + np.arange(fam.size)
        ctx.own(self)["column"] = column

    def add_rows(self, ctx: BuildContext) -> None:
        d = ctx.data
        fam = ctx.block(SITE_CHOICE)
        (w,), row = group(fam.coords[0])
        ctx.add_rows(SINGLE_SITE_CHOICE, (w,), rows_of=row, cols=fam.start + np.arange(fam.size),
                     vals=np.ones(fam.size), lower=-np.inf, upper=1.0)
        k = np.nonzero(d.training_single_site[d.alloc_workload])[0]
        choice_col = ctx.own(self)["column"][d.alloc_workload[k], d.pool_site[d.alloc_pool[k]]]
        n = len(k)
        ctx.add_rows(
            SINGLE_SITE_LINK, (d.alloc_workload[k], d.alloc_pool[k], d.alloc_hour[k]),
            rows_of=np.concatenate([np.arange(n), np.arange(n)]),
            cols=np.concatenate([ctx.block(BLOCKS).start + k, choice_col]),
            vals=np.concatenate([np.ones(n), -d.alloc_max_blocks[k].astype(float)]),
            lower=-np.inf, upper=0.0,
        )

    def fix_from_lp(self, model, lp_values, lower, upper) -> None:
        """Each single-site run at the site the LP uses most."""
        fam = model.variables.get(SITE_CHOICE.name)
        if fam is None:
            return
        for w in np.unique(fam.coords[0]):
            pick_one(fam, w, lp_values, lower, upper, run=True)


def pick_one(fam, w: int, lp_values: np.ndarray, lower: np.ndarray, upper: np.ndarray, run: bool) -> None:
    """Fix one workload's 0/1 choices in ``fam``: all 0, or (``run``) the LP's largest at 1."""
    members = fam.start + np.nonzero(fam.coords[0] == w)[0]
    lower[members] = upper[members] = 0.0
    if run:
        best = members[np.argmax(lp_values[members])]
        lower[best] = upper[best] = 1.0


FAMILY = SingleSite()
