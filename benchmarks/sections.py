"""What the variant benchmarks (gang.py, quota.py) share: the run's record, a markdown table of
their rows, the cost interval between two plans stopped at a gap, and their own section of
docs/benchmarks.md (between ``<!-- name:begin -->`` and ``<!-- name:end -->``, which
benchmarks/lockin.py keeps when it rewrites the rest)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from pathlib import Path

import pandas as pd

from optimizer.analyses.lockin import format_cell

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def save_run(name: str, frame: pd.DataFrame, **run) -> dict:
    """Write benchmarks/results/<name>.csv and <name>.run.json (the machine and the date with the run)."""
    run = {**run, "date": dt.date.today().isoformat(), "machine": platform.machine(), "cores": os.cpu_count(),
           "python": platform.python_version()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    frame.to_csv(RESULTS / f"{name}.csv", index=False, float_format="%.10g")
    (RESULTS / f"{name}.run.json").write_text(json.dumps(run, indent=2) + "\n")
    return run


def load_run(name: str) -> tuple[pd.DataFrame, dict]:
    return pd.read_csv(RESULTS / f"{name}.csv"), json.loads((RESULTS / f"{name}.run.json").read_text())


def table(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> list[str]:
    """The rows as a markdown table: (column, format_cell kind) each."""
    lines = ["| " + " | ".join(name for name, _ in columns) + " |", "|" + "---|" * len(columns)]
    for record in frame.to_dict("records"):
        lines.append("| " + " | ".join(format_cell(record.get(name), kind) for name, kind in columns) + " |")
    return lines


def interval(constrained: pd.Series, looser: pd.Series) -> tuple[float, float]:
    """What a constrained plan costs more than a looser one, as [low, high] from both plans and
    their bounds.  Every plan of the constrained problem is a plan of the looser one, so its
    optimum is not below the looser's: low >= 0."""
    return max(constrained.bound_usd - looser.total_usd, 0.0), constrained.total_usd - looser.bound_usd


def write_section(name: str, lines: list[str]) -> None:
    """Put ``lines`` in docs/benchmarks.md between the section's markers (appended the first time)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = "\n".join([begin, "", *lines, "", end])
    text = DOC.read_text()
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
