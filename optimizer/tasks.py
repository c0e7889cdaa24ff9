"""Independent solves run side by side: in this process, in a process pool, or on an existing Dask
cluster.  A sweep's rows, a hedge's scenario solves and the hour decomposition's per-hour MILPs
all go through here, so worker count, failure handling and the cluster option mean the same in
all of them.

A task is a picklable callable and one picklable argument.  :meth:`TaskPool.run` yields
``(index, result, error)`` as tasks finish: ``error`` is the exception a task (or its worker)
raised, so one broken task never stops the others.  A pool stays open across batches, so a
worker keeps what it cached between them (a hedge's L-shaped method rebuilds no model per round).
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from optimizer.errors import ChipmixError


def default_workers(threads: int | None) -> int:
    """Workers x solver threads <= cores."""
    cores = os.cpu_count() or 1
    return max(1, cores // max(1, threads or 1))


class TaskPool:
    """``with TaskPool(workers=2) as pool: pool.results(fn, items)``; ``cluster``: a Dask
    scheduler address (needs the dask extra); ``workers <= 1``: in this process.  ``fresh``: the
    workers are new interpreters (:class:`ChildPool`), not forks of this process."""

    def __init__(self, workers: int = 1, cluster: str | None = None, fresh: bool = False):
        self.workers, self.cluster, self.fresh = workers, cluster, fresh
        self._executor = self._client = None

    def __enter__(self) -> TaskPool:
        if self.cluster:
            try:
                from distributed import Client
            except ImportError:
                raise ChipmixError("--cluster needs Dask: pip install 'chipmix[dask]'") from None
            try:
                self._client = Client(self.cluster, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ChipmixError(f"--cluster {self.cluster}: no Dask scheduler answered ({exc})") from None
        elif self.workers > 1:
            self._executor = ChildPool(self.workers) if self.fresh else ProcessPoolExecutor(max_workers=self.workers)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)

    def cluster_workers(self) -> int:
        """Workers the Dask cluster has now (0 without a cluster)."""
        if self._client is None:
            return 0
        return len(self._client.scheduler_info().get("workers", {}))

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        """``(index, result, None)`` or ``(index, None, error)`` per item, as tasks finish."""
        if not items:
            return
        if self._client is not None:
            from distributed import as_completed as dask_completed

            futures = self._client.map(fn, list(items), pure=False)
            index_of = {future.key: index for index, future in enumerate(futures)}
            for future in dask_completed(futures):
                try:
                    yield index_of[future.key], future.result(), None
                except Exception as exc:  # noqa: BLE001 - reported per task
                    yield index_of[future.key], None, exc
        elif self._executor is not None:
            futures = {self._executor.submit(fn, item): index for index, item in enumerate(items)}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result(), None
                except Exception as exc:  # noqa: BLE001 - a dead worker fails its task only
                    yield futures[future], None, exc
        else:
            for index, item in enumerate(items):
                try:
                    yield index, fn(item), None
                except Exception as exc:  # noqa: BLE001
                    yield index, None, exc

    def results(self, fn: Callable[[Any], Any], items: Sequence[Any],
                on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Every task's result in input order; the first error is raised once all have run."""
        out: list[Any] = [None] * len(items)
        failure: BaseException | None = None
        for index, result, error in self.run(fn, items):
            if error is not None:
                failure = failure or error
                continue
            out[index] = result
            if on_done:
                on_done(index, result)
        if failure is not None:
            raise failure
        return out


def run_tasks(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int = 1,
              cluster: str | None = None) -> Iterator[tuple[int, Any, BaseException | None]]:
    """One batch on a pool of its own (see :meth:`TaskPool.run`)."""
    if not items:
        return
    with TaskPool(min(workers, len(items)), cluster) as pool:
        yield from pool.run(fn, items)


#: What a ChildPool worker runs (``-c``, not ``-m``: the package, imported first, already holds
#: this module).
CHILD_CODE = "from optimizer.tasks import child_main; child_main()"


class ChildPool:
    """A process pool of fresh interpreters (:data:`CHILD_CODE`), fed pickled
    ``(fn, item)`` on stdin.  For work that runs HiGHS: a fork of a process that has run HiGHS can
    inherit its thread pool half-made, and the ``spawn``/``forkserver`` start methods re-run the
    caller's main script, which breaks any script without a ``__main__`` guard.  Same
    ``submit``/``shutdown`` as :class:`~concurrent.futures.ProcessPoolExecutor`."""

    def __init__(self, workers: int):
        from concurrent.futures import Future

        self._future = Future
        self._tasks: queue.Queue = queue.Queue()
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._children = [subprocess.Popen([sys.executable, "-c", CHILD_CODE], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, env=env) for _ in range(workers)]
        self._threads = [threading.Thread(target=self._serve, args=(child,), daemon=True) for child in self._children]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, item):
        future = self._future()
        self._tasks.put((future, fn, item))
        return future

    def _serve(self, child: subprocess.Popen) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, fn, item = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                pickle.dump((fn, item), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                child.stdin.flush()
                kind, answer = pickle.load(child.stdout)
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                future.set_exception(RuntimeError(f"a worker process died (exit code {child.poll()}): {exc}"))
                self._drain(RuntimeError("the worker processes died"))
                return
            if kind == "ok":
                future.set_result(answer)
            else:
                future.set_exception(answer)

    def _drain(self, error: BaseException) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            if task is not None and task[0].set_running_or_notify_cancel():
                task[0].set_exception(error)

    def shutdown(self, cancel_futures: bool = False) -> None:
        if cancel_futures:
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].cancel()
        for _ in self._threads:
            self._tasks.put(None)
        for child in self._children:
            try:
                child.stdin.close()  # the child ends at the end of its input
            except OSError:
                pass
        for child in self._children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def child_main() -> None:
    """A :class:`ChildPool` worker: (fn, item) in, ("ok", result) or ("error", exception) out."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a task's prints must not corrupt the answers
    while True:
        try:
            fn, item = pickle.load(stdin)
        except EOFError:
            return
        try:
            answer = ("ok", fn(item))
        except Exception as exc:  # noqa: BLE001 - sent back to the caller as the task's error
            answer = ("error", exc)
        try:
            pickle.dump(answer, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
            pickle.dump(("error", RuntimeError(f"the task's answer could not be sent: {exc}")), stdout)
        stdout.flush()
