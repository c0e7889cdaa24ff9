"""A Python client for ``chipmix serve``, for procurement tooling: submit, wait, plan, cancel.

Standard library only (no server extra needed)::

    from optimizer.client import Client
    client = Client("http://127.0.0.1:8000", api_key="cmx_...")
    job = client.submit("instances/default.yaml", {"time_limit_s": 60})
    done = client.wait(job["id"])              # the job once it has ended
    plan = client.plan(job["id"])              # summary, allocations, reservations, ..., checker
    plan = client.solve(instance)              # all three; ClientError unless it succeeded

A 429 (queue full) or 503 (store failing) is retried after its Retry-After, up to ``retries``
times; every other error is a :class:`ClientError` with the service's field paths.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FINISHED = ("succeeded", "failed", "canceled")


class ClientError(Exception):
    """The service refused or failed a call: ``status`` (HTTP) and ``detail`` (its field errors)."""

    def __init__(self, status: int, detail: Any, what: str):
        self.status, self.detail = status, detail
        if isinstance(detail, list):
            words = "; ".join(f"{d.get('path')}: {d.get('reason')}" for d in detail if isinstance(d, dict))
        else:
            words = str(detail)
        super().__init__(f"{what}: HTTP {status}: {words}")


class JobFailed(ClientError):
    """A job ended without a plan (failed or canceled); ``job`` is its last state."""

    def __init__(self, job: dict[str, Any]):
        self.job = job
        error = job.get("error") or {}
        super().__init__(200, f"{job['status']} ({error.get('kind')}): {error.get('message')}", f"job {job['id']}")


def _instance_body(instance: Any) -> Any:
    """An Instance, a dict, or a path to an instance file, as the JSON the service takes."""
    if hasattr(instance, "model_dump"):
        return instance.model_dump(mode="json")
    if isinstance(instance, (str, Path)):
        from optimizer.input.loading import read_document

        return read_document(instance)
    return instance


class Client:
    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 60.0, retries: int = 10,
                 max_wait_s: float = 30.0):
        self.url = url.rstrip("/")
        self.api_key, self.timeout, self.retries, self.max_wait_s = api_key, timeout, retries, max_wait_s

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    text = response.read().decode()
                return text if raw else json.loads(text)
            except urllib.error.HTTPError as error:
                text = error.read().decode()
                try:
                    detail = json.loads(text).get("detail", text)
                except (json.JSONDecodeError, AttributeError):
                    detail = text
                if error.code in (429, 503) and attempt < self.retries:
                    try:
                        wait = float(error.headers.get("Retry-After", "1"))
                    except ValueError:
                        wait = 1.0
                    time.sleep(min(max(wait, 0.1), self.max_wait_s))
                    continue
                raise ClientError(error.code, detail, f"{method} {path}") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def submit(self, instance: Any, options: dict[str, Any] | None = None,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue a solve; the job (its ``id``, ``status``).  An Idempotency-Key makes retries safe."""
        body: dict[str, Any] = {"instance": _instance_body(instance)}
        if options is not None:
            body["options"] = options
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._call("POST", "/v1/solves", body, headers)

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/solves/{urllib.parse.quote(job_id)}")

    def wait(self, job_id: str, timeout: float | None = None, poll_s: float = 0.5) -> dict[str, Any]:
        """The job once it has ended (TimeoutError after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.status(job_id)
            if job["status"] in FINISHED:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(poll_s)

    def plan(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/solves/{urllib.parse.quote(job_id)}/plan")

    def plan_file(self, job_id: str, name: str) -> str:
        """One plan file as text (allocations.csv, ..., summary.json, focus.csv)."""
        return self._call("GET", f"/v1/solves/{urllib.parse.quote(job_id)}/plan/{name}", raw=True)

    def progress(self, job_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/solves/{urllib.parse.quote(job_id)}/progress")["progress"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/solves/{urllib.parse.quote(job_id)}")

    def solve(self, instance: Any, options: dict[str, Any] | None = None, timeout: float | None = None,
              idempotency_key: str | None = None) -> dict[str, Any]:
        """Submit, wait and fetch the plan; JobFailed if the job ends without one."""
        job = self.submit(instance, options, idempotency_key)
        done = self.wait(job["id"], timeout)
        if done["status"] != "succeeded":
            raise JobFailed(done)
        return self.plan(job["id"])
