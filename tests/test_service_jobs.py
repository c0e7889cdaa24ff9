"""Lock-in tables and sweeps as service jobs: the same lifecycle as solves, the same rows as the
CLI's, and their inputs validated with field paths before they are queued."""

from __future__ import annotations

import pytest

import optimizer
from optimizer.analyses.lockin import lockin_table, sweep
from optimizer.analyses.scenarios import scenarios_from_data
from tests.helpers import chip, inference, instance_data, pool, site
from tests.test_service import DEFAULT, Server, request, wait

OPTIONS = {"mip_rel_gap": 0.0, "time_limit_s": 60}
SMALL = instance_data(
    hours=3,
    chips=[chip("h100"), chip("tpu", vendor="google", peak_tflops=500.0)],
    sites=[site("aws-east", cloud="aws"), site("gcp-c", cloud="gcp", region="us-central1")],
    pools=[pool("aws-h100", site="aws-east", usd_per_chip_hour=4.0, available=8),
           pool("gcp-tpu", site="gcp-c", chip="tpu", usd_per_chip_hour=1.5, available=8)],
    workloads=[inference("chat", demand_pflops=[2.0, 3.0, 1.0], efficiency={"h100": 0.5, "tpu": 0.5},
                         unmet_usd_per_pflops_hour=20.0)],
)
SCENARIOS = {"scenarios": [{"name": "tpu-dear", "changes": [{"kind": "price", "match": {"vendor": "google"}, "scale": 3.0}]}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("jobs") / "jobs.sqlite", "--workers", "2").start()
    yield running
    running.stop()


def comparable(rows):
    keys = ("scenario", "view", "plan", "status", "total_usd", "unmet_pflops_hours")
    return sorted(tuple(round(r[k], 6) if isinstance(r.get(k), float) else r.get(k) for k in keys) for r in rows)


def test_a_lockin_job_gives_the_rows_the_cli_gives(server):
    status, job, headers = request(server, "POST", "/v1/lockins", {"instance": SMALL, "options": OPTIONS})
    assert status == 202 and job["kind"] == "lockin" and headers["location"] == f"/v1/jobs/{job['id']}"
    done = wait(server, job["id"])
    assert done["status"] == "succeeded", done
    result = request(server, "GET", f"/v1/jobs/{job['id']}/result")[1]
    local = lockin_table(optimizer.instance_from_data(SMALL), optimizer.SolveOptions(**OPTIONS))
    assert result["kind"] == "lockin" and comparable(result["rows"]) == comparable(local.to_dict("records"))
    assert {r["plan"] for r in result["rows"]} == {"multi", "vendor=nvidia", "vendor=google", "cloud=aws", "cloud=gcp",
                                                   "greedy"}


def test_a_sweep_job_gives_the_rows_the_cli_gives(server):
    body = {"instance": SMALL, "scenarios": SCENARIOS, "options": OPTIONS, "restrictions": ["multi", "vendor=google"]}
    status, job, _ = request(server, "POST", "/v1/sweeps", body)
    assert status == 202 and job["kind"] == "sweep"
    assert wait(server, job["id"])["status"] == "succeeded"
    result = request(server, "GET", f"/v1/jobs/{job['id']}/result")[1]
    instance = optimizer.instance_from_data(SMALL)
    local = sweep(instance, scenarios_from_data(SCENARIOS, instance), ["multi", "vendor=google"],
                  optimizer.SolveOptions(**OPTIONS), workers=1)
    assert comparable(result["rows"]) == comparable(local.to_dict("records"))
    assert {r["view"] for r in result["rows"]} == {"reoptimised", "reservations_held"}


@pytest.mark.parametrize("path, body, where", [
    ("/v1/lockins", {"instance": SMALL, "restrictions": ["vendor=amd"]}, "restrictions[0]"),
    ("/v1/lockins", {"instance": SMALL, "greedy": "yes"}, "greedy"),
    ("/v1/sweeps", {"instance": SMALL, "scenarios": {"scenarios": [{"name": "x", "changes": [
        {"kind": "price", "match": {"pool": "nope"}, "scale": 2.0}]}]}}, "scenarios"),
    ("/v1/sweeps", {"instance": SMALL}, "scenarios"),
])
def test_bad_analysis_requests_are_422_with_the_field(server, path, body, where):
    status, payload, _ = request(server, "POST", path, body)
    assert status == 422 and any(d["path"].startswith(where) for d in payload["detail"]), payload


def test_a_lockin_job_can_be_canceled(server):
    body = {"instance": {**DEFAULT, "name": "lockin-cancel"}, "options": {"mip_rel_gap": 0.0, "time_limit_s": 60}}
    job = request(server, "POST", "/v1/lockins", body)[1]
    wait(server, job["id"], until=("running",))
    assert request(server, "DELETE", f"/v1/jobs/{job['id']}")[0] == 200
    assert wait(server, job["id"])["status"] == "canceled"
    assert request(server, "GET", f"/v1/jobs/{job['id']}/result")[0] == 409
