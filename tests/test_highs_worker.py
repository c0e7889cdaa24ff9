"""The HiGHS worker process: the same answer as HiGHS in-process, and back on time when HiGHS is not."""

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import pytest

import optimizer
from optimizer import SolveStatus
from optimizer.solvers.backends import SolverError
from optimizer.solvers.backends.highs import worker as highs_worker
from optimizer.solvers.backends.highs.worker import WorkerProblem, run_in_worker
from tests.helpers import instance_data, solve_checked


def _cover_problem(**extra) -> WorkerProblem:
    """min 4x + 6y  s.t.  3x + 5y >= 7, x, y whole in [0, 10]: x=1, y=1 costs 10 (x=0,y=2 and
    x=3,y=0 cost 12; nothing cheaper covers 7)."""
    csc = sp.csc_matrix(np.array([[3.0, 5.0]]))
    return WorkerProblem(np.array([4.0, 6.0]), np.zeros(2), np.full(2, 10.0), np.array([True, True]),
                         csc.indptr, csc.indices, csc.data, np.array([7.0]), np.array([np.inf]),
                         {"mip_rel_gap": 0.0}, **extra)


def test_the_worker_solves_a_hand_checked_milp():
    outcome = run_in_worker(_cover_problem(), time.monotonic() + 60)
    assert outcome.finished and outcome.words == "Optimal"
    assert outcome.objective == 10.0 and outcome.bound == 10.0
    assert np.allclose(outcome.values, [1.0, 1.0])


def test_a_start_is_passed_and_reported_as_a_plan():
    seen = []
    outcome = run_in_worker(_cover_problem(start=np.array([0.0, 2.0])), time.monotonic() + 60,
                            lambda objective, bound: seen.append(objective))
    assert outcome.objective == 10.0
    assert seen and min(o for o in seen if o is not None) == 10.0


def test_a_worker_that_does_not_answer_is_killed_at_the_deadline(monkeypatch, tmp_path):
    # A child that sends one plan and a bound, then hangs the way HiGHS does in its root cut loop.
    script = tmp_path / "hang.py"
    script.write_text(
        "import pickle, sys, time\n"
        "import numpy as np\n"
        "pickle.load(sys.stdin.buffer)\n"
        "out = sys.stdout.buffer\n"
        "pickle.dump(('plan', 12.0, np.array([0.0, 2.0])), out); out.flush()\n"
        "pickle.dump(('bound', 12.0, 9.5), out); out.flush()\n"
        "time.sleep(120)\n"
    )
    monkeypatch.setattr(highs_worker, "WORKER_ARGS", [str(script)])
    started = time.monotonic()
    outcome = run_in_worker(_cover_problem(), started + 1.0)
    waited = time.monotonic() - started
    assert not outcome.finished and not outcome.died and "time limit" in outcome.words
    assert outcome.objective == 12.0 and np.allclose(outcome.values, [0.0, 2.0]) and outcome.bound == 9.5
    assert waited < 1.0 + highs_worker.GRACE_SECONDS + 10  # killed, not waited for (the child sleeps 120 s)


def test_a_worker_that_dies_is_reported_not_hung(monkeypatch, tmp_path):
    script = tmp_path / "die.py"
    script.write_text("import sys\nsys.exit(3)\n")
    monkeypatch.setattr(highs_worker, "WORKER_ARGS", [str(script)])
    outcome = run_in_worker(_cover_problem(), time.monotonic() + 60)
    assert not outcome.finished and outcome.died and "exit code 3" in outcome.words and outcome.values is None


def test_a_direct_solve_whose_worker_dies_raises_not_no_plan(monkeypatch, tmp_path):
    # A crash is a solver failure, not "no plan within the time limit" (exit code 3 to a user).
    script = tmp_path / "die.py"
    script.write_text("import sys\nsys.exit(3)\n")
    monkeypatch.setattr(highs_worker, "WORKER_ARGS", [str(script)])
    with pytest.raises(SolverError, match="exit code 3"):
        optimizer.solve(optimizer.instance_from_data(instance_data(), source="t"), time_limit_s=60, method="direct")


def test_a_direct_solve_with_a_time_limit_runs_in_the_worker_and_matches_in_process(tmp_path, monkeypatch):
    calls = []
    original = highs_worker.run_in_worker

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(highs_worker, "run_in_worker", counting)
    data = instance_data()
    in_process = solve_checked(data, tmp_path, method="direct")  # no time limit: HiGHS in this process
    assert not calls
    in_worker = solve_checked(data, tmp_path, time_limit_s=60, method="direct")
    assert calls and in_worker.status is SolveStatus.OPTIMAL
    assert in_worker.objective_usd == pytest.approx(in_process.objective_usd, rel=1e-9)


def test_a_worker_whose_parent_is_killed_ends_itself(tmp_path):
    # A parent process starts a worker on a MILP that runs for minutes, then is killed outright.
    import os
    import signal
    import subprocess

    script = tmp_path / "parent.py"
    script.write_text(
        "import time, numpy as np, scipy.sparse as sp\n"
        "from optimizer.solvers.backends.highs.worker import WorkerProblem, run_in_worker\n"
        "from optimizer.solvers.backends.highs import worker as highs_worker\n"
        "import subprocess, sys\n"
        "original = subprocess.Popen\n"
        "def popen(*a, **k):\n"
        "    child = original(*a, **k)\n"
        "    print(child.pid, flush=True)\n"
        "    return child\n"
        "highs_worker.subprocess.Popen = popen\n"
        "rng = np.random.default_rng(0)\n"
        "n, m = 400, 300\n"
        "a = sp.random(m, n, density=0.05, random_state=0, format='csc') * 10\n"
        "problem = WorkerProblem(rng.uniform(1, 2, n), np.zeros(n), np.full(n, 50.0), np.ones(n, bool),\n"
        "    a.indptr, a.indices, a.data, np.full(m, 7.5), np.full(m, np.inf), {'mip_rel_gap': 0.0})\n"
        "run_in_worker(problem, time.monotonic() + 300)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    worker_pid = int(parent.stdout.readline())
    time.sleep(1.0)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):  # it checks every half second
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker_pid, signal.SIGKILL)
        raise AssertionError("the orphaned worker kept running")
