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
  chip-hours (Unused).  So the sums of ``BilledCost`` and of ``EffectiveCost`` are both the
  plan's usage + reserved cost.
- energy (chip power x PUE at the site's price) is chipmix's own term, in ``x_EnergyUsd`` and
  ``x_EnergyMwh`` on the usage rows; unmet-demand penalties are not charges and are left out.

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
_PRICING = {"owned": "Standard", "on_demand": "Standard", "spot": "Dynamic", "reserved": "Committed"}


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


def focus_rows(instance: Instance, allocations: Any, reservations: Any, period: str = "hour") -> list[dict[str, Any]]:
    """The FOCUS rows of a plan given as tables (DataFrames, or lists of dicts with the columns
    of allocations.csv and reservations.csv)."""
    if period not in PERIODS:
        raise InputError("--period", [FieldError("period", f"unknown charge period {period!r}", "use hour or day")])
    step = PERIODS[period]
    if instance.capacity_blocks or instance.commitments or instance.contracts:
        # Their FOCUS rows (block purchases, commitment purchases, used and unused commitment
        # chip-hours) are not written yet: a partial cost dataset would not add up to the plan's.
        raise InputError(instance.name, [FieldError(
            "capacity_blocks / commitments / contracts",
            "the FOCUS export does not cover procurement instruments yet",
            "export a plan of the instance without them, or read purchases.csv and coverage.csv")])
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
    for row in _records(allocations):
        hour, pool = int(row["hour"]), pools[row["pool"]]
        count = int(row["chips"])
        site = sites[pool.site]
        first = hour - hour % step
        mwh = count * chips[pool.chip].power_kw * site.pue / 1000.0
        entry = use[(pool.id, row["workload"], first)]
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

    rows: list[dict[str, Any]] = []
    for (pool_id, workload, first), (chip_hours, mwh, energy_usd, peak) in sorted(use.items()):
        pool = pools[pool_id]
        cost = chip_hours * pool.usd_per_chip_hour
        committed = pool.pricing == "reserved"
        rows.append({
            **base(pool, first), "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{pool.chip} chips of {pool_id} for {workload}",
            "PricingCategory": _PRICING[pool.pricing], "PricingQuantity": _decimal(chip_hours),
            "ConsumedQuantity": _decimal(chip_hours),
            "BilledCost": _decimal(0.0 if committed else cost), "EffectiveCost": _decimal(cost),
            "ListCost": _decimal(cost), "ContractedCost": _decimal(cost),
            "CommitmentDiscountStatus": "Used" if committed else None,
            "x_Workload": workload, "x_Chips": peak, "x_EnergyMwh": _decimal(mwh), "x_EnergyUsd": _decimal(energy_usd),
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
    rows.sort(key=lambda r: (r["ChargePeriodStart"], r["ResourceId"], r["ChargeCategory"], r["x_Workload"] or ""))
    return rows


def focus_csv(rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row[key]) for key in COLUMNS})
    return out.getvalue()


def export_focus(instance: Instance, plan_dir: str | Path, period: str = "hour") -> str:
    """focus.csv of the plan files in ``plan_dir`` (allocations.csv, reservations.csv)."""
    plan_dir = Path(plan_dir)
    tables = {}
    for name in ("allocations", "reservations"):
        path = plan_dir / f"{name}.csv"
        if not path.exists():
            raise InputError(str(plan_dir), [FieldError(f"{name}.csv", "missing", "give a folder chipmix solve wrote")])
        with path.open(newline="") as handle:
            tables[name] = list(csv.DictReader(handle))
    return focus_csv(focus_rows(instance, tables["allocations"], tables["reservations"], period))
