"""Checks of the economics fields (docs/formulation.md, "Economics"): token demand, prices,
routing variants and the envelope.  Each problem has a field path and a fix-it hint."""

from __future__ import annotations

from optimizer.errors import FieldError
from optimizer.input.schema import InferenceWorkload, Instance

#: Shares are floats from a file: sums within this of 1 are 1.
SHARE_TOLERANCE = 1e-9


def check_economics(instance: Instance, workload_paths: list[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    for workload, path in zip(instance.workloads, workload_paths):
        if isinstance(workload, InferenceWorkload):
            errors += _service_problems(workload, path)
    errors += _envelope_problems(instance)
    return errors


def _service_problems(w: InferenceWorkload, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    given = [name for name in ("demand_pflops", "demand_tokens_per_s") if getattr(w, name) is not None]
    if len(given) != 1:
        errors.append(FieldError(
            path, "needs exactly one of demand_pflops and demand_tokens_per_s" + (", got both" if given else ""),
            "give the demand in PFLOP/s, or in tokens per second with flop_per_token (or model_params_b)"))
    if w.flop_per_token is not None and w.model_params_b is not None:
        errors.append(FieldError(f"{path}.model_params_b", "give flop_per_token or model_params_b, not both",
                                 "model_params_b means 2 x params FLOP per token"))
    for name in ("demand_tokens_per_s", "revenue_usd_per_mtok"):
        if getattr(w, name) is not None and w.tokens_flop() is None:
            errors.append(FieldError(f"{path}.{name}", "tokens need a FLOP per token to become compute",
                                     "give flop_per_token or model_params_b (or variants)"))
    seen: set[str] = set()
    for k, variant in enumerate(w.variants):
        vpath = f"{path}.variants[{k}]({variant.id})"
        if variant.id in seen:
            errors.append(FieldError(f"{vpath}.id", f"duplicate variant id {variant.id!r}", "give each its own id"))
        seen.add(variant.id)
        if (variant.flop_per_token is None) == (variant.model_params_b is None):
            errors.append(FieldError(vpath, "needs exactly one of flop_per_token and model_params_b",
                                     "model_params_b means 2 x params FLOP per token"))
        if variant.min_share > variant.max_share:
            errors.append(FieldError(f"{vpath}.min_share", f"min_share {variant.min_share:g} is above max_share "
                                     f"{variant.max_share:g}", "lower min_share or raise max_share"))
    if w.variants:
        low = sum(v.min_share for v in w.variants)
        high = sum(v.max_share for v in w.variants)
        if low > 1 + SHARE_TOLERANCE:
            errors.append(FieldError(f"{path}.variants", f"the min_share values add up to {low:g}, more than 1",
                                     "lower them: the shares of an hour's tokens add up to 1"))
        if high < 1 - SHARE_TOLERANCE:
            errors.append(FieldError(f"{path}.variants", f"the max_share values add up to {high:g}, less than 1",
                                     "raise them: every token served goes to some variant"))
    return errors


def _envelope_problems(instance: Instance) -> list[FieldError]:
    envelope = instance.envelope
    if envelope is None:
        return []
    errors: list[FieldError] = []
    categories = {w.category for w in instance.workloads}
    shares = 0.0
    for category, floor in envelope.floors.items():
        path = f"envelope.floors.{category}"
        if (floor.eflop is None) == (floor.share is None):
            errors.append(FieldError(path, "needs exactly one of eflop and share",
                                     "eflop: the least EFLOP over the horizon; share: of all compute delivered"))
        if category not in categories:
            errors.append(FieldError(path, f"no workload has category {category!r}",
                                     f"set category on the workloads it means (categories here: "
                                     f"{', '.join(sorted(categories))})"))
        shares += floor.share or 0.0
    if shares > 1 + SHARE_TOLERANCE:
        errors.append(FieldError("envelope.floors", f"the share floors add up to {shares:g}, more than 1",
                                 "lower them: they are shares of one total"))
    if envelope.budget_usd is None and not envelope.floors:
        errors.append(FieldError("envelope", "an envelope needs budget_usd or floors", "give one, or drop envelope"))
    return errors
