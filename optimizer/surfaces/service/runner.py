"""A bounded pool of job processes, off the event loop.

Each job runs in its own process (optimizer.surfaces.service.job), so a job can be killed at its
hard time limit or on cancellation without touching the others, and a crash in a solver takes down
one job, not the server.  Where the processes run is the executor's business: beside the server
(:class:`LocalJobs`) or on the workers of a Dask cluster (``chipmix serve --cluster``,
optimizer.surfaces.service.cluster).  One thread starts queued jobs while fewer than ``workers``
run, collects what finished jobs send back, and kills those past their limit.

The job store can fail under it (a read-only or full disk, a deleted file).  The runner never
lets that stop it: a finished job's result is taken off its process at once and held until the
store records it (retried; after a few failures the job is recorded as failed with the store's
reason, if the store takes that), no job is started while the store cannot claim one, and
``store_error`` says what failed until a store call succeeds again, which /readyz reports.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from optimizer.surfaces.service.job import JobProcess
from optimizer.surfaces.service.store import JobStore

log = logging.getLogger("chipmix.service")


class Executor(Protocol):
    """Where job processes run.  ``start`` returns a handle the other calls take."""

    def start(self, job_id: str, request: dict[str, Any]) -> Any: ...
    def take_progress(self, handle: Any) -> list[list]: ...
    def outcome(self, handle: Any) -> tuple[str, dict] | None: ...
    def kill(self, handle: Any) -> None: ...
    def release(self, handle: Any) -> None: ...
    def problem(self) -> str | None: ...
    def close(self) -> None: ...


class LocalJobs:
    """Job processes beside the server."""

    def __init__(self, memory_mb: int | None):
        self.memory_mb = memory_mb

    def start(self, job_id: str, request: dict[str, Any]) -> JobProcess:
        return JobProcess(request, self.memory_mb, name=f"job-{job_id[:8]}")

    def take_progress(self, handle: JobProcess) -> list[list]:
        return handle.take_progress()

    def outcome(self, handle: JobProcess) -> tuple[str, dict] | None:
        return handle.outcome()

    def kill(self, handle: JobProcess) -> None:
        handle.kill()

    def release(self, handle: JobProcess) -> None:
        handle.kill()  # whatever it left running (a solver it started)

    def problem(self) -> str | None:
        return None

    def close(self) -> None:
        pass


@dataclass
class _Running:
    handle: Any  # the executor's
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
    """Starts queued jobs on ``executor``, at most ``workers`` at a time."""

    def __init__(self, store: JobStore, workers: int, hard_limit_s: float, grace_s: float, poll_s: float = 0.05,
                 executor: Executor | None = None):
        self.store = store
        self.executor: Executor = executor if executor is not None else LocalJobs(memory_mb=None)
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
                self.executor.kill(running.handle)
                self.executor.release(running.handle)
            self._running.clear()
        self.executor.close()

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
            try:
                handle = self.executor.start(job.id, job.request)
            except Exception as exc:  # no process (out of memory, say): the job fails, the runner goes on
                log.exception("job %s could not start", job.id)
                self._ended[job.id] = _Ended("failed", None, {"kind": "error", "message": f"could not start the job: {exc}"})
                continue
            with self._lock:
                self._running[job.id] = _Running(handle, time.monotonic() + self.job_limit_s(job.request))

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
                self.executor.kill(running.handle)
                ended = _Ended("canceled", None, {"kind": "canceled", "message": "canceled by request"})
            else:
                reports = self.executor.take_progress(running.handle)
                if reports:
                    with self._lock:
                        running.progress.extend(reports)
                answer = self.executor.outcome(running.handle)
                if answer is not None:
                    status, payload = answer
                    ended = _Ended(status, payload, None) if status == "succeeded" else _Ended(status, None, payload)
            if ended is None and time.monotonic() > running.deadline:
                self.executor.kill(running.handle)
                ended = _Ended("failed", None, {"kind": "hard_time_limit",
                                                "message": "killed at the job's hard time limit; set a lower time_limit_s"})
            if ended is None:
                continue
            self.executor.release(running.handle)
            with self._lock:
                self._running.pop(job_id, None)
                self._ended[job_id] = ended

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
