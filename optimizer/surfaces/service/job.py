"""One job in its own process: what runs in it, and the handle the server (or a Dask worker) holds.

A job process is ``python -m optimizer.surfaces.service.job MEMORY_MB``: it reads the request as
JSON on stdin and writes JSON lines on stdout, ``["progress", seconds, incumbent, bound]`` as the
solver reports, then ``["result", status, payload]``.  Whatever a solver prints goes to stderr, so
stdout carries the protocol only.  The same process runs a job beside the server and on a Dask
worker (``chipmix serve --cluster``): the limits, the kill and the orphan rule are one mechanism.

The process leads its own process group (started in a new session), so killing the group ends every
solver it started (CBC, the HiGHS worker); it ends that group itself when the process that started
it dies (orphaned, it would go on solving beside the restarted server's re-run); and it may use at
most ``MEMORY_MB`` of address space (a 300-byte instance can ask for gigabytes).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Any

log = logging.getLogger("chipmix.service")


def plan_payload(plan, report) -> dict[str, Any]:
    """The plan as JSON-able tables, with the independent checker's verdict on them."""
    from optimizer.plans.economics import ROUTING_COLUMNS
    from optimizer.plans.energy import ENERGY_COLUMNS
    from optimizer.plans.instruments import COVERAGE_COLUMNS, PURCHASE_COLUMNS
    from optimizer.plans.plan import ALLOCATION_COLUMNS, RESERVATION_COLUMNS

    return {
        "summary": plan.summary(),
        "allocations": plan.allocations[ALLOCATION_COLUMNS].to_dict("records"),
        "reservations": plan.reservations[RESERVATION_COLUMNS].to_dict("records"),
        "purchases": plan.purchases[PURCHASE_COLUMNS].to_dict("records"),
        "coverage": plan.coverage[COVERAGE_COLUMNS].to_dict("records"),
        "energy": json.loads(plan.energy[ENERGY_COLUMNS].to_json(orient="records", double_precision=15)),  # NaN: null
        "routing": json.loads(plan.routing[ROUTING_COLUMNS].to_json(orient="records", double_precision=15)),
        "unmet": plan.unmet.to_dict("records"),
        "shortfall": plan.shortfall.to_dict("records"),
        "details": plan.details,
        "checker": {"ok": report.ok, "violations": report.violations},
    }


def _table_result(kind: str, frame) -> tuple[str, dict[str, Any]]:
    """A lock-in or sweep table as JSON rows (NaN as null)."""
    import math

    rows = [{key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
            for row in frame.to_dict("records")]
    return "succeeded", {"kind": kind, "columns": list(frame.columns), "rows": rows}


def _analysis_result(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A lock-in table or a sweep as a job: every plan in it goes through the checker (lockin.run_plan)."""
    from optimizer.analyses.lockin import lockin_table, sweep
    from optimizer.analyses.scenarios import scenarios_from_data
    from optimizer.input.loading import instance_from_data
    from optimizer.solvers.options import SolveOptions

    instance = instance_from_data(request["instance"], source="instance")
    options = SolveOptions(**request["options"])
    if request["kind"] == "lockin":
        frame = lockin_table(instance, options, request.get("restrictions"), greedy=request.get("greedy", True))
    else:  # one job is one worker slot: its solves run one after another
        scenarios = scenarios_from_data(request["scenarios"], instance, "scenarios")
        frame = sweep(instance, scenarios, request.get("restrictions"), options, workers=1)
    return _table_result(request["kind"], frame)


def job_result(request: dict[str, Any], memory_mb: int | None = None,
               on_progress=None) -> tuple[str, dict[str, Any]]:
    """Solve and check through the outcome layer the CLI uses: ("succeeded" | "failed", payload).
    Only a plan the checker passes is "succeeded".  A lock-in or sweep job (``kind``) returns its
    table."""
    try:
        if request.get("kind", "solve") != "solve":
            return _analysis_result(request)
        from optimizer.input.loading import instance_from_data
        from optimizer.plans.outcome import OutcomeKind, run_solve
        from optimizer.solvers.options import SolveOptions
        from optimizer.solvers.progress import Progress

        instance = instance_from_data(request["instance"], source="instance")
        progress = Progress(on_record=on_progress) if on_progress is not None else None
        outcome = run_solve(instance, SolveOptions(**request["options"]), source="instance", progress=progress)
        if outcome.ok:
            result = ("succeeded", plan_payload(outcome.plan, outcome.check))
        else:
            error: dict[str, Any] = {"kind": outcome.kind.value, "message": outcome.message}
            if outcome.kind is OutcomeKind.NO_PLAN:
                error["bound_usd"] = outcome.plan.bound_usd
            if outcome.kind is OutcomeKind.VIOLATIONS:
                error["violations"] = outcome.check.violations
                error["plan"] = plan_payload(outcome.plan, outcome.check)  # for inspection; never a success
            result = ("failed", error)
    except MemoryError:
        result = ("failed", {"kind": "memory_limit",
                             "message": f"the job needed more than its {memory_mb} MB of memory; solve a smaller "
                                        "instance, or ask the operator for a larger --job-memory-mb"})
    except Exception as exc:  # a job's failure is reported in the job, never raised in the server
        # The client gets what failed, not the server's traceback (its paths are the server's
        # business): that goes to the server's log.
        log.exception("job failed")
        result = ("failed", {"kind": "error", "message": f"{type(exc).__name__}: {exc}"})
    return result


# --- inside the job process -------------------------------------------------------------------


def _follow_parent_and_limit(memory_mb: int | None) -> None:
    """End this process group when the process that started this one dies, and cap the address
    space at ``memory_mb``."""
    parent = os.getppid()

    def follow_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=follow_parent, name="chipmix-job-parent", daemon=True).start()
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    """Body of a job process (see the module docstring)."""
    memory_mb = int((argv if argv is not None else sys.argv[1:])[0]) or None
    # stdout is the protocol: keep its descriptor for the messages, and send fd 1 (where solvers
    # and their subprocesses print) to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _follow_parent_and_limit(memory_mb)
    request = json.load(sys.stdin)
    lock = threading.Lock()  # solver callbacks report from their own threads

    def send(message: list) -> None:
        line = json.dumps(message)
        with lock:
            protocol.write(line + "\n")
            protocol.flush()

    def report(seconds: float, incumbent: float | None, bound: float | None) -> None:
        send(["progress", round(seconds, 3), incumbent, bound])

    status, payload = job_result(request, memory_mb, on_progress=report)
    send(["result", status, payload])
    protocol.close()
    return 0


# --- the handle, in the process that started the job -----------------------------------------


class JobProcess:
    """A running job process: its progress reports, its result once sent, its kill."""

    def __init__(self, request: dict[str, Any], memory_mb: int | None, name: str = "job"):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "optimizer.surfaces.service.job", str(memory_mb or 0), name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        self._lock = threading.Lock()
        self._progress: list[list] = []
        self._result: tuple[str, dict] | None = None
        self._eof = threading.Event()
        # The request goes in, and the answers come out, on a thread of their own: a large request
        # must not hold up the caller while the new process starts.
        threading.Thread(target=self._talk, args=(json.dumps(request),), name=f"chipmix-{name}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _talk(self, request: str) -> None:
        try:
            self.process.stdin.write(request.encode())
            self.process.stdin.close()
        except OSError:
            pass  # it died before it read the request: the exit code says what happened
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                if message[0] == "progress":
                    self._progress.append(list(message[1:]))
                elif message[0] == "result":
                    self._result = (message[1], message[2])
        self.process.stdout.close()
        self._eof.set()

    def take_progress(self) -> list[list]:
        """The progress reports since the last call."""
        with self._lock:
            taken, self._progress = self._progress, []
        return taken

    def outcome(self) -> tuple[str, dict] | None:
        """("succeeded" | "failed", payload) once the process has answered or died; None while it runs."""
        with self._lock:
            if self._result is not None:
                return self._result
        if not self._eof.is_set() or self.process.poll() is None:
            return None
        with self._lock:  # the last line may have come in between
            if self._result is not None:
                return self._result
        return "failed", {"kind": "error",
                          "message": f"the solver process ended without a result (exit code {self.process.returncode})"}

    def kill(self) -> None:
        """Kill the process and everything it started (its process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already
        try:
            self.process.kill()
        except OSError:
            pass
        self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
