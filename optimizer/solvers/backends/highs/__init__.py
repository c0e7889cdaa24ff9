"""HiGHS, in one package: options and tolerances (:mod:`.options`), status mapping (:mod:`.status`),
array loading and model files (:mod:`.arrays`), the in-process backend (:mod:`.backend`), the
worker process killed at its deadline (:mod:`.worker`), and the hour decomposition
(:mod:`.decompose`, the backend's ``decompose`` method)."""

from optimizer.solvers.backends.highs.arrays import write_model_file
from optimizer.solvers.backends.highs.backend import HighsBackend

__all__ = ["HighsBackend", "write_model_file"]
