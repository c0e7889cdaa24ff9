"""A whole-model HiGHS MILP in a worker process, ended at its deadline even where HiGHS does not end.

HiGHS checks its time limit, and calls its interrupt callbacks, only between steps of its MIP
search.  Measured here (benchmarks/perf.py): on a generated 142k-column plan the root node's cut
loop ran 130 s with a 58 s limit and no callback in between; on the 3M-column fleet-year the plain
model ran 22 minutes past a 600 s limit.  A solve with a time limit therefore runs in a child
process (``python -m optimizer.solvers.backends.highs.worker``, so no script is re-imported): the model's
arrays go in on stdin, each improving plan and every bound come back on stdout as they are found,
and at the deadline (plus a short grace for HiGHS to stop on its own) the child is killed.  The best
plan received and the last bound HiGHS reported are kept: both are valid at any moment of the
search.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from optimizer.model.linear import LinearModel

#: Seconds the child gets past the deadline to stop by itself before it is killed.
GRACE_SECONDS = 1.0
#: How the child is started (a test replaces it with a child that never answers).
WORKER_ARGS = ["-m", "optimizer.solvers.backends.highs.worker"]


@dataclass(frozen=True)
class WorkerProblem:
    """A MILP as arrays (CSC matrix), HiGHS options by name, an optional start, and when to stop
    early: once the incumbent is within ``stop_gap`` of the larger of HiGHS's bound and
    ``known_bound`` (a bound proven elsewhere)."""

    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    options: dict
    start: np.ndarray | None = None
    stop_gap: float | None = None
    known_bound: float = -np.inf

    @classmethod
    def from_model(cls, model: LinearModel, options: dict, **extra) -> WorkerProblem:
        """The whole of ``model`` with HiGHS ``options``; ``extra``: start, stop_gap, known_bound."""
        csc = model.matrix.tocsc()
        return cls(model.col_cost, model.col_lower, model.col_upper, np.asarray(model.col_integer), csc.indptr,
                   csc.indices, csc.data, model.row_lower, model.row_upper, options, **extra)


@dataclass(frozen=True)
class WorkerOutcome:
    """What came back: ``finished`` is False when the child was killed (or died) before it answered;
    ``died`` says it ended by itself without an answer (a crash), not at the deadline."""

    finished: bool
    words: str
    model_status: int | None
    objective: float | None
    bound: float | None
    values: np.ndarray | None
    seconds: float
    died: bool = False


def run_in_worker(problem: WorkerProblem, deadline_monotonic: float,
                  on_progress=None) -> WorkerOutcome:
    """Solve ``problem`` in a child process; ``on_progress(objective, bound)`` is called as the
    child reports.  Returns by ``deadline_monotonic`` (``time.monotonic()``) + GRACE_SECONDS."""
    started = time.monotonic()
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[4])
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    child = subprocess.Popen([sys.executable, *WORKER_ARGS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
    messages: queue.Queue = queue.Queue()

    def feed() -> None:
        try:
            pickle.dump((problem, deadline_monotonic), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the child died; the reader sees the end of its output

    def read() -> None:
        try:
            while True:
                messages.put(pickle.load(child.stdout))
        except (EOFError, OSError, pickle.UnpicklingError):
            messages.put(("end",))

    threading.Thread(target=feed, daemon=True).start()
    threading.Thread(target=read, daemon=True).start()
    best_objective, best_values, last_bound = None, None, None
    try:
        while True:
            remaining = deadline_monotonic + GRACE_SECONDS - time.monotonic()
            try:
                message = messages.get(timeout=max(remaining, 0.0)) if remaining > 0 else messages.get_nowait()
            except queue.Empty:
                words = "stopped at the time limit by chipmix: HiGHS had not stopped by itself"
                return WorkerOutcome(False, words, None, best_objective, last_bound, best_values,
                                     time.monotonic() - started)
            kind = message[0]
            if kind == "plan":
                _, objective, values = message
                if best_objective is None or objective < best_objective:
                    best_objective, best_values = objective, values
                if on_progress is not None:
                    on_progress(objective, last_bound)
            elif kind == "bound":
                _, objective, bound = message
                if bound is not None and np.isfinite(bound):
                    last_bound = bound if last_bound is None else max(last_bound, bound)
                if on_progress is not None:
                    on_progress(objective, bound)
            elif kind == "done":
                _, model_status, words, objective, bound, values = message
                if values is None and best_values is not None:
                    objective, values = best_objective, best_values
                return WorkerOutcome(True, words, model_status, objective, bound, values, time.monotonic() - started)
            else:  # the child's output ended without an answer
                child.wait(timeout=5)
                words = f"the HiGHS worker ended without an answer (exit code {child.returncode})"
                return WorkerOutcome(False, words, None, best_objective, last_bound, best_values,
                                     time.monotonic() - started, died=True)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _work() -> None:
    """The child: read the problem, solve, write messages; nothing else may write to stdout."""
    out = os.fdopen(os.dup(1), "wb")
    parent = os.getppid()

    def follow_parent() -> None:
        # A parent killed outright (the HTTP service cancelling a job) cannot kill this process:
        # it notices it has been orphaned and ends itself, whatever HiGHS is doing.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=follow_parent, daemon=True).start()
    problem, deadline = pickle.load(sys.stdin.buffer)
    # HiGHS prints some debugging lines with printf whatever its output_flag: they go nowhere (its
    # log, when asked for, to stderr), never into the message stream.
    os.dup2(2 if problem.options.get("output_flag") else os.open(os.devnull, os.O_WRONLY), 1)

    import highspy
    import scipy.sparse as sp

    from optimizer.solvers.backends.highs.arrays import pass_arrays
    from optimizer.solvers.backends.highs.options import apply_options
    from optimizer.solvers.backends.highs.status import has_plan as holds_plan

    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("log_to_console", True)
    apply_options(highs, problem.options)
    highs.setOptionValue("time_limit", max(deadline - time.monotonic(), 0.01))
    matrix = sp.csc_matrix((problem.data, problem.indices, problem.indptr),
                           shape=(len(problem.row_lower), len(problem.cost)))
    pass_arrays(highs, problem.cost, problem.lower, problem.upper, problem.integer, matrix,
                problem.row_lower, problem.row_upper)
    if problem.start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = list(problem.start)
        solution.value_valid = True
        highs.setSolution(solution)
    last = [0.0]

    def improving(event) -> None:
        out_data = event.data_out
        send(("plan", float(out_data.objective_function_value), np.array(out_data.mip_solution, dtype=float)))

    def interrupt(event) -> None:
        out_data = event.data_out
        incumbent, bound = float(out_data.mip_primal_bound), float(out_data.mip_dual_bound)
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            send(("bound", incumbent if np.isfinite(incumbent) else None, bound))
        if problem.stop_gap is not None and np.isfinite(incumbent):
            best = max(problem.known_bound, bound if np.isfinite(bound) else -np.inf)
            if (incumbent - best) / max(abs(incumbent), 1e-12) <= problem.stop_gap:
                event.data_in.user_interrupt = True
        if now > deadline:
            event.data_in.user_interrupt = True

    highs.cbMipImprovingSolution.subscribe(improving)
    highs.cbMipInterrupt.subscribe(interrupt)
    highs.run()
    info = highs.getInfo()
    has_plan = holds_plan(highs)
    bound = float(info.mip_dual_bound)
    send(("done", int(highs.getModelStatus()), highs.modelStatusToString(highs.getModelStatus()),
          float(info.objective_function_value) if has_plan else None, bound if np.isfinite(bound) else None,
          np.asarray(highs.getSolution().col_value, dtype=float) if has_plan else None))
    out.close()


if __name__ == "__main__":
    try:
        _work()
    except Exception as error:  # noqa: BLE001 - the parent sees the exit code (a direct solve raises SolverError)
        print(f"HiGHS worker: {error!r}", file=sys.stderr)
        sys.exit(1)
