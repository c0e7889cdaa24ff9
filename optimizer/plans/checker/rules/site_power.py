"""``site_power[site,hour]``: facility power (chips x power_kw x PUE) at a capped site <= its cap."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, at, exceeds


def check(facts: Facts) -> None:
    for (site_id, hour), draw_kw in sorted(facts.site_hour_kw.items()):
        cap = facts.sites[site_id].power_cap_mw
        if cap is not None and exceeds(draw_kw, 1000 * at(cap, hour)):
            facts.violations.append(
                f"site_power[{site_id},{hour}]: draws {draw_kw / 1000:.6g} MW, cap {at(cap, hour):.6g} MW")
