"""The plan as the checker reads it: rows of text, from the plan files or from tables in memory.

The layout of the files is written out here on purpose rather than imported from
:mod:`optimizer.plans.plan`: the checker reads a plan as any other tool would.  Tables in memory
(DataFrames or lists of dicts, as the service holds them) are turned into the same rows of text
a CSV file would give, so both are checked by the same rules.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALLOCATIONS_HEADER = ["hour", "workload", "pool", "chips", "variant"]
#: Plans written before routing have no variant column: every allocation serves its workload.
LEGACY_ALLOCATIONS_HEADER = ["hour", "workload", "pool", "chips"]
ROUTING_HEADER = ["hour", "workload", "variant", "share"]
RESERVATIONS_HEADER = ["pool", "chips"]
PURCHASES_HEADER = ["instrument", "kind", "start_hour", "quantity", "unit", "usd"]
COVERAGE_HEADER = ["hour", "pool", "commitment", "chips"]
ENERGY_HEADER = ["site", "hour", "facility_mwh", "renewable_mwh", "certificates_mwh", "grid_mwh", "carbon_t"]


@dataclass
class PlanRows:
    """allocations.csv, reservations.csv, purchases.csv and coverage.csv as rows (each a dict with
    its ``_line``), and the summary."""

    allocations: list[dict[str, str]] | None
    reservations: list[dict[str, str]] | None
    summary: Any
    purchases: list[dict[str, str]] | None = None
    coverage: list[dict[str, str]] | None = None
    energy: list[dict[str, str]] | None = None
    routing: list[dict[str, str]] | None = None  # None: routing.csv missing (an error only where the instance routes)


def _rows(lines, header: list[str], name: str, violations: list[str]) -> list[dict[str, str]] | None:
    found = next(lines, None)
    legacy = header == ALLOCATIONS_HEADER and found == LEGACY_ALLOCATIONS_HEADER
    if legacy:
        header = LEGACY_ALLOCATIONS_HEADER
    elif found != header:
        violations.append(f"{name}: header is {found}, expected {header}")
        return None
    rows = []
    for line_number, row in enumerate(lines, start=2):
        if len(row) != len(header):
            violations.append(f"{name} line {line_number}: {len(row)} fields, expected {len(header)}")
            continue
        rows.append({"_line": str(line_number), **dict(zip(header, row)), **({"variant": ""} if legacy else {})})
    return rows


def read_files(plan_dir: Path, violations: list[str]) -> PlanRows:
    def table(name: str, header: list[str]):
        path = plan_dir / name
        if not path.exists():
            violations.append(f"{name}: missing")
            return None
        with path.open(newline="") as handle:
            return _rows(csv.reader(handle), header, name, violations)

    allocations = table("allocations.csv", ALLOCATIONS_HEADER)
    reservations = table("reservations.csv", RESERVATIONS_HEADER)
    purchases = table("purchases.csv", PURCHASES_HEADER)
    coverage = table("coverage.csv", COVERAGE_HEADER)
    energy = table("energy.csv", ENERGY_HEADER)
    routing = None
    if (plan_dir / "routing.csv").exists():
        routing = table("routing.csv", ROUTING_HEADER)
    summary_path = plan_dir / "summary.json"
    summary = None
    if not summary_path.exists():
        violations.append("summary.json: missing")
    else:
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            violations.append(f"summary.json: not JSON ({exc})")
    return PlanRows(allocations, reservations, summary, purchases, coverage, energy, routing)


def _text(value: Any) -> str:
    """A cell as a CSV file would hold it (numpy integers as plain integers)."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return "" if value is None else str(value)


def _cell(value: Any) -> str:
    """A cell as a CSV file would hold it; NaN (an empty cell read back by pandas) as empty."""
    text = _text(value)
    return "" if text == "nan" else text


def _records(table: Any) -> list[dict[str, Any]] | None:
    if table is None:
        return None
    if hasattr(table, "to_dict"):  # a DataFrame
        return table.to_dict("records")
    return list(table)


def read_tables(allocations: Any, reservations: Any, summary: Any, violations: list[str],
                purchases: Any = (), coverage: Any = (), energy: Any = None, routing: Any = None) -> PlanRows:
    """Tables in memory (DataFrames, or lists of dicts keyed by the CSV headers) as plan rows.
    ``purchases`` and ``coverage`` default to none (a plan that buys no instrument); ``energy`` is
    required, as energy.csv is (None: missing); ``routing`` only where the instance routes."""
    def table(records, header: list[str], name: str):
        records = _records(records)
        if records is None:
            violations.append(f"{name}: missing")
            return None
        if any(not isinstance(record, dict) for record in records):
            violations.append(f"{name}: every row must be an object with {header}")
            return None
        lines = iter([header] + [[_cell(record.get(column)) for column in header] for record in records])
        extra = sorted({key for record in records for key in record} - set(header))
        if extra:
            violations.append(f"{name}: unexpected columns {extra}, expected {header}")
            return None
        return _rows(lines, header, name, violations)

    return PlanRows(table(allocations, ALLOCATIONS_HEADER, "allocations.csv"),
                    table(reservations, RESERVATIONS_HEADER, "reservations.csv"), summary,
                    table(purchases, PURCHASES_HEADER, "purchases.csv"), table(coverage, COVERAGE_HEADER, "coverage.csv"),
                    table(energy, ENERGY_HEADER, "energy.csv"),
                    None if routing is None else table(routing, ROUTING_HEADER, "routing.csv"))
