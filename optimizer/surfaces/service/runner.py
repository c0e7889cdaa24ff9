"""A bounded pool of solver processes, off the event loop.

Each job runs in its own process (spawned, not forked: the server has threads), so a job can be
killed at its hard time limit or on cancellation without touching the others, and a crash in a
solver takes down one job, not the server.  One thread starts queued jobs while fewer than
``workers`` run, collects what finished processes send back, and kills those past their limit.

The job store can fail under it (a read-only or full disk, a deleted file).  The runner never
lets that stop it: a finished job's result is taken off its process at once and held until the
store records it (retried; after a few failures the job is recorded as failed with the store's
reason, if the store takes that), no job is started while the store cannot claim one, and
``store_error`` says what failed until a store call succeeds again, which /readyz reports.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from optimizer.surfaces.service.store import JobStore

_CONTEXT = multiprocessing.get_context("spawn")
log = logging.getLogger("chipmix.service")


def plan_payload(plan, report) -> dict[str, Any]:
    """The plan as JSON-able tables, with the independent checker's verdict on them."""
    from optimizer.plans.plan import ALLOCATION_COLUMNS, RESERVATION_COLUMNS

    return {
        "summary": plan.summary(),
        "allocations": plan.allocations[ALLOCATION_COLUMNS].to_dict("records"),
        "reservations": plan.reservations[RESERVATION_COLUMNS].to_dict("records"),
        "unmet": plan.unmet.to_dict("records"),
        "shortfall": plan.shortfall.to_dict("records"),
        "details": plan.details,
        "checker": {"ok": report.ok, "violations": report.violations},
    }


def _own_group_and_limits(memory_mb: int | None) -> None:
    """A job process leads its own process group, so that killing the group ends every solver it
    started (CBC, the HiGHS worker); it ends that group itself if the server dies (orphaned, it
    would go on solving beside the restarted server's re-run); and it may use at most
    ``memory_mb`` of address space (a 300-byte instance can ask for gigabytes)."""
    os.setsid()
    parent = os.getppid()

    def follow_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=follow_parent, name="chipmix-job-parent", daemon=True).start()
    if memory_mb is not None:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def kill_group(process) -> None:
    """Kill a job process and everything it started (its process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    process.kill()


def run_job(request: dict[str, Any], connection: Connection, memory_mb: int | None = None) -> None:
    """Body of a job process: its own process group and memory limit, then :func:`job_result`
    sent back on ``connection``."""
    _own_group_and_limits(memory_mb)
    lock = threading.Lock()  # solver callbacks report from their own threads

    def report(seconds: float, incumbent: float | None, bound: float | None) -> None:
        with lock:
            connection.send(("progress", round(seconds, 3), incumbent, bound))

    status, payload = job_result(request, memory_mb, on_progress=report)
    with lock:
        connection.send(("result", status, payload))
    connection.close()


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

        instance = instance_from_data(request["instance"], source="instance")
        from optimizer.solvers.progress import Progress

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


@dataclass
class _Running:
    process: Any
    connection: Connection
    deadline: float
    progress: list = field(default_factory=list)  # [seconds, incumbent, bound] as the solver reports


@dataclass
class _Ended:
    """A finished job's outcome, held until the store records it."""

    status: str
    result: dict | None
    error: dict | None
    attempts: int = 0
    next_try: float = 0.0



#: Store failures of one result before the job is recorded as failed with the store's reason.
RECORD_ATTEMPTS = 3
#: Most seconds between two attempts to record a result while the store fails.
RETRY_MAX_S = 2.0
#: What a store call can raise when its disk or file fails (sqlite3.Error covers SQLITE_FULL,
#: SQLITE_READONLY and "unable to open database file").
STORE_ERRORS = (sqlite3.Error, OSError)


class Runner:
    """Starts queued jobs in processes, at most ``workers`` at a time."""

    def __init__(self, store: JobStore, workers: int, hard_limit_s: float, grace_s: float, poll_s: float = 0.05,
                 memory_mb: int | None = None):
        self.store = store
        self.memory_mb = memory_mb
        self.workers = workers
        self.hard_limit_s = hard_limit_s
        self.grace_s = grace_s
        self.poll_s = poll_s
        self._running: dict[str, _Running] = {}
        self._ended: dict[str, _Ended] = {}
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The last store failure, as words; None once a store call succeeds again.
        self.store_error: str | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def progress(self, job_id: str) -> list | None:
        """A running job's progress so far (None if it is not running here)."""
        with self._lock:
            running = self._running.get(job_id)
            return None if running is None else list(running.progress)

    def running_count(self) -> int:
        return len(self._running)

    @property
    def unrecorded(self) -> int:
        """Finished jobs whose outcome the store has not taken yet."""
        return len(self._ended)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="chipmix-runner", daemon=True)
        self._thread.start()

    def ensure_running(self) -> bool:
        """Start the runner again if its thread ended (it should not: every iteration is guarded);
        True if it had to."""
        if self.alive or self._stop.is_set():
            return False
        log.error("the job runner had stopped; starting it again")
        self.start()
        return True

    def stop(self) -> None:
        """Stop starting jobs and kill running ones; they are queued again at the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for running in self._running.values():
                kill_group(running.process)
                running.process.join(timeout=5)
            self._running.clear()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancel.add(job_id)

    def job_limit_s(self, request: dict[str, Any]) -> float:
        """The hard wall-clock limit of a job: its solver time limit (times its solves, for a lock-in
        or a sweep) plus grace, capped by the server's limit per solve (times its solves)."""
        solves = int(request.get("solves", 1))
        solver = request["options"].get("time_limit_s")
        most = self.hard_limit_s * solves
        return most if solver is None else min(most, float(solver) * solves + self.grace_s)

    def _store(self, call, *args, **kwargs):
        """A store call; on a store failure, ``store_error`` says why and StoreUnavailable is raised."""
        try:
            value = call(*args, **kwargs)
        except STORE_ERRORS as exc:
            self.store_error = f"{type(exc).__name__}: {exc}"
            raise StoreUnavailable(self.store_error) from exc
        self.store_error = None
        return value

    def _loop(self) -> None:
        while not self._stop.is_set():
            for step in (self._reap, self._record, self._start_queued):
                try:
                    step()
                except StoreUnavailable:
                    pass  # said in store_error (and /readyz); tried again next time round
                except Exception:  # keep serving: one bad step must not stop the pool
                    log.exception("job runner step %s failed", step.__name__)
            self._stop.wait(self.poll_s)

    def _start_queued(self) -> None:
        while len(self._running) < self.workers and not self._stop.is_set():
            job = self._store(self.store.claim_next)
            if job is None:
                return
            receive, send = _CONTEXT.Pipe(duplex=False)
            process = _CONTEXT.Process(target=run_job, args=(job.request, send, self.memory_mb), name=f"chipmix-job-{job.id[:8]}", daemon=True)
            try:
                process.start()
            except Exception as exc:  # no process (out of memory, say): the job fails, the runner goes on
                receive.close()
                send.close()
                self._ended[job.id] = _Ended("failed", None, {"kind": "error", "message": f"could not start the job: {exc}"})
                continue
            send.close()
            with self._lock:
                self._running[job.id] = _Running(process, receive, time.monotonic() + self.job_limit_s(job.request))

    def _reap(self) -> None:
        """Take every finished (or killed) job off its process, into ``_ended``: no store call here
        but the look-up of a cancel that came before its process was listed."""
        with self._lock:
            items = list(self._running.items())
            cancels = set(self._cancel)
            self._cancel.clear()
        for job_id in cancels - {job_id for job_id, _ in items}:
            try:
                job = self._store(self.store.get, job_id)
            except StoreUnavailable:
                job = None
            if job is not None and job.status == "running" and job_id not in self._ended:
                with self._lock:  # claimed, its process not listed yet
                    self._cancel.add(job_id)
        for job_id, running in items:
            ended: _Ended | None = None
            if job_id in cancels:
                kill_group(running.process)
                ended = _Ended("canceled", None, {"kind": "canceled", "message": "canceled by request"})
            else:
                ended = self._drain(running)  # None: no result yet
            if ended is None and not running.process.is_alive() and not running.connection.poll():
                ended = _Ended("failed", None, {"kind": "error",
                                                "message": f"the solver process exited with code {running.process.exitcode}"})
            elif ended is None and time.monotonic() > running.deadline:
                kill_group(running.process)
                ended = _Ended("failed", None, {"kind": "hard_time_limit",
                                                "message": "killed at the job's hard time limit; set a lower time_limit_s"})
            if ended is None:
                continue
            running.process.join(timeout=5)
            kill_group(running.process)  # whatever it left running (a solver it started)
            running.connection.close()
            with self._lock:
                self._running.pop(job_id, None)
                self._ended[job_id] = ended

    @staticmethod
    def _drain(running: _Running) -> _Ended | None:
        """Read what a job process has sent: its progress reports (kept), and its result if it
        is there (then how the job ended)."""
        try:
            while running.connection.poll():
                message = running.connection.recv()
                if message[0] == "progress":
                    running.progress.append(list(message[1:]))
                    continue
                _, status, payload = message
                return _Ended(status, payload, None) if status == "succeeded" else _Ended(status, None, payload)
        except (EOFError, OSError):  # it died (killed, out of memory) before it answered
            running.process.join(timeout=5)
            return _Ended("failed", None, {"kind": "error", "message": "the solver process ended without a result "
                                                                      f"(exit code {running.process.exitcode})"})
        return None

    def _record(self) -> None:
        """Hand each finished job's outcome to the store; what it refuses is tried again later, and
        after RECORD_ATTEMPTS failures the job is recorded as failed with the store's reason."""
        now = time.monotonic()
        for job_id, ended in list(self._ended.items()):
            if ended.next_try > now:
                continue
            try:
                self._store(self.store.finish, job_id, ended.status, result=ended.result, error=ended.error)
                self._ended.pop(job_id)
                continue
            except StoreUnavailable as exc:
                ended.attempts += 1
                ended.next_try = now + min(0.1 * 2 ** ended.attempts, RETRY_MAX_S)
                reason = str(exc)
            if ended.attempts >= RECORD_ATTEMPTS and ended.status == "succeeded":
                # A plan the store cannot take (a full disk, say) may still leave room for the reason.
                error = {"kind": "store_error", "message": f"the job store could not record the plan ({reason}); "
                                                           "submit the job again"}
                try:
                    self._store(self.store.finish, job_id, "failed", error=error)
                    self._ended.pop(job_id)
                    log.error("job %s: plan not recorded (%s); recorded as failed", job_id, reason)
                except StoreUnavailable:
                    pass  # the store takes nothing now: keep the plan, and try it first again


class StoreUnavailable(Exception):
    """The job store failed (its words are the message); the runner tries again later."""
