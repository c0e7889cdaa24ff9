"""Solve jobs kept in SQLite, so a restarted server loses none.

One row per job: its request (instance and options, as JSON), status, timings, and the plan or the
error once it ends.  Every call opens its own connection (WAL mode), so the event loop and the
runner thread never share one.  A job that was ``running`` when the server stopped is queued again
at start-up: solves are deterministic, so running it again gives the same plan.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

#: Separates a job's tenant from its Idempotency-Key in the stored key.
_KEY_SEPARATOR = "\x1f"
STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
FINISHED = ("succeeded", "failed", "canceled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    instance_name TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, checked_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    instance_name: str
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    idempotency_key: str | None
    request_hash: str
    tenant: str = ""

    def public(self) -> dict[str, Any]:
        """What GET /v1/solves/{id} returns: status, timings, options, summary or error."""
        def iso(stamp: float | None) -> str | None:
            return None if stamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))

        queued_until = self.started_at or self.finished_at
        return {
            "id": self.id,
            "kind": self.request.get("kind", "solve"),
            "status": self.status,
            "instance": self.instance_name,
            "options": self.request.get("options", {}),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "queue_seconds": None if queued_until is None else round(queued_until - self.created_at, 3),
            "run_seconds": None if self.started_at is None or self.finished_at is None
            else round(self.finished_at - self.started_at, 3),
            "summary": (self.result or {}).get("summary"),
            "checker": (self.result or {}).get("checker"),
            "error": self.error,
        }


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


class JobStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # serialises writes that read-then-write
        self._create_lock = threading.Lock()
        with self._connect() as db:
            columns = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            if "tenant" not in columns:  # a store from before tenants: its jobs are the anonymous tenant's
                db.execute("ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")
            db.execute("UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'")

    def _create(self) -> None:
        """The file and its tables, when the file is missing (first start, or deleted under a
        running server: the jobs it held are gone with it, and the service goes on with none).
        A -wal or -shm file left by the deleted one would be replayed into the new file: removed."""
        with self._create_lock:
            if self.path != ":memory:" and Path(self.path).exists():
                return
            for suffix in ("-wal", "-shm"):
                Path(self.path + suffix).unlink(missing_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                db.commit()
            finally:
                db.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.path == ":memory:" or not Path(self.path).exists():
            self._create()
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        return Job(
            id=row["id"],
            status=row["status"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            instance_name=row["instance_name"],
            request=json.loads(row["request"]),
            result=None if row["result"] is None else json.loads(row["result"]),
            error=None if row["error"] is None else json.loads(row["error"]),
            idempotency_key=row["idempotency_key"].split(_KEY_SEPARATOR, 1)[-1] if row["idempotency_key"] else None,
            request_hash=row["request_hash"],
            tenant=row["tenant"],
        )

    def submit(self, request: dict[str, Any], request_hash: str, instance_name: str, idempotency_key: str | None,
               max_queued: int, tenant: str = "") -> tuple[Job, bool]:
        """Queue a job; with a known Idempotency-Key return that job instead.

        Returns (job, created).  Raises IdempotencyConflict for a reused key with another body,
        and QueueFull when ``max_queued`` jobs already wait.
        """
        if idempotency_key is not None:  # a key is its tenant's own: two tenants may use the same one
            idempotency_key = f"{tenant}{_KEY_SEPARATOR}{idempotency_key}"
        with self._lock, self._connect() as db:
            if idempotency_key is not None:
                row = db.execute("SELECT * FROM jobs WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
                if row is not None:
                    if row["request_hash"] != request_hash:
                        raise IdempotencyConflict(idempotency_key)
                    return self._job(row), False
            queued = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
            if queued >= max_queued:
                raise QueueFull(queued)
            job_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO jobs (id, idempotency_key, request_hash, status, created_at, instance_name, request, tenant) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, idempotency_key, request_hash, time.time(), instance_name, json.dumps(request), tenant),
            )
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()), True

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None; with ``tenant``, only a job of that tenant (another's does not exist)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (tenant is not None and row["tenant"] != tenant):
            return None
        return self._job(row)

    def claim_next(self) -> Job | None:
        """The oldest queued job, marked running (or None)."""
        with self._lock, self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?", (time.time(), row["id"]))
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

    def finish(self, job_id: str, status: str, *, result: dict | None = None, error: dict | None = None) -> bool:
        """Record how a running or queued job ended; False if it had already ended."""
        if status not in FINISHED:
            raise ValueError(status)
        with self._lock, self._connect() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (status, time.time(), None if result is None else json.dumps(result),
                 None if error is None else json.dumps(error), job_id),
            ).rowcount
        return changed == 1

    def metrics(self) -> tuple[dict[str, int], list[float]]:
        """Jobs by status, and the seconds each finished (succeeded or failed) job ran."""
        with self._connect() as db:
            counts = dict(db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
            seconds = [row[0] for row in db.execute(
                "SELECT finished_at - started_at FROM jobs WHERE status IN ('succeeded', 'failed') "
                "AND started_at IS NOT NULL AND finished_at IS NOT NULL").fetchall()]
        return counts, seconds

    def count(self, status: str) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0]

    def ping(self) -> str | None:
        """None if the store takes a write now; otherwise why not.  A read alone would pass on a
        read-only or full disk, where no job can be queued or finished."""
        try:
            with self._connect() as db:
                db.execute("INSERT OR REPLACE INTO health (id, checked_at) VALUES (1, ?)", (time.time(),))
            return None
        except (sqlite3.Error, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"


class QueueFull(Exception):
    """More queued jobs than the configured limit."""
