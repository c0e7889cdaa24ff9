"""The service against hostile or odd requests, and its solver processes under cancel and a killed
server: a real `chipmix serve` on a loopback port."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from optimizer.surfaces.service.job import JobProcess, job_result
from tests.helpers import instance_data
from tests.test_service import DEFAULT, ROOT, Server, request, wait


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("hardening") / "jobs.sqlite", "--workers", "2").start()
    yield running
    running.stop()


def detail(payload) -> list[tuple[str, str]]:
    return [(entry["path"], entry["reason"]) for entry in payload["detail"]]


def test_infinity_in_a_json_body_is_a_422_with_the_field_path(server):
    body = '{"instance": %s}' % __import__("json").dumps(instance_data()).replace('"usd_per_chip_hour": 1.0', '"usd_per_chip_hour": Infinity')
    status, payload, _ = request(server, "POST", "/v1/solves", raw=body.encode())
    assert status == 422
    assert any(path == "instance.pools[0](p).usd_per_chip_hour" for path, _ in detail(payload)), payload


def test_a_huge_horizon_in_a_small_body_is_a_422(server):
    status, payload, _ = request(server, "POST", "/v1/solves", {"instance": {**instance_data(), "hours": 10_000_000}})
    assert status == 422 and detail(payload)[0][0] == "instance.hours"


def test_deep_nesting_and_huge_integers_are_422_not_500(server):
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    status, payload, _ = request(server, "POST", "/v1/solves", raw=b'{"instance": ' + deep + b"}")
    assert status == 422 and "nested too deeply" in detail(payload)[0][1]
    digits = b'{"instance": {"hours": ' + b"9" * 5000 + b"}}"
    status, payload, _ = request(server, "POST", "/v1/solves", raw=digits)
    assert status == 422 and detail(payload)[0][0] == "body"


def test_options_null_is_refused(server):
    status, payload, _ = request(server, "POST", "/v1/solves", {"instance": instance_data(), "options": None})
    assert status == 422 and detail(payload)[0][0] == "options"


def test_a_job_error_carries_no_server_traceback():
    status, payload = job_result({"instance": instance_data(), "options": {"no_such_option": 1}})
    assert status == "failed" and payload["kind"] == "error"
    assert "traceback" not in payload and str(ROOT) not in payload["message"]


def test_a_job_over_its_memory_limit_fails_with_that_reason():
    job = JobProcess({"instance": DEFAULT, "options": {}}, 150)
    try:
        answer = _until(job.outcome, timeout=120)
    finally:
        job.kill()
    status, payload = answer
    assert status == "failed" and payload["kind"] == "memory_limit" and "150 MB" in payload["message"]


def test_a_job_process_speaks_only_its_protocol_on_stdout():
    """Every stdout line of a job process is a protocol message: progress reports, then one result
    (whatever the solvers print goes to stderr)."""
    import json
    import subprocess
    import sys

    body = {"instance": instance_data(), "options": {"engine": "pulp-cbc"}}
    done = subprocess.run([sys.executable, "-m", "optimizer.surfaces.service.job", "0"], input=json.dumps(body),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and messages, done.stderr
    assert all(message[0] == "progress" for message in messages[:-1])
    assert messages[-1][0] == "result" and messages[-1][1] == "succeeded" and messages[-1][2]["checker"]["ok"]


def _descendants(pid: int, word: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if word in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def _gone(processes: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = processes
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive


def _until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("not reached")


def test_cancelling_a_cbc_job_ends_its_cbc_process(server):
    body = {"instance": {**DEFAULT, "name": "cbc-cancel"}, "options": {"engine": "pulp-cbc", "mip_rel_gap": 0.0,
                                                                      "time_limit_s": 120}}
    job = request(server, "POST", "/v1/solves", body)[1]
    wait(server, job["id"], until=("running",))
    cbc = _until(lambda: _descendants(server.process.pid, "cbc"))
    assert request(server, "DELETE", f"/v1/solves/{job['id']}")[0] == 200
    assert wait(server, job["id"])["status"] == "canceled"
    assert not _gone(cbc), "CBC went on running after its job was canceled"


def test_a_killed_server_leaves_no_solver_running(tmp_path):
    lone = Server(tmp_path / "jobs.sqlite", "--workers", "1").start()
    try:
        body = {"instance": {**DEFAULT, "name": "orphan"}, "options": {"mip_rel_gap": 0.0, "time_limit_s": 120}}
        job = request(lone, "POST", "/v1/solves", body)[1]
        wait(lone, job["id"], until=("running",))
        solvers = _until(lambda: [p for p in _descendants(lone.process.pid, "service.job") + _descendants(
            lone.process.pid, "highs.worker")] if _descendants(lone.process.pid, "highs.worker") else None)
        os.kill(lone.process.pid, signal.SIGKILL)
        lone.process.wait()
        assert not _gone(solvers), "solver processes outlived the killed server"
    finally:
        lone.stop()
