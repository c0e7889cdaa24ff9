"""benchmarks/perf.py's memory figure: each process counted by its own high-water mark."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf.py"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_peak_memory_counts_a_child_by_its_own_high_water_mark_not_its_parents():
    spec = importlib.util.spec_from_file_location("perf_under_test", PERF)
    perf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(perf)
    ballast = np.ones(400 * 1024**2 // 8)  # 400 MB held here while the child runs
    with perf.PeakMemory(interval=0.05) as memory:
        subprocess.run([sys.executable, "-c", "import time; a = bytearray(60 * 1024**2); time.sleep(0.6)"], check=True)
    child_mb = sum(memory.children.values())
    # The child's 60 MB and its interpreter, not this process's 400+ MB (which getrusage's
    # RUSAGE_CHILDREN reports for a child started by fork and exec).
    assert 55 < child_mb < 250
    assert memory.total_gb() * 1024 >= ballast.nbytes / 1024**2 + child_mb - 1
