"""A hedge's objective over scenario costs: expected cost, or (1 - w) x expected + w x CVaR_alpha.

CVaR_alpha is the mean cost of the worst 1 - alpha of the probability (Rockafellar and Uryasev):
min over eta of eta + E[(cost - eta)+] / (1 - alpha), whose minimum sits at the alpha-quantile.
The same definition is written into the extensive form and the L-shaped master as rows; here it is
evaluated on numbers, for plans and bounds.  Both are monotone in every scenario's cost, so a
vector of lower bounds gives a lower bound and a vector of plan costs the plans' value.
"""

from __future__ import annotations

import numpy as np

from optimizer.analyses.scenarios import Risk


def cvar(costs, probabilities, alpha: float) -> float:
    """Mean of the worst ``1 - alpha`` of the distribution (an atom split where the tail ends)."""
    c = np.asarray(costs, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    tail = 1.0 - alpha
    order = np.argsort(-c, kind="stable")
    taken, total = 0.0, 0.0
    for k in order:
        share = min(p[k], tail - taken)
        if share <= 0:
            break
        total += share * c[k]
        taken += share
    return total / tail


def risk_value(costs, probabilities, risk: Risk) -> float:
    """The hedge objective of one cost per scenario."""
    expected = float(np.dot(probabilities, costs))
    if risk.cvar_weight == 0:
        return expected
    return (1 - risk.cvar_weight) * expected + risk.cvar_weight * cvar(costs, probabilities, risk.cvar_alpha)
