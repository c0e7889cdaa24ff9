"""optimizer.client against a real `chipmix serve`: submit, wait, plan, progress, cancel, retries
on 429, errors with field paths; and /metrics."""

from __future__ import annotations

import re
import time

import pytest

import optimizer
from optimizer.client import Client, ClientError, JobFailed
from tests.helpers import instance_data, pool, inference
from tests.test_service import DEFAULT, ROOT, Server


@pytest.fixture
def serving(tmp_path):
    servers = []

    def start(*flags):
        server = Server(tmp_path / f"jobs-{len(servers)}.sqlite", *flags).start()
        servers.append(server)
        return server, Client(server.url)

    yield start
    for server in servers:
        server.stop()


def test_submit_wait_plan_and_progress(serving):
    server, client = serving()
    instance = optimizer.load_instance(ROOT / "instances" / "default.yaml")
    plan = client.solve(instance, {"mip_rel_gap": 0.01, "time_limit_s": 60})
    assert plan["checker"]["ok"] and plan["summary"]["instance_sha256"] == instance.sha256()
    job = client.submit(ROOT / "instances" / "default.yaml", {"mip_rel_gap": 0.01, "time_limit_s": 60},
                        idempotency_key="same")
    assert client.submit(ROOT / "instances" / "default.yaml", {"mip_rel_gap": 0.01, "time_limit_s": 60},
                         idempotency_key="same")["id"] == job["id"]
    done = client.wait(job["id"], timeout=120)
    assert done["status"] == "succeeded"
    records = client.progress(job["id"])
    assert records and all(r["bound_usd"] is None or r["incumbent_usd"] is None or r["bound_usd"] <= r["incumbent_usd"] + 1e-6
                           for r in records)
    assert records[-1]["incumbent_usd"] == pytest.approx(done["summary"]["objective_usd"], rel=1e-6)
    assert client.plan_file(job["id"], "allocations.csv").startswith("hour,workload,pool,chips")


def test_progress_is_live_while_a_job_runs_and_cancel_ends_it(serving):
    server, client = serving()
    job = client.submit(DEFAULT, {"mip_rel_gap": 0.0, "time_limit_s": 120})
    deadline = time.monotonic() + 90
    records = []
    while time.monotonic() < deadline and not records:
        if client.status(job["id"])["status"] == "running":
            records = client.progress(job["id"])
        time.sleep(0.5)
    assert records, "no progress while the job ran"
    assert client.cancel(job["id"])["status"] in ("canceled", "running")
    assert client.wait(job["id"], timeout=30)["status"] == "canceled"
    with pytest.raises(ClientError) as caught:
        client.plan(job["id"])
    assert caught.value.status == 409


def test_a_full_queue_is_retried_after_retry_after(serving):
    server, client = serving("--workers", "1", "--max-queued", "1")
    first = client.submit(DEFAULT, {"mip_rel_gap": 0.0, "time_limit_s": 4})
    # The second runs long enough that the third, admitted once the first ends, is still queued
    # when the fourth comes (with two 4 s jobs a slow retry could find both done: a race).
    second = client.submit(DEFAULT, {"mip_rel_gap": 0.0, "time_limit_s": 15, "random_seed": 1})
    # The queue holds one: a third is 429 until the first ends; the client waits and retries.
    patient = Client(server.url, retries=20)
    third = patient.submit(DEFAULT, {"mip_rel_gap": 0.0, "time_limit_s": 4, "random_seed": 2})
    with pytest.raises(ClientError) as refused:  # the queue is full again: without retries, a 429
        Client(server.url, retries=0).submit(DEFAULT, {"mip_rel_gap": 0.0, "time_limit_s": 4, "random_seed": 3})
    assert refused.value.status == 429
    for job in (first, second, third):
        assert patient.wait(job["id"], timeout=120)["status"] == "succeeded"


def test_errors_name_the_field_and_a_failed_job_raises(serving):
    server, client = serving()
    bad = instance_data()
    bad["pools"][0]["chip"] = "nope"
    with pytest.raises(ClientError) as caught:
        client.submit(bad)
    assert caught.value.status == 422 and "instance.pools[0](p).chip" in str(caught.value)
    infeasible = instance_data(pools=[pool("p", available=1)], workloads=[inference("a"), inference("b")])
    with pytest.raises(JobFailed) as failed:
        client.solve(infeasible, timeout=120)
    assert failed.value.job["error"]["kind"] == "infeasible"


def test_metrics_count_jobs_in_prometheus_format(serving):
    server, client = serving()
    client.solve(instance_data(), timeout=120)
    text = client._call("GET", "/metrics", raw=True)
    assert re.search(r'^chipmix_jobs\{status="succeeded"\} 1$', text, re.M)
    assert re.search(r"^chipmix_queue_length 0$", text, re.M)
    assert re.search(r'^chipmix_solve_seconds_bucket\{le="\+Inf"\} 1$', text, re.M)
    assert re.search(r"^chipmix_solve_seconds_count 1$", text, re.M)
    assert "# TYPE chipmix_solve_seconds histogram" in text
