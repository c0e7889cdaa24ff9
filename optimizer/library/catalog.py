"""Read the public price catalogue and chip table copied into ``instances/data``.

``accelerator_offerings.csv`` holds rows from several snapshots of the
SkyPilot catalogue; rows of one (cloud, region, instance_type) can appear in
more than one.  :meth:`Catalog.offering` always returns the row of the newest
snapshot, ranked by catalogue format version (``catalogs/v8`` is newer than
``v7``) and, within one version, by the order stated in SOURCES.md.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

# Within one catalogue version, commits SOURCES.md says are newer than others
# (Fluidstack v6: 7dc0cfe is the newer file, 002403b the older one).
_NEWER_WITHIN_VERSION = {"7dc0cfecf3fa803eb48606a82258bfda657c53bc": 1}


class CatalogError(LookupError):
    """A spec asks for something the catalogue does not have."""


@dataclass(frozen=True)
class Offering:
    cloud: str
    region: str
    instance_type: str
    accelerator: str
    chips_per_instance: int
    on_demand_usd_per_hour: float | None
    spot_usd_per_hour: float | None
    source: str

    def usd_per_chip_hour(self, pricing: str) -> float | None:
        price = self.spot_usd_per_hour if pricing == "spot" else self.on_demand_usd_per_hour
        return None if price is None else price / self.chips_per_instance

    def cite(self) -> str:
        commit = self.source.split("@", 1)[1][:8] if "@" in self.source else self.source
        version = _version(self.source)
        return f"{self.cloud} {self.region} {self.instance_type} (catalog v{version}, {commit})"


@dataclass(frozen=True)
class ChipSpecSheet:
    accelerator: str
    vendor: str
    peak_dense_bf16_tflops: float | None
    tdp_watts: float | None
    source: str


def _version(source: str) -> int:
    match = re.search(r"catalogs/v(\d+)", source)
    return int(match.group(1)) if match else 0


def _snapshot_rank(source: str) -> tuple[int, int]:
    commit = source.split("@", 1)[1].split(":", 1)[0] if "@" in source else ""
    return (_version(source), _NEWER_WITHIN_VERSION.get(commit, 0))


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


class Catalog:
    """Offerings (newest snapshot per instance type and region) and chip spec sheets."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._offerings: dict[tuple[str, str, str], Offering] = {}
        with open(self.data_dir / "accelerator_offerings.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                offering = Offering(
                    cloud=row["cloud"],
                    region=row["region"],
                    instance_type=row["instance_type"],
                    accelerator=row["accelerator"],
                    chips_per_instance=int(row["accelerators_per_instance"]),
                    on_demand_usd_per_hour=_number(row["price_per_hour_on_demand_usd"]),
                    spot_usd_per_hour=_number(row["price_per_hour_spot_usd"]),
                    source=row["source"],
                )
                key = (offering.cloud, offering.region, offering.instance_type)
                current = self._offerings.get(key)
                if current is None or _snapshot_rank(offering.source) > _snapshot_rank(current.source):
                    self._offerings[key] = offering
        self._chips: dict[str, ChipSpecSheet] = {}
        with open(self.data_dir / "chips.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                self._chips[row["accelerator"]] = ChipSpecSheet(
                    accelerator=row["accelerator"],
                    vendor=row["vendor"].lower(),
                    peak_dense_bf16_tflops=_number(row["peak_dense_bf16_tflops"]),
                    tdp_watts=_number(row["tdp_watts"]),
                    source=row["source_url_or_repo_path"],
                )

    def offering(self, cloud: str, region: str, instance_type: str) -> Offering:
        try:
            return self._offerings[(cloud, region, instance_type)]
        except KeyError:
            types = sorted(
                key[2] for key in self._offerings if key[0] == cloud and key[1] == region
            )
            hint = f"; {cloud} {region} offers: {', '.join(types)}" if types else f"; no rows for {cloud} {region}"
            raise CatalogError(f"no catalogue row for {cloud} {region} {instance_type}{hint}") from None

    def chip(self, accelerator: str) -> ChipSpecSheet:
        try:
            return self._chips[accelerator]
        except KeyError:
            raise CatalogError(
                f"chips.csv has no accelerator {accelerator!r}; it has: {', '.join(sorted(self._chips))}"
            ) from None
