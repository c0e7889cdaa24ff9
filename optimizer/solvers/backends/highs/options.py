"""HiGHS options, chosen once: from :class:`~optimizer.solvers.options.SolveOptions`, and the strict
tolerances the decomposition holds its own plans to."""

from __future__ import annotations

import highspy

from optimizer.solvers.options import SolveOptions

#: HiGHS accepts rows violated by up to 1e-6 (after its scaling): on a campus of thousands of kW
#: that can be more than the checker allows.  The plans the decomposition builds are held tighter.
STRICT_TOLERANCES = {"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9}


def highs_options(options: SolveOptions) -> dict:
    """HiGHS's options by name for a solve of the whole model (the time limit is the caller's:
    a worker process is given a deadline instead)."""
    chosen = {"output_flag": bool(options.verbose), "mip_rel_gap": float(options.mip_rel_gap),
              "random_seed": int(options.random_seed)}
    if options.threads is not None:
        chosen["threads"] = int(options.threads)
    return chosen


def apply_options(highs: highspy.Highs, chosen: dict) -> None:
    for name, value in chosen.items():
        highs.setOptionValue(name, value)
