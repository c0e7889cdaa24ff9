"""`chipmix serve --cluster ADDRESS`: jobs on the workers of a Dask LocalCluster, with the local
runner's limits, cancel and restart behaviour, against a real server on a loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import distributed  # a test extra: the suite runs the cluster for real
import psutil
import pytest

from optimizer.surfaces.service.cluster import LEASE_TIMEOUT_S
from tests.helpers import instance_data
from tests.test_service import DEFAULT, ROOT, Server, long_job, request, wait
from tests.test_service_hardening import _descendants, _gone, _until as until


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as local, \
            distributed.Client(local) as client:
        yield local, client


def worker_pids(client) -> list[int]:
    return list(client.run(os.getpid).values())


def job_processes(pid: int) -> list[psutil.Process]:
    return _descendants(pid, "optimizer.surfaces.service.job")


def on_workers(client) -> list[psutil.Process]:
    return [process for pid in worker_pids(client) for process in job_processes(pid)]


def gone(processes: list[psutil.Process], timeout: float) -> bool:
    return not _gone(processes, timeout)


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    local, _ = cluster
    running = Server(tmp_path_factory.mktemp("cluster") / "jobs.sqlite", "--workers", "2",
                     "--cluster", local.scheduler_address).start()
    yield running
    running.stop()


def test_a_job_runs_on_a_cluster_worker_and_its_plan_is_checked(cluster, server):
    _, client = cluster
    job = request(server, "POST", "/v1/solves", long_job("on-the-cluster"))[1]
    wait(server, job["id"], until=("running",))
    # The job's process is the worker's child, not the server's.
    assert until(lambda: on_workers(client)), "no job process on the cluster's worker"
    assert not job_processes(server.process.pid), "the job ran beside the server"
    # Progress comes back from the worker while the job runs.
    records = until(lambda: request(server, "GET", f"/v1/solves/{job['id']}/progress")[1]["progress"])
    assert records[0]["seconds"] >= 0
    assert request(server, "DELETE", f"/v1/solves/{job['id']}")[0] == 200
    quick = request(server, "POST", "/v1/solves", {"instance": instance_data()})[1]
    done = wait(server, quick["id"])
    assert done["status"] == "succeeded" and done["checker"]["ok"], done
    assert request(server, "GET", "/readyz")[0] == 200


def test_cancel_ends_the_job_process_on_the_worker(cluster, server):
    _, client = cluster
    job = request(server, "POST", "/v1/solves", long_job("cancel-on-the-cluster"))[1]
    wait(server, job["id"], until=("running",))
    victims = until(lambda: on_workers(client))
    assert request(server, "DELETE", f"/v1/solves/{job['id']}")[1]["status"] == "canceled"
    assert gone(victims, timeout=15), "the job process went on running on the worker after its job was canceled"


def test_the_hard_time_limit_and_the_memory_limit_hold_on_the_cluster(cluster, tmp_path):
    local, client = cluster
    strict = Server(tmp_path / "jobs.sqlite", "--workers", "2", "--grace", "0.5", "--job-memory-mb", "150",
                    "--cluster", local.scheduler_address).start()
    try:
        # 150 MB of address space: the job process cannot even load the default week.
        starved = wait(strict, request(strict, "POST", "/v1/solves", {"instance": DEFAULT})[1]["id"])
        assert starved["status"] == "failed" and starved["error"]["kind"] == "memory_limit", starved
    finally:
        strict.stop()
    hasty = Server(tmp_path / "hasty.sqlite", "--workers", "1", "--grace", "0.5",
                   "--cluster", local.scheduler_address).start()
    try:
        # Hard limit 0.001 s + 0.5 s grace: the job process needs longer than that to start and load the week.
        body = {"instance": {**DEFAULT, "name": "hasty"}, "options": {"time_limit_s": 0.001}}
        job = request(hasty, "POST", "/v1/solves", body)[1]
        victims = until(lambda: on_workers(client))
        ended = wait(hasty, job["id"])
        assert ended["status"] == "failed" and ended["error"]["kind"] == "hard_time_limit", ended
        assert gone(victims, timeout=15), "the job process outlived its hard time limit"
    finally:
        hasty.stop()


def test_a_killed_server_s_jobs_stop_on_the_cluster_and_run_again_after_a_restart(cluster, tmp_path):
    local, client = cluster
    db = tmp_path / "jobs.sqlite"
    first = Server(db, "--workers", "1", "--cluster", local.scheduler_address).start()
    body = {"instance": {**DEFAULT, "name": "restart-on-the-cluster"}, "options": {"mip_rel_gap": 0.0, "time_limit_s": 20}}
    try:
        job = request(first, "POST", "/v1/solves", body)[1]
        wait(first, job["id"], until=("running",))
        victims = until(lambda: on_workers(client))
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        # Its lease lapses, and the task kills its job process.
        assert gone(victims, timeout=LEASE_TIMEOUT_S + 15), "the job went on running after its server died"
    finally:
        first.stop()
    second = Server(db, "--workers", "1", "--cluster", local.scheduler_address).start()
    try:
        again = wait(second, job["id"], timeout=180)
        assert again["status"] == "succeeded" and again["checker"]["ok"], again
    finally:
        second.stop()


def test_an_unreachable_cluster_is_a_clear_error_at_start(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "optimizer.surfaces.cli", "serve", "--no-auth", "--db", str(tmp_path / "jobs.sqlite"),
         "--cluster", "tcp://127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done
    assert "--cluster tcp://127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
