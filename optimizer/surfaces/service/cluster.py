"""Jobs on an existing Dask cluster (``chipmix serve --cluster ADDRESS``).

Each job is one Dask task, and the task runs the same job process as a local job
(optimizer.surfaces.service.job) on the worker that took it, so the memory limit, the process
group and the kill are the local ones.  A Dask task cannot be interrupted from outside, so the task
watches three things on the scheduler while its process runs:

- ``chipmix-cancel-<run>``, an Event the server sets to cancel the job or at its hard time limit;
- ``chipmix-lease-<server>``, a Variable the server renews every LEASE_RENEW_S; when it has not
  changed for LEASE_TIMEOUT_S the server is gone (killed, say), and the task kills its process, as
  a local job dies with its server.  The restarted server queues the job again and runs it anew;
- ``chipmix-progress-<run>``, a Variable the task sets to the progress reports so far, which the
  server reads for /v1/solves/{id}/progress.

The workers need chipmix installed (the same version as the server): the task imports it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from optimizer.errors import ChipmixError

log = logging.getLogger("chipmix.service")

#: How often the server renews its lease, s.
LEASE_RENEW_S = 1.0
#: A task whose server's lease has not changed for this long kills its job, s.
LEASE_TIMEOUT_S = 15.0
#: How often a task looks at its cancel event and lease, s.
TASK_POLL_S = 0.25
#: How often the server reads a running job's progress off the scheduler, s.
PROGRESS_READ_S = 0.5


class ClusterUnavailable(ChipmixError):
    """The Dask scheduler could not be reached, or Dask is not installed."""


def run_on_worker(request: dict[str, Any], memory_mb: int | None, names: dict[str, str]) -> tuple[str, dict]:
    """The Dask task of one job: its job process, watched (see the module docstring)."""
    from distributed import Event, Variable

    from optimizer.surfaces.service.job import JobProcess

    cancel, lease, progress = Event(names["cancel"]), Variable(names["lease"]), Variable(names["progress"])
    job = JobProcess(request, memory_mb, name=names["run"])
    records: list[list] = []
    seen, seen_at = None, time.monotonic()
    try:
        while True:
            reports = job.take_progress()
            if reports:
                records.extend(reports)
                progress.set(records)
            answer = job.outcome()
            if answer is not None:
                return answer
            try:
                if cancel.wait(timeout=TASK_POLL_S):
                    return "canceled", {"kind": "canceled", "message": "stopped by the server"}
                value = lease.get(timeout=TASK_POLL_S)
            except Exception:  # the scheduler is out of reach: the lease stops changing, which decides
                value = seen
                time.sleep(TASK_POLL_S)
            if value != seen:
                seen, seen_at = value, time.monotonic()
            elif time.monotonic() - seen_at > LEASE_TIMEOUT_S:
                log.warning("job %s: its server's lease lapsed; stopping it", names["run"])
                return "failed", {"kind": "error", "message": "the server that started the job went away"}
    finally:
        job.kill()
        # The server may have released the job already; what it shared on the scheduler goes with it.
        for cleanup in (cancel.clear, progress.delete):
            try:
                cleanup()
            except Exception:
                pass


@dataclass
class _Task:
    future: Any
    names: dict[str, str]
    read_at: float = 0.0
    read: int = 0  # progress records handed on so far


class ClusterJobs:
    """The runner's executor for a Dask cluster: one task per job, on the scheduler at ``address``."""

    def __init__(self, address: str, memory_mb: int | None, connect_timeout_s: float = 10.0):
        try:
            from distributed import Client, Variable
        except ImportError as exc:
            raise ClusterUnavailable(f"--cluster needs Dask: pip install 'chipmix[dask]' ({exc})") from None
        self.address = address
        self.memory_mb = memory_mb
        try:
            self.client = Client(address, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterUnavailable(f"--cluster {address}: no Dask scheduler answered ({exc})") from None
        self._lease = Variable(f"chipmix-lease-{uuid.uuid4().hex}", client=self.client)
        self._lease.set(0)
        self._stop = threading.Event()
        self._lease_thread = threading.Thread(target=self._renew, name="chipmix-lease", daemon=True)
        self._lease_thread.start()

    def _renew(self) -> None:
        count = 0
        while not self._stop.wait(LEASE_RENEW_S):
            count += 1
            try:
                self._lease.set(count)
            except Exception as exc:  # the scheduler is out of reach; problem() says so
                log.warning("could not renew the job lease on %s: %s", self.address, exc)

    def start(self, job_id: str, request: dict[str, Any]) -> _Task:
        run = f"{job_id[:8]}-{uuid.uuid4().hex[:8]}"
        names = {"run": run, "cancel": f"chipmix-cancel-{run}", "progress": f"chipmix-progress-{run}",
                 "lease": self._lease.name}
        from distributed import Variable

        # Set before the task starts, so that reading it never waits on the scheduler.
        Variable(names["progress"], client=self.client).set([])
        future = self.client.submit(run_on_worker, request, self.memory_mb, names, key=f"chipmix-job-{run}", pure=False)
        return _Task(future, names)

    def take_progress(self, handle: _Task) -> list[list]:
        from distributed import Variable

        now = time.monotonic()
        if now - handle.read_at < PROGRESS_READ_S:
            return []
        handle.read_at = now
        try:
            records = Variable(handle.names["progress"], client=self.client).get(timeout=0.05)
        except Exception:  # none yet, or the scheduler is slow: next time
            return []
        fresh = records[handle.read:]
        handle.read = len(records)
        return fresh

    def outcome(self, handle: _Task) -> tuple[str, dict] | None:
        future = handle.future
        if not future.done():
            return None
        if future.status == "finished":
            return tuple(future.result())
        if future.status == "error":
            exc = future.exception()
            return "failed", {"kind": "error", "message": f"the Dask cluster could not run the job "
                                                          f"({type(exc).__name__}: {exc})"}
        return "failed", {"kind": "error", "message": f"the Dask cluster dropped the job (task {future.status})"}

    def kill(self, handle: _Task) -> None:
        from distributed import Event

        try:
            Event(handle.names["cancel"], client=self.client).set()
        except Exception as exc:
            log.warning("could not cancel task %s: %s", handle.names["run"], exc)

    def release(self, handle: _Task) -> None:
        from distributed import Event, Variable

        done = handle.future.done()
        handle.future.release()
        if done:  # a running task clears these itself as it ends (after it has seen the cancel)
            for cleanup in (Event(handle.names["cancel"], client=self.client).clear,
                            Variable(handle.names["progress"], client=self.client).delete):
                try:
                    cleanup()
                except Exception:
                    pass

    def problem(self) -> str | None:
        status = self.client.status
        if status != "running":
            return f"Dask cluster {self.address}: the client is {status}"
        if not self.client.scheduler_info().get("workers"):
            return f"Dask cluster {self.address}: no workers"
        return None

    def close(self) -> None:
        self._stop.set()
        self._lease_thread.join(timeout=5)
        try:
            self.client.close(timeout=5)
        except Exception:
            pass
