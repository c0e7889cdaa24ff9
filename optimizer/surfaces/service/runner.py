"""A bounded pool of solver processes, off the event loop.

Each job runs in its own process (spawned, not forked: the server has threads), so a job can be
killed at its hard time limit or on cancellation without touching the others, and a crash in a
solver takes down one job, not the server.  One thread starts queued jobs while fewer than
``workers`` run, collects what finished processes send back, and kills those past their limit.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from optimizer.surfaces.service.store import JobStore

_CONTEXT = multiprocessing.get_context("spawn")


def plan_payload(plan, report) -> dict[str, Any]:
    """The plan as JSON-able tables, with the independent checker's verdict on them."""
    return {
        "summary": plan.summary(),
        "allocations": plan.allocations[["hour", "workload", "pool", "chips"]].to_dict("records"),
        "reservations": plan.reservations[["pool", "chips"]].to_dict("records"),
        "unmet": plan.unmet.to_dict("records"),
        "shortfall": plan.shortfall.to_dict("records"),
        "details": plan.details,
        "checker": {"ok": report.ok, "violations": report.violations},
    }


def run_job(request: dict[str, Any], connection: Connection) -> None:
    """Body of a job process: solve and check through the outcome layer the CLI uses, and send
    ("succeeded" | "failed", payload) back.  Only a plan the checker passes is "succeeded"."""
    try:
        from optimizer.input.loading import instance_from_data
        from optimizer.plans.outcome import OutcomeKind, run_solve
        from optimizer.solvers.options import SolveOptions

        instance = instance_from_data(request["instance"], source="instance")
        outcome = run_solve(instance, SolveOptions(**request["options"]), source="instance")
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
    except Exception as exc:  # a job's failure is reported in the job, never raised in the server
        result = ("failed", {"kind": "error", "message": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc(limit=5)})
    connection.send(result)
    connection.close()


@dataclass
class _Running:
    process: Any
    connection: Connection
    deadline: float


class Runner:
    """Starts queued jobs in processes, at most ``workers`` at a time."""

    def __init__(self, store: JobStore, workers: int, hard_limit_s: float, grace_s: float, poll_s: float = 0.05):
        self.store = store
        self.workers = workers
        self.hard_limit_s = hard_limit_s
        self.grace_s = grace_s
        self.poll_s = poll_s
        self._running: dict[str, _Running] = {}
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chipmix-runner", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop starting jobs and kill running ones; they are queued again at the next start."""
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            for running in self._running.values():
                running.process.kill()
                running.process.join(timeout=5)
            self._running.clear()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancel.add(job_id)

    def job_limit_s(self, options: dict[str, Any]) -> float:
        """The hard wall-clock limit of a job: its solver time limit plus grace, capped by the server's."""
        solver = options.get("time_limit_s")
        return self.hard_limit_s if solver is None else min(self.hard_limit_s, float(solver) + self.grace_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._start_queued()
            except Exception:  # keep serving: one bad iteration must not stop the pool
                traceback.print_exc()
            self._stop.wait(self.poll_s)

    def _start_queued(self) -> None:
        while len(self._running) < self.workers and not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                return
            receive, send = _CONTEXT.Pipe(duplex=False)
            process = _CONTEXT.Process(target=run_job, args=(job.request, send), name=f"chipmix-job-{job.id[:8]}", daemon=True)
            process.start()
            send.close()
            with self._lock:
                self._running[job.id] = _Running(process, receive, time.monotonic() + self.job_limit_s(job.request["options"]))

    def _reap(self) -> None:
        with self._lock:
            items = list(self._running.items())
            cancels = set(self._cancel)
            self._cancel.clear()
        for job_id in cancels - {job_id for job_id, _ in items}:
            job = self.store.get(job_id)
            if job is not None and job.status == "running":  # claimed, its process not listed yet
                with self._lock:
                    self._cancel.add(job_id)
        for job_id, running in items:
            ended: tuple[str, dict | None, dict | None] | None = None
            if job_id in cancels:
                running.process.kill()
                ended = ("canceled", None, {"kind": "canceled", "message": "canceled by request"})
            elif running.connection.poll():
                try:
                    status, payload = running.connection.recv()
                except EOFError:
                    status, payload = "failed", {"kind": "error", "message": "the solver process ended without a result"}
                ended = (status, payload, None) if status == "succeeded" else (status, None, payload)
            elif not running.process.is_alive():
                ended = ("failed", None, {"kind": "error",
                                          "message": f"the solver process exited with code {running.process.exitcode}"})
            elif time.monotonic() > running.deadline:
                running.process.kill()
                ended = ("failed", None, {"kind": "hard_time_limit",
                                          "message": "killed at the job's hard time limit; set a lower time_limit_s"})
            if ended is None:
                continue
            status, result, error = ended
            running.process.join(timeout=5)
            running.connection.close()
            self.store.finish(job_id, status, result=result, error=error)
            with self._lock:
                self._running.pop(job_id, None)
