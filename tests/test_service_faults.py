"""Faults under a real `chipmix serve`: its job store on a small tmpfs made read-only, filled up or
deleted, and a job's process killed.  No job may be lost or left running, /readyz must tell the
truth, and the service must recover once the fault is gone.

The store's filesystem is a tmpfs mounted for the test (root and mount are needed: CI runs as
root; elsewhere the tests are skipped and say so, and under CI=true their absence is a failure).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.test_service import DEFAULT, Server, request, wait


def _can_mount(probe: Path) -> bool:
    probe.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
    if done.returncode == 0:
        subprocess.run(["umount", str(probe)], capture_output=True)
        return True
    return False


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs for the job store; unmounted afterwards."""
    if os.geteuid() != 0 or not _can_mount(tmp_path / "probe"):
        if os.environ.get("CI"):
            pytest.fail("the store fault tests need root and mount (tmpfs); CI must run them")
        pytest.skip("the store fault tests need root and mount (tmpfs)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def remount(disk: Path, mode: str) -> None:
    """remount,ro can be refused while a connection has a file open for writing: try again."""
    for _ in range(100):
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], capture_output=True).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"could not remount {disk} {mode}")


@contextlib.contextmanager
def serving(db: Path, *flags: str):
    server = Server(db, "--workers", "1", "--grace", "5", *flags).start()
    try:
        yield server
    finally:
        server.stop()


def job_body(name: str, seconds: float) -> dict:
    """The default week at a zero gap, stopped by its time limit: it runs about ``seconds``."""
    return {"instance": {**DEFAULT, "name": name}, "options": {"mip_rel_gap": 0.0, "time_limit_s": seconds}}


def quick_body(name: str) -> dict:
    return {"instance": {**DEFAULT, "name": name}, "options": {"mip_rel_gap": 0.05, "time_limit_s": 30}}


def ready(server: Server) -> tuple[int, dict]:
    status, body, _ = request(server, "GET", "/readyz")
    return status, body


def until(check, timeout: float = 60.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not reached in {timeout} s")


def solver_processes(server: Server) -> list[psutil.Process]:
    """The server's job processes (optimizer.surfaces.service.job processes and their HiGHS workers)."""
    out = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(child.cmdline())
            if "service.job" in line or "highs.worker" in line:
                out.append(child)
    return out


def no_job_left(server: Server, *job_ids: str) -> None:
    for job_id in job_ids:
        job = wait(server, job_id, timeout=120)
        assert job["status"] in ("succeeded", "failed", "canceled")
    until(lambda: not solver_processes(server), timeout=20)
    status, body = ready(server)
    assert status == 200 and body["running"] == 0 and body["unrecorded"] == 0, body


def test_a_read_only_store_holds_results_and_recovers(small_disk):
    with serving(small_disk / "jobs.sqlite") as server:
        first = request(server, "POST", "/v1/solves", job_body("ro-first", 4))[1]
        wait(server, first["id"], until=("running",), timeout=60)
        remount(small_disk, "ro")
        # The store cannot take a job: the service says so, instead of answering 202.
        status, body, headers = request(server, "POST", "/v1/solves", quick_body("ro-refused"))
        assert status == 503 and body["detail"][0]["path"] == "store" and headers.get("retry-after") == "5"
        status, body = ready(server)
        assert status == 503 and any("job store" in p for p in body["problems"])
        # The running job ends while the store is read-only: its plan is held, not lost.
        until(lambda: ready(server)[1].get("unrecorded") == 1 or None, timeout=90)
        remount(small_disk, "rw")
        job = wait(server, first["id"], timeout=60)
        assert job["status"] == "succeeded" and job["checker"]["ok"]
        until(lambda: ready(server)[0] == 200, timeout=30)
        second = request(server, "POST", "/v1/solves", quick_body("ro-after"))
        assert second[0] == 202
        assert wait(server, second[1]["id"])["status"] == "succeeded"
        no_job_left(server, first["id"], second[1]["id"])


def test_a_full_disk_fails_cleanly_and_recovers_when_space_returns(small_disk):
    with serving(small_disk / "jobs.sqlite") as server:
        first = request(server, "POST", "/v1/solves", job_body("full-first", 4))[1]
        wait(server, first["id"], until=("running",), timeout=60)
        filler = small_disk / "filler"
        with filler.open("wb") as handle:  # take every byte the tmpfs has left
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
        until(lambda: ready(server)[0] == 503 or None, timeout=30)
        # The job ends; its plan cannot be written.  It is retried, then recorded as failed with the
        # reason if the store takes that much, or held until space returns.
        until(lambda: ready(server)[1].get("unrecorded") == 1 or request(server, "GET", f"/v1/solves/{first['id']}")[1]
              .get("status") == "failed" or None, timeout=90)
        filler.unlink()
        job = wait(server, first["id"], timeout=60)
        if job["status"] == "failed":
            assert job["error"]["kind"] == "store_error" and "could not record the plan" in job["error"]["message"]
        else:
            assert job["status"] == "succeeded" and job["checker"]["ok"]
        until(lambda: ready(server)[0] == 200, timeout=30)
        second = request(server, "POST", "/v1/solves", quick_body("full-after"))
        assert second[0] == 202 and wait(server, second[1]["id"])["status"] == "succeeded"
        no_job_left(server, first["id"], second[1]["id"])


def test_a_deleted_store_is_recreated_and_the_service_goes_on(small_disk):
    db = small_disk / "jobs.sqlite"
    with serving(db) as server:
        done = request(server, "POST", "/v1/solves", quick_body("before-delete"))[1]
        assert wait(server, done["id"])["status"] == "succeeded"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        # The jobs went with the file: a clear 404, not a 500, and new jobs run.
        status, body, _ = request(server, "GET", f"/v1/solves/{done['id']}")
        assert status == 404, body
        # The store is recreated on its next use: ready again within moments (a loaded machine
        # can show one 503 between the delete and the new file).
        until(lambda: ready(server)[0] == 200 or None, timeout=30)
        after = request(server, "POST", "/v1/solves", quick_body("after-delete"))
        assert after[0] == 202 and wait(server, after[1]["id"])["status"] == "succeeded"
        no_job_left(server, after[1]["id"])


def test_a_killed_job_process_fails_its_job_and_the_next_runs(small_disk):
    with serving(small_disk / "jobs.sqlite") as server:
        doomed = request(server, "POST", "/v1/solves", job_body("killed", 30))[1]
        wait(server, doomed["id"], until=("running",), timeout=60)
        victims = until(lambda: [p for p in solver_processes(server) if "service.job" in " ".join(p.cmdline())], timeout=30)
        for victim in victims:
            victim.kill()
        job = wait(server, doomed["id"], timeout=60)
        assert job["status"] == "failed" and job["error"]["kind"] == "error" and "code -9" in job["error"]["message"]
        after = request(server, "POST", "/v1/solves", quick_body("after-kill"))
        assert after[0] == 202 and wait(server, after[1]["id"])["status"] == "succeeded"
        no_job_left(server, doomed["id"], after[1]["id"])
