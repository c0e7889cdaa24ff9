"""purchases.csv and coverage.csv as facts: what was bought (capacity blocks, commitment levels,
contract shortfalls) and which usage each commitment paid for.  The rules of the three families
(block_capacity, commitment_cover, contract_minimum) check them."""

from __future__ import annotations

from optimizer.plans.checker.facts import Facts, whole

#: purchases.csv ``kind`` of each instrument, and the unit its quantity is in.
BLOCK_KIND, CONTRACT_KIND = "capacity_block", "contract"
UNITS = {"capacity_block": "chips", "spend": "usd_per_hour", "usage": "chips", "contract": "usd"}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def read_purchases(facts: Facts, rows: list[dict[str, str]]) -> None:
    violations = facts.violations
    offers = {offer.id: offer for offer in facts.instance.capacity_blocks}
    commitments = {c.id: c for c in facts.instance.commitments}
    contracts = {c.id: c for c in facts.instance.contracts}
    for row in rows:
        where = f"purchases.csv line {row['_line']}"
        kind, instrument = row["kind"], row["instrument"]
        start, quantity, usd = whole(row["start_hour"]), _number(row["quantity"]), _number(row["usd"])
        expected_kind = (BLOCK_KIND if instrument in offers else commitments[instrument].kind if instrument in commitments
                         else CONTRACT_KIND if instrument in contracts else None)
        if expected_kind is None:
            violations.append(f"{where}: unknown instrument {instrument!r}")
            continue
        if kind != expected_kind:
            violations.append(f"{where}: {instrument!r} is a {expected_kind} instrument, the row says {kind!r}")
            continue
        if row["unit"] != UNITS[kind]:
            violations.append(f"{where}: a {kind} purchase is in {UNITS[kind]}, the row says {row['unit']!r}")
            continue
        if start is None or quantity is None or quantity < 0 or usd is None:
            violations.append(f"{where}: start_hour must be a whole hour and quantity, usd numbers >= 0")
            continue
        table, key = ((facts.block_purchases, (instrument, start)) if kind == BLOCK_KIND
                      else (facts.purchases, instrument))
        if key in table:
            violations.append(f"{where}: {instrument!r} at start_hour {start} listed twice")
            continue
        table[key] = (kind, start, quantity, usd, where)


def read_coverage(facts: Facts, rows: list[dict[str, str]]) -> None:
    violations = facts.violations
    commitments = {c.id: c for c in facts.instance.commitments}
    for row in rows:
        where = f"coverage.csv line {row['_line']}"
        hour, chips = whole(row["hour"]), _number(row["chips"])
        commitment, pool = commitments.get(row["commitment"]), facts.pools.get(row["pool"])
        if commitment is None:
            violations.append(f"{where}: unknown commitment {row['commitment']!r}")
        elif pool is None:
            violations.append(f"{where}: unknown pool {row['pool']!r}")
        elif hour is None or not 0 <= hour < facts.hours:
            violations.append(f"{where}: hour {row['hour']!r} is not an hour of the horizon")
        elif chips is None or chips < 0:
            violations.append(f"{where}: chips must be a number >= 0, got {row['chips']!r}")
        elif commitment.kind == "usage" and chips != int(chips):
            violations.append(f"{where}: a usage commitment covers whole chips, got {chips:g}")
        elif (commitment.id, pool.id, hour) in facts.coverage:
            violations.append(f"{where}: ({commitment.id}, {pool.id}, {hour}) listed twice")
        else:
            facts.coverage[(commitment.id, pool.id, hour)] = chips
