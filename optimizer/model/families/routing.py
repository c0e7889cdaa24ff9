"""Model routing: a routed service's tokens go to its variants (a flagship, a draft), the share
of each chosen per hour.

``routed_pflops[variant,hour]`` is the service's demand (reference PFLOP/s, model/economics.py)
the variant serves in the hour: it adds to the service's ``served_pflops``, so the service's
``inference_demand`` row counts it.  Three row families tie it down:

- ``variant_compute[variant,hour]``: the variant's chips (``variant_pflops``) cover what it serves
  at its FLOP per token: variant_pflops - ratio x routed_pflops >= 0;
- ``routing_min_share[variant,hour]``: routed_pflops - min_share x the service's routed total >= 0
  (only where min_share > 0);
- ``routing_max_share[variant,hour]``: max_share x the service's routed total - routed_pflops >= 0
  (only where max_share < 1).
"""

from __future__ import annotations

import numpy as np

from optimizer.model.economics import routed_served, routing_shares
from optimizer.model.families.base import (
    SERVED_PFLOPS, VARIANT_PFLOPS, BuildContext, ConstraintFamily, Rows, ShadowPrice, Variable, row_index, row_worth,
)

CPSAT_REFUSAL = ("routing shares are continuous decisions tied to chips and to each other; CP-SAT's grid "
                 "cannot round them one way safely (use --engine highs)")
VARIANT_COMPUTE = Rows("variant_compute", ("variant", "hour"), ">=",
                       "variant_pflops - ratio x routed_pflops >= 0", cpsat=CPSAT_REFUSAL)
ROUTING_MIN_SHARE = Rows("routing_min_share", ("variant", "hour"), ">=",
                         "routed_pflops - min_share x sum of the service's routed_pflops >= 0", cpsat=CPSAT_REFUSAL)
ROUTING_MAX_SHARE = Rows("routing_max_share", ("variant", "hour"), ">=",
                         "max_share x sum of the service's routed_pflops - routed_pflops >= 0", cpsat=CPSAT_REFUSAL)
ROUTED = Variable("routed_pflops", ("variant", "hour"), integer=False, decision=True,
                  doc="the service's demand (reference PFLOP/s) the variant serves in the hour")

def routed_cells(data) -> tuple[np.ndarray, np.ndarray]:
    """(variant, hour) of every variant in every hour its service has demand."""
    e = data.economics
    demand = data.inference_demand_pflops[e.variant_workload] > 0
    return np.nonzero(demand)


def _peers(key: np.ndarray) -> np.ndarray:
    """For each member, the members with the same key (itself included), as a [member, slot]
    matrix of member indices padded with -1."""
    if len(key) == 0:
        return np.zeros((0, 0), dtype=np.int64)
    _, group_of, counts = np.unique(key, return_inverse=True, return_counts=True)
    order = np.argsort(group_of, kind="stable")
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(key)) - np.repeat(first, counts)
    table = np.full((len(counts), int(counts.max())), -1, dtype=np.int64)
    table[group_of[order], slot] = order
    return table[group_of]


class Routing(ConstraintFamily):
    name = "routing"
    doc = "a routed service's tokens split between its variants, each variant's share within its bounds"
    variables = (ROUTED,)
    rows = (VARIANT_COMPUTE, ROUTING_MIN_SHARE, ROUTING_MAX_SHARE)

    def add_variables(self, ctx: BuildContext) -> None:
        d = ctx.data
        v, t = routed_cells(d)
        w = d.economics.variant_workload[v]
        fam = ctx.add_variables(ROUTED, (v, t), lower=0.0, upper=d.inference_demand_pflops[w, t], cost=0.0)
        ctx.contribute(SERVED_PFLOPS, (w, t), fam.start + np.arange(fam.size), np.ones(fam.size))

    def add_rows(self, ctx: BuildContext) -> None:
        d, e = ctx.data, ctx.data.economics
        fam = ctx.block(ROUTED)
        v, t = fam.coords
        columns = fam.start + np.arange(fam.size)
        row_of = row_index((len(e.variant_ids), d.hours), (v, t))
        chips = ctx.terms(VARIANT_PFLOPS)
        has_row = row_of[chips.coords] >= 0
        ctx.add_rows(VARIANT_COMPUTE, (v, t),
                     rows_of=np.concatenate([row_of[chips.coords][has_row], np.arange(fam.size)]),
                     cols=np.concatenate([chips.column[has_row], columns]),
                     vals=np.concatenate([chips.coefficient[has_row], -e.variant_ratio[v]]),
                     lower=0.0, upper=np.inf)
        # The service's routed total in the hour: every variant of the same service, same hour.
        peers = _peers(e.variant_workload[v] * d.hours + t)
        for rows, share, keep_where, sign in ((ROUTING_MIN_SHARE, e.variant_min_share, lambda s: s > 0, 1.0),
                                              (ROUTING_MAX_SHARE, e.variant_max_share, lambda s: s < 1, -1.0)):
            (k,) = np.nonzero(keep_where(share[v]))
            # Each kept member k gets its own row: sign x (routed_k - share_k x sum over its peers).
            member = peers[k]
            peer_row, peer_slot = np.nonzero(member >= 0)
            peer = member[peer_row, peer_slot]
            ctx.add_rows(rows, (v[k], t[k]),
                         rows_of=np.concatenate([np.arange(len(k)), peer_row]),
                         cols=np.concatenate([columns[k], columns[peer]]),
                         vals=np.concatenate([np.full(len(k), sign), -sign * share[v[k]][peer_row]]),
                         lower=0.0, upper=np.inf)

    def settle(self, data, model, values) -> None:
        """Each service-hour's routed total raised (shares kept) to what its variants' whole chips
        can serve, within demand: the plan's files count exactly that much served (the accounting
        counts it with the same ``routed_served``)."""
        fam = model.variables.get(ROUTED.name)
        if fam is None or fam.size == 0:
            return
        e = data.economics
        chips = model.expressions[VARIANT_PFLOPS]
        compute = np.zeros((len(e.variant_ids), data.hours))
        np.add.at(compute, chips.coords, chips.coefficient * np.rint(values[chips.column]))
        v, t = fam.coords
        share = routing_shares(e, len(data.workload_ids), data.hours, v, t, values[fam.slice])
        served = routed_served(e, share, compute, data.inference_demand_pflops)
        values[fam.slice] = share[v, t] * served[e.variant_workload[v], t]

    def shadow_prices(self, data, model, worth):
        """USD per PFLOP/s-hour of the variant's chips: what one more PFLOP/s of them would save."""
        fam, value = row_worth(model, VARIANT_COMPUTE.name, worth)
        if fam is None:
            return []
        return [ShadowPrice(VARIANT_COMPUTE.name, data.economics.variant_ids[v], int(t), float(x), "USD/PFLOP/s-hour")
                for v, t, x in zip(*fam.coords, value)]


FAMILY = Routing()
