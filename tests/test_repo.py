"""The README's commands and CI stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_run_and_test_commands():
    run, test = readme_commands()[:2]
    assert run.startswith("python3 -m venv .venv") and "chipmix solve instances/default.yaml" in run
    assert test.startswith("python3 -m venv .venv") and "pytest" in test
    assert (ROOT / "instances" / "default.yaml").exists()


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
