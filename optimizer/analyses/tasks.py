"""Independent solves run side by side: in this process, in a process pool, or on an existing Dask
cluster.  A sweep's rows and a hedge's scenario solves both go through here, so worker count,
failure handling and the cluster option mean the same in both.

A task is a picklable callable and one picklable argument.  :meth:`TaskPool.run` yields
``(index, result, error)`` as tasks finish: ``error`` is the exception a task (or its worker)
raised, so one broken task never stops the others.  A pool stays open across batches, so a
worker keeps what it cached between them (a hedge's L-shaped method rebuilds no model per round).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from optimizer.errors import ChipmixError


def default_workers(threads: int | None) -> int:
    """Workers x solver threads <= cores."""
    cores = os.cpu_count() or 1
    return max(1, cores // max(1, threads or 1))


class TaskPool:
    """``with TaskPool(workers=2) as pool: pool.results(fn, items)``; ``cluster``: a Dask
    scheduler address (needs the dask extra); ``workers <= 1``: in this process."""

    def __init__(self, workers: int = 1, cluster: str | None = None):
        self.workers, self.cluster = workers, cluster
        self._executor = self._client = None

    def __enter__(self) -> TaskPool:
        if self.cluster:
            try:
                from distributed import Client
            except ImportError:
                raise ChipmixError("--cluster needs Dask: pip install 'chipmix[dask]'") from None
            self._client = Client(self.cluster)
        elif self.workers > 1:
            self._executor = ProcessPoolExecutor(max_workers=self.workers)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)

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
