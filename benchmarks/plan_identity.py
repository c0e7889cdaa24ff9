"""Are the plans of this tree byte-identical to those of another revision?

    python benchmarks/plan_identity.py [--base REV] [INSTANCE ...]

Checks REV (default: the commit before the families redesign) out into a temporary git worktree,
solves each instance (default: default, frontier-lab-week, power-capped-campus) to its gap with
both trees, and compares the plan files byte for byte: allocations.csv, reservations.csv,
unmet.csv, shortfall.csv, and summary.json without its timings (solve_seconds, time_to_*) and
without keys the base did not write yet.
Prints one line per instance and file; exits 1 if any differs.  A refactoring that "changes no
result" must pass this.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The last commit before constraint families became units (issue: one home per family).
BEFORE_FAMILIES = "99a7d7b"
FILES = ("allocations.csv", "reservations.csv", "unmet.csv", "shortfall.csv")
TIMINGS = {"solve_seconds", "time_to_first_plan_s", "time_to_1pct_s"}

# Run one tree's CLI in a fresh interpreter, importing that tree's package (not the editable install).
_BOOT = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in type(f).__name__]
sys.path.insert(0, sys.argv.pop(1))
try:
    from optimizer.surfaces.cli import main
except ImportError:
    from optimizer.cli import main
sys.argv[0] = "chipmix"
main()
"""


def solve(tree: Path, instance: Path, out: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _BOOT, str(tree), "solve", str(instance), "--out", str(out)],
                            capture_output=True, text=True, cwd=tree)
    if result.returncode != 0:
        raise SystemExit(f"{tree}: chipmix solve {instance.name} failed:\n{result.stderr}")


def summary_without_timings(path: Path, base: dict | None = None) -> str:
    """summary.json without its timings (and, given the ``base`` revision's summary, only its keys:
    a key it did not write yet, such as instance_sha256 or the energy block, is new, not a
    difference; so is a cost term it did not have, if it is 0 here)."""
    summary = json.loads(path.read_text())
    if base is not None:
        summary = {k: v for k, v in summary.items() if k in base}
        new_terms = set(summary.get("cost_usd", {})) - set(base.get("cost_usd", {}))
        if all(summary["cost_usd"][term] == 0 for term in new_terms):
            summary["cost_usd"] = {k: v for k, v in summary["cost_usd"].items() if k not in new_terms}
    return json.dumps({k: v for k, v in summary.items() if k not in TIMINGS}, indent=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BEFORE_FAMILIES, help="git revision to compare with")
    parser.add_argument("instances", nargs="*", default=["default", "frontier-lab-week", "power-capped-campus"])
    args = parser.parse_args()
    differ = 0
    with tempfile.TemporaryDirectory(prefix="chipmix-identity-") as scratch:
        scratch = Path(scratch)
        base = scratch / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for name in args.instances:
                instance = ROOT / "instances" / f"{name}.yaml"
                solve(base, instance, scratch / "before" / name)
                solve(ROOT, instance, scratch / "after" / name)
                for file in FILES + ("summary.json",):
                    before, after = scratch / "before" / name / file, scratch / "after" / name / file
                    if file == "summary.json":
                        base_summary = json.loads(before.read_text())
                        same = summary_without_timings(before) == summary_without_timings(after, base_summary)
                    else:
                        same = before.read_bytes() == after.read_bytes()
                    differ += not same
                    print(f"{name:22s} {file:18s} {'identical' if same else 'DIFFERS'}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
    print(f"{'all identical' if not differ else f'{differ} file(s) differ'} (base {args.base})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
