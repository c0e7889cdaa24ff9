"""Buying under uncertainty: one set of purchases for every scenario (``chipmix hedge``)."""

from optimizer.analyses.hedge.run import METHODS, HedgeResult, hedge

__all__ = ["METHODS", "HedgeResult", "hedge"]
