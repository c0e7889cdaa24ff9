"""A plan as a FinOps FOCUS 1.2 cost and usage dataset: what a finance team loads beside its
cloud bills (``chipmix export focus``, ``GET /v1/solves/{id}/plan/focus.csv``).

One row per pool, workload and charge period (an hour or a day) in use, in FOCUS 1.2 columns,
plus chipmix's own as ``x_`` columns (workload, chip, vendor, chips, energy).  How chipmix's
pricing maps to FOCUS:

- owned and on-demand pools: ``PricingCategory`` Standard; spot: Dynamic.  ``BilledCost`` =
  ``EffectiveCost`` = ``ListCost`` = chip-hours x ``usd_per_chip_hour``.
- a reserved pool is a usage commitment (``CommitmentDiscountId`` = the pool,
  ``CommitmentDiscountCategory`` Usage, type Reservation): per period one ``Purchase`` row bills
  the chips held (``BilledCost``; its ``EffectiveCost`` is 0, amortised into usage), its usage
  rows are ``Committed`` with ``BilledCost`` 0 and ``EffectiveCost`` the used chip-hours at the
  pool's rate (``CommitmentDiscountStatus`` Used), and one row per period carries the unused
  chip-hours (Unused).
- a capacity-block purchase is a ``Purchase`` row (``One-Time``, in the period its block starts,
  ``CommitmentDiscountId`` = the offer, type Capacity Block, ``EffectiveCost`` 0); usage of the
  block pool is ``Committed`` at the blocks' rate in that period, and the chip-hours held but not
  used are an ``Unused`` row, so the blocks' fees are amortised over their hours.
- a commitment (spend or usage) bills its level in each period of its window as a ``Purchase``
  row (``CommitmentDiscountCategory`` Spend or Usage, ``EffectiveCost`` 0); the usage it covers
  (coverage.csv) is split off its pool's usage rows, pro rata over the workloads of that pool and
  period, as ``Committed`` rows at the committed rate (``CommitmentDiscountStatus`` Used), and
  what the level did not cover is an ``Unused`` row.
- a take-or-pay contract's shortfall is an ``Adjustment`` row in the last period.
- energy (chip power x PUE at the site's price) is chipmix's own term, in ``x_EnergyUsd`` and
  ``x_EnergyMwh`` on the usage rows, all of it at the grid price: where a site uses renewable
  energy at its own price, the difference (and certificates, and a carbon price) is in the plan's
  energy.csv and cost breakdown, not here (none is a provider's charge); unmet-demand penalties
  are not charges and are left out.

So the sums of ``BilledCost`` and of ``EffectiveCost`` are both the plan's compute bill: every
cost term but energy, penalty, restarts (a price on churn, not a charge), fixed (an owned
campus's own capital and hosting, not a provider's charge), certificates and carbon.

Charge periods start at the instance's ``start`` (UTC); an instance without one starts at
1970-01-01T00:00:00Z, and ``x_HourIndex`` gives the plan's own hour either way.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from optimizer.errors import FieldError, InputError
from optimizer.input.instruments import covered_pools
from optimizer.input.schema import Instance

FOCUS_VERSION = "1.2"
PERIODS = {"hour": 1, "day": 24}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: The columns written, in order: FOCUS 1.2 columns, then chipmix's own (x_).
COLUMNS = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodStart",
    "ChargePeriodEnd", "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
    "PricingCurrency", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName",
    "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId",
    "x_Workload", "x_Chip", "x_Vendor", "x_Chips", "x_HourIndex", "x_EnergyMwh", "x_EnergyUsd",
]
_PRICING = {"owned": "Standard", "on_demand": "Standard", "spot": "Dynamic", "reserved": "Committed",
            "capacity_block": "Committed"}


def _decimal(value: float) -> str:
    """FOCUS numeric format: a plain decimal, no exponent, no sign for positives."""
    text = f"{float(value):.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hourly(value, hour: int) -> float:
    return value[hour] if isinstance(value, tuple) else value


def _records(table: Any) -> list[dict[str, Any]]:
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


def focus_rows(instance: Instance, allocations: Any, reservations: Any, period: str = "hour",
               purchases: Any = (), coverage: Any = ()) -> list[dict[str, Any]]:
    """The FOCUS rows of a plan given as tables (DataFrames, or lists of dicts with the columns
    of allocations.csv, reservations.csv, purchases.csv and coverage.csv)."""
    if period not in PERIODS:
        raise InputError("--period", [FieldError("period", f"unknown charge period {period!r}", "use hour or day")])
    step = PERIODS[period]
    pools = {pool.id: pool for pool in instance.pools}
    sites = {site.id: site for site in instance.sites}
    chips = {chip.id: chip for chip in instance.chips}
    start = instance.start if instance.start is not None else _EPOCH
    # A start without a zone is UTC (astimezone would read it as the machine's local time).
    start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start.astimezone(timezone.utc)
    billing_start, billing_end = start, start + timedelta(hours=instance.hours)

    def bounds(first_hour: int) -> tuple[str, str]:
        end_hour = min(first_hour + step, instance.hours)
        return _stamp(start + timedelta(hours=first_hour)), _stamp(start + timedelta(hours=end_hour))

    # chip-hours and energy per (pool, workload, period), from whole chips in each hour
    use: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])  # chip-h, MWh, USD, peak
    used_per_pool_period: dict[tuple[str, int], float] = defaultdict(float)
    # A routed service has a row per variant on one pool and hour: one count per (pool, workload, hour).
    per_hour: dict[tuple[str, str, int], int] = defaultdict(int)
    for row in _records(allocations):
        per_hour[(row["pool"], row["workload"], int(row["hour"]))] += int(row["chips"])
    for (pool_id, workload_id, hour), count in per_hour.items():
        pool = pools[pool_id]
        site = sites[pool.site]
        first = hour - hour % step
        mwh = count * chips[pool.chip].power_kw * site.pue / 1000.0
        entry = use[(pool.id, workload_id, first)]
        entry[0] += count
        entry[1] += mwh
        entry[2] += mwh * _hourly(site.energy_usd_per_mwh, hour)
        entry[3] = max(entry[3], count)
        used_per_pool_period[(pool.id, first)] += count
    held = {row["pool"]: int(row["chips"]) for row in _records(reservations)}

    def base(pool, first_hour: int) -> dict[str, Any]:
        site, chip = sites[pool.site], chips[pool.chip]
        period_start, period_end = bounds(first_hour)
        reserved = pool.pricing == "reserved"
        return {
            "BillingAccountId": instance.name, "BillingAccountName": instance.name, "BillingCurrency": "USD",
            "BillingPeriodStart": _stamp(billing_start), "BillingPeriodEnd": _stamp(billing_end),
            "ChargeClass": None, "ChargePeriodStart": period_start, "ChargePeriodEnd": period_end,
            "CommitmentDiscountCategory": "Usage" if reserved else None,
            "CommitmentDiscountId": pool.id if reserved else None,
            "CommitmentDiscountName": pool.id if reserved else None,
            "CommitmentDiscountType": "Reservation" if reserved else None,
            "InvoiceIssuerName": site.cloud, "ProviderName": site.cloud, "PublisherName": site.cloud,
            "PricingCurrency": "USD", "PricingUnit": "Hours", "ConsumedUnit": "Hours",
            "RegionId": site.region, "RegionName": site.region, "ResourceId": pool.id, "ResourceName": pool.id,
            "ResourceType": "Accelerator", "ServiceCategory": "Compute", "ServiceName": f"{site.cloud} accelerators",
            "SkuId": f"{pool.chip}:{pool.pricing}", "SkuPriceId": pool.id,
            "ListUnitPrice": _decimal(pool.usd_per_chip_hour), "ContractedUnitPrice": _decimal(pool.usd_per_chip_hour),
            "x_Chip": chip.id, "x_Vendor": chip.vendor, "x_HourIndex": first_hour,
        }

    commitments = {c.id: c for c in instance.commitments}
    offers = {o.id: o for o in instance.capacity_blocks}
    # Chip-hours each commitment covers per (pool, period), and the blocks' chip-hours and fees per
    # (pool, period): the committed rates the usage rows below are priced at.
    covered: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in _records(coverage):
        hour = int(row["hour"])
        covered[(row["pool"], hour - hour % step)][row["commitment"]] += float(row["chips"])
    held_blocks: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])  # chip-hours, USD
    block_purchases = [row for row in _records(purchases) if row["kind"] == "capacity_block"]
    for row in block_purchases:
        offer = offers[row["instrument"]]
        chips_held, start_hour = int(float(row["quantity"])), int(row["start_hour"])
        for hour in range(start_hour, min(start_hour + offer.duration_hours, instance.hours)):
            entry = held_blocks[(offer.pool, hour - hour % step)]
            entry[0] += chips_held
            entry[1] += chips_held * offer.usd_per_chip_hour
    # Each block pool's CommitmentDiscountId: the offers it bought blocks of.
    block_ids = {pool_id: ",".join(sorted({r["instrument"] for r in block_purchases if offers[r["instrument"]].pool == pool_id}))
                 for pool_id in {offers[r["instrument"]].pool for r in block_purchases}}

    def committed_rate(commitment, pool) -> float:
        if commitment.kind == "spend":
            return (1 - commitment.discount) * pool.usd_per_chip_hour
        return commitment.usd_per_chip_hour

    def with_commitment(row: dict[str, Any], commitment_id: str, category: str, kind: str) -> dict[str, Any]:
        return {**row, "CommitmentDiscountId": commitment_id, "CommitmentDiscountName": commitment_id,
                "CommitmentDiscountCategory": category, "CommitmentDiscountType": kind}

    rows: list[dict[str, Any]] = []
    for (pool_id, workload, first), (chip_hours, mwh, energy_usd, peak) in sorted(use.items()):
        pool = pools[pool_id]
        committed = pool.pricing == "reserved"
        # The share of this pool-period's chip-hours each commitment paid for, pro rata over workloads.
        total = used_per_pool_period[(pool_id, first)]
        shares = {c: chips / total for c, chips in sorted(covered.get((pool_id, first), {}).items())} if total else {}
        own = 1.0 - sum(shares.values())
        usage_row = {
            **base(pool, first), "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{pool.chip} chips of {pool_id} for {workload}", "x_Workload": workload, "x_Chips": peak,
        }
        if pool.pricing == "capacity_block":
            held_chip_hours, fees = held_blocks.get((pool_id, first), (0.0, 0.0))
            rate = fees / held_chip_hours if held_chip_hours else 0.0
            usage_row = with_commitment(usage_row, block_ids.get(pool_id, ""), "Usage", "Capacity Block")
            billed, effective, status = chip_hours * pool.usd_per_chip_hour, chip_hours * (pool.usd_per_chip_hour + rate), "Used"
            usage_row["ContractedUnitPrice"] = _decimal(pool.usd_per_chip_hour + rate)
        else:
            cost = own * chip_hours * pool.usd_per_chip_hour
            billed, effective, status = (0.0 if committed else cost), cost, ("Used" if committed else None)
        if own > 1e-12:
            rows.append({
                **usage_row, "PricingCategory": _PRICING[pool.pricing], "PricingQuantity": _decimal(own * chip_hours),
                "ConsumedQuantity": _decimal(own * chip_hours), "BilledCost": _decimal(billed),
                "EffectiveCost": _decimal(effective), "ListCost": _decimal(own * chip_hours * pool.usd_per_chip_hour),
                "ContractedCost": _decimal(effective), "CommitmentDiscountStatus": status,
                "x_EnergyMwh": _decimal(own * mwh), "x_EnergyUsd": _decimal(own * energy_usd),
            })
        for commitment_id, share in shares.items():
            commitment = commitments[commitment_id]
            quantity = share * chip_hours
            rows.append({
                **with_commitment(usage_row, commitment_id, "Spend" if commitment.kind == "spend" else "Usage",
                                  f"{commitment.kind.capitalize()} Commitment"),
                "ChargeDescription": f"{pool.chip} chips of {pool_id} for {workload}, paid by {commitment_id}",
                "PricingCategory": "Committed", "PricingQuantity": _decimal(quantity), "ConsumedQuantity": _decimal(quantity),
                "BilledCost": "0", "EffectiveCost": _decimal(quantity * committed_rate(commitment, pool)),
                "ListCost": _decimal(quantity * pool.usd_per_chip_hour),
                "ContractedCost": _decimal(quantity * committed_rate(commitment, pool)),
                "CommitmentDiscountStatus": "Used", "ContractedUnitPrice": _decimal(committed_rate(commitment, pool)),
                "x_EnergyMwh": _decimal(share * mwh), "x_EnergyUsd": _decimal(share * energy_usd),
            })
    for pool_id, count in sorted(held.items()):
        pool = pools[pool_id]
        if count <= 0:
            continue
        for first in range(0, instance.hours, step):
            hours = min(step, instance.hours - first)
            held_hours = count * hours
            fee = held_hours * pool.usd_per_chip_hour
            rows.append({
                **base(pool, first), "ChargeCategory": "Purchase", "ChargeFrequency": "Recurring",
                "ChargeDescription": f"{count} reserved {pool.chip} chips of {pool_id}",
                "PricingCategory": "Standard", "PricingQuantity": _decimal(held_hours), "ConsumedQuantity": None,
                "ConsumedUnit": None, "BilledCost": _decimal(fee), "EffectiveCost": "0", "ListCost": _decimal(fee),
                "ContractedCost": _decimal(fee), "CommitmentDiscountStatus": None,
                "x_Workload": None, "x_Chips": count, "x_EnergyMwh": "0", "x_EnergyUsd": "0",
            })
            unused = held_hours - used_per_pool_period.get((pool_id, first), 0.0)
            if unused > 0:
                cost = unused * pool.usd_per_chip_hour
                rows.append({
                    **base(pool, first), "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
                    "ChargeDescription": f"unused reserved {pool.chip} chips of {pool_id}",
                    "PricingCategory": "Committed", "PricingQuantity": _decimal(unused), "ConsumedQuantity": "0",
                    "BilledCost": "0", "EffectiveCost": _decimal(cost), "ListCost": _decimal(cost),
                    "ContractedCost": _decimal(cost), "CommitmentDiscountStatus": "Unused",
                    "x_Workload": None, "x_Chips": count, "x_EnergyMwh": "0", "x_EnergyUsd": "0",
                })
    rows += _instrument_rows(instance, base, step, purchases, covered, held_blocks, block_ids, used_per_pool_period,
                             committed_rate, with_commitment)
    rows.sort(key=lambda r: (r["ChargePeriodStart"], r["ResourceId"], r["ChargeCategory"], r["x_Workload"] or "",
                             r["CommitmentDiscountId"] or ""))
    return rows


def _instrument_rows(instance, base, step, purchases, covered, held_blocks, block_ids, used_per_pool_period,
                     committed_rate, with_commitment) -> list[dict[str, Any]]:
    """Purchase rows of blocks and commitment levels, the Unused rows of both, and contract shortfalls."""
    pools = {pool.id: pool for pool in instance.pools}
    offers = {o.id: o for o in instance.capacity_blocks}
    rows: list[dict[str, Any]] = []
    quiet = {"ConsumedQuantity": None, "ConsumedUnit": None, "x_Workload": None, "x_EnergyMwh": "0", "x_EnergyUsd": "0"}
    for row in _records(purchases):
        kind, instrument = row["kind"], row["instrument"]
        if kind == "capacity_block":
            offer = offers[instrument]
            pool, start_hour, chips = pools[offer.pool], int(row["start_hour"]), int(float(row["quantity"]))
            rows.append({
                **with_commitment(base(pool, start_hour - start_hour % step), instrument, "Usage", "Capacity Block"),
                **quiet, "ChargeCategory": "Purchase", "ChargeFrequency": "One-Time",
                "ChargeDescription": f"capacity block of {chips} {pool.chip} chips for {offer.duration_hours} h from hour {start_hour}",
                "PricingCategory": "Standard", "PricingQuantity": _decimal(chips * offer.duration_hours),
                "BilledCost": _decimal(float(row["usd"])), "EffectiveCost": "0", "ListCost": _decimal(float(row["usd"])),
                "ContractedCost": _decimal(float(row["usd"])), "ContractedUnitPrice": _decimal(offer.usd_per_chip_hour),
                "ListUnitPrice": _decimal(offer.usd_per_chip_hour),
                "CommitmentDiscountStatus": None, "x_Chips": chips,
            })
    for (pool_id, first), (held, fees) in sorted(held_blocks.items()):
        unused = held - used_per_pool_period.get((pool_id, first), 0.0)
        if unused > 1e-9:
            pool = pools[pool_id]
            rate = fees / held
            rows.append({
                **with_commitment(base(pool, first), block_ids[pool_id], "Usage", "Capacity Block"), **quiet,
                "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
                "ChargeDescription": f"unused capacity-block {pool.chip} chips of {pool_id}",
                "PricingCategory": "Committed", "PricingQuantity": _decimal(unused), "ConsumedQuantity": "0",
                "BilledCost": "0", "EffectiveCost": _decimal(unused * rate), "ListCost": _decimal(unused * rate),
                "ContractedCost": _decimal(unused * rate), "CommitmentDiscountStatus": "Unused", "x_Chips": int(held),
                "ListUnitPrice": _decimal(rate), "ContractedUnitPrice": _decimal(rate),
            })
    levels = {row["instrument"]: float(row["quantity"]) for row in _records(purchases) if row["kind"] in ("spend", "usage")}
    commitments = {c.id: c for c in instance.commitments}
    paid_in: dict[tuple[str, int], float] = defaultdict(float)  # (commitment, period) -> USD at the committed rate
    for (pool_id, period), per in covered.items():
        for commitment_id, chips in per.items():
            paid_in[(commitment_id, period)] += chips * committed_rate(commitments[commitment_id], pools[pool_id])
    for commitment in instance.commitments:
        level = levels.get(commitment.id, 0.0)
        if level <= 0:
            continue
        start = commitment.start_hour
        end = commitment.end_hour if commitment.end_hour is not None else instance.hours
        rate = 1.0 if commitment.kind == "spend" else commitment.usd_per_chip_hour
        category = "Spend" if commitment.kind == "spend" else "Usage"
        kind = f"{commitment.kind.capitalize()} Commitment"
        # Provider, region and account columns: the first pool the commitment applies to.
        pool = instance.pools[covered_pools(commitment, instance)[0]]
        for first in range(start - start % step, end, step):
            hours = min(first + step, end) - max(first, start)
            fee = level * rate * hours
            paid = paid_in.get((commitment.id, first), 0.0)  # what the level paid for in this period
            head = {**with_commitment(base(pool, first), commitment.id, category, kind), **quiet,
                    "ResourceId": commitment.id, "ResourceName": commitment.id, "SkuId": f"commitment:{commitment.kind}",
                    "SkuPriceId": commitment.id, "ListUnitPrice": _decimal(rate), "ContractedUnitPrice": _decimal(rate),
                    "PricingUnit": "USD" if commitment.kind == "spend" else "Hours"}
            rows.append({
                **head, "ChargeCategory": "Purchase", "ChargeFrequency": "Recurring",
                "ChargeDescription": f"{commitment.kind} commitment {commitment.id}: level {level:g} for {hours} h",
                "PricingCategory": "Standard", "PricingQuantity": _decimal(level * hours),
                "BilledCost": _decimal(fee), "EffectiveCost": "0", "ListCost": _decimal(fee), "ContractedCost": _decimal(fee),
                "CommitmentDiscountStatus": None, "x_Chips": None,
            })
            if fee - paid > 1e-9:
                rows.append({
                    **head, "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
                    "ChargeDescription": f"unused level of commitment {commitment.id}",
                    "PricingCategory": "Committed", "ConsumedQuantity": "0",
                    "PricingQuantity": _decimal((fee - paid) / rate), "BilledCost": "0",
                    "EffectiveCost": _decimal(fee - paid), "ListCost": _decimal(fee - paid),
                    "ContractedCost": _decimal(fee - paid), "CommitmentDiscountStatus": "Unused", "x_Chips": None,
                })
    last = instance.hours - 1 - (instance.hours - 1) % step
    for row in _records(purchases):
        if row["kind"] != "contract" or float(row["usd"]) <= 0:
            continue
        contract = next(c for c in instance.contracts if c.id == row["instrument"])
        pool = instance.pools[covered_pools(contract, instance)[0]]  # validated: it covers at least one
        rows.append({
            **base(pool, last), **quiet, "ChargeCategory": "Adjustment", "ChargeFrequency": "One-Time",
            "ChargeDescription": f"take-or-pay shortfall of contract {contract.id} (minimum {contract.min_usd:g} USD)",
            "ResourceId": contract.id, "ResourceName": contract.id, "SkuId": "contract:minimum", "SkuPriceId": contract.id,
            "PricingCategory": "Standard", "PricingQuantity": _decimal(float(row["usd"])), "PricingUnit": "USD",
            "ListUnitPrice": "1", "ContractedUnitPrice": "1",
            "BilledCost": _decimal(float(row["usd"])), "EffectiveCost": _decimal(float(row["usd"])),
            "ListCost": _decimal(float(row["usd"])), "ContractedCost": _decimal(float(row["usd"])),
            "CommitmentDiscountStatus": None, "x_Chips": None,
        })
    return rows



def focus_csv(rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row[key]) for key in COLUMNS})
    return out.getvalue()


def export_focus(instance: Instance, plan_dir: str | Path, period: str = "hour") -> str:
    """focus.csv of the plan files in ``plan_dir`` (allocations.csv, reservations.csv,
    purchases.csv, coverage.csv; the last two may be absent for an instance without instruments)."""
    plan_dir = Path(plan_dir)
    tables = {}
    has_instruments = bool(instance.capacity_blocks or instance.commitments or instance.contracts)
    for name in ("allocations", "reservations", "purchases", "coverage"):
        path = plan_dir / f"{name}.csv"
        if not path.exists() and name in ("purchases", "coverage") and not has_instruments:
            tables[name] = []
            continue
        if not path.exists():
            raise InputError(str(plan_dir), [FieldError(f"{name}.csv", "missing", "give a folder chipmix solve wrote")])
        with path.open(newline="") as handle:
            tables[name] = list(csv.DictReader(handle))
    return focus_csv(focus_rows(instance, tables["allocations"], tables["reservations"], period,
                                tables["purchases"], tables["coverage"]))
