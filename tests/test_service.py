"""The HTTP service, driven over a real loopback socket: `chipmix serve` runs in its own process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

import optimizer
from tests.helpers import inference, instance_data, pool
from tests.test_gang import two_gangs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "instances" / "default.yaml").read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`chipmix serve` in a subprocess on a free loopback port."""

    def __init__(self, db: Path, *flags: str, no_auth: bool | None = None, env: dict[str, str] | None = None):
        # Without keys the server only starts with --no-auth on loopback (tests/test_service_auth.py
        # starts it with keys).
        if no_auth is None:
            no_auth = "--api-keys" not in flags
        if no_auth and "--no-auth" not in flags:
            flags = (*flags, "--no-auth")
        self.db, self.flags, self.env = db, flags, env
        self.headers: dict[str, str] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "optimizer.surfaces.cli", "serve", "--port", str(self.port), "--db", str(self.db), *self.flags],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stdout.read()}")
            try:
                if request(self, "GET", "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(server: Server, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **server.headers, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            text = response.read().decode()
            status, response_headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        text, status, response_headers = error.read().decode(), error.code, dict(error.headers)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = text
    return status, payload, response_headers


def wait(server: Server, job_id: str, until=("succeeded", "failed", "canceled"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, job, _ = request(server, "GET", f"/v1/solves/{job_id}")
        assert status == 200
        if job["status"] in until:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def long_job(name: str) -> dict:
    """The default week at a zero gap: it runs until its time limit (or until canceled)."""
    return {"instance": {**DEFAULT, "name": name}, "options": {"mip_rel_gap": 0.0, "time_limit_s": 60}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("service") / "jobs.sqlite"
    running = Server(db, "--workers", "2", "--max-queued", "2", "--max-body-mb", "1").start()
    yield running
    running.stop()


def test_solve_poll_plan_files_and_check(server, tmp_path):
    status, job, headers = request(server, "POST", "/v1/solves", {"instance": two_gangs(), "options": {"engine": "cpsat"}})
    assert status == 202 and job["status"] in ("queued", "running") and headers["location"] == f"/v1/solves/{job['id']}"
    done = wait(server, job["id"])
    assert done["status"] == "succeeded", done
    assert done["summary"]["objective_usd"] == pytest.approx(80.0)  # the hand-checked optimum (test_gang.py)
    assert done["checker"] == {"ok": True, "violations": []}
    assert done["run_seconds"] > 0 and done["queue_seconds"] >= 0

    status, plan, _ = request(server, "GET", f"/v1/solves/{job['id']}/plan")
    assert status == 200 and {"summary", "allocations", "reservations", "unmet", "shortfall"} <= set(plan)
    # The CSV files are the ones `chipmix solve` writes for the same instance and engine.
    local = optimizer.solve(optimizer.instance_from_data(two_gangs()), engine="cpsat").write(tmp_path / "local")
    for name in ("allocations.csv", "reservations.csv"):
        status, text, headers = request(server, "GET", f"/v1/solves/{job['id']}/plan/{name}")
        assert status == 200 and headers["content-type"].startswith("text/csv")
        assert text == (local / name).read_text(), name

    status, report, _ = request(server, "POST", "/v1/check", {"instance": two_gangs(), "plan": plan})
    assert status == 200 and report["ok"] and report["recomputed"]["total"] == pytest.approx(80.0)
    plan["allocations"] = [row for row in plan["allocations"] if row["hour"] != 4]  # preempt run A
    status, report, _ = request(server, "POST", "/v1/check", {"instance": two_gangs(), "plan": plan})
    assert status == 200 and not report["ok"]
    assert any(v.startswith("gang_run[A]") for v in report["violations"]), report


def test_idempotency_key_returns_the_same_job(server):
    body = {"instance": {**two_gangs(), "name": "idempotent"}}
    first = request(server, "POST", "/v1/solves", body, {"Idempotency-Key": "abc-1"})
    again = request(server, "POST", "/v1/solves", body, {"Idempotency-Key": "abc-1"})
    assert first[0] == 202 and again[0] == 200 and again[1]["id"] == first[1]["id"]
    other = {"instance": {**two_gangs(), "name": "something else"}}
    status, error, _ = request(server, "POST", "/v1/solves", other, {"Idempotency-Key": "abc-1"})
    assert status == 409 and error["detail"][0]["path"] == "Idempotency-Key"
    assert wait(server, first[1]["id"])["status"] == "succeeded"


def test_concurrent_submissions_all_finish(server):
    results = []

    def submit(k: int) -> None:
        data = instance_data(hours=3, pools=[pool("p", available=10 + k)], workloads=[inference(demand_pflops=float(k + 1))],
                             name=f"concurrent-{k}")
        results.append(request(server, "POST", "/v1/solves", {"instance": data}))

    # max-queued is 2 and 2 workers run: submit in waves of 4 from 4 threads at once.
    for wave in range(2):
        threads = [threading.Thread(target=submit, args=(4 * wave + k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        accepted = [job for status, job, _ in results if status == 202]
        for job in accepted:
            assert wait(server, job["id"])["status"] == "succeeded"
    accepted = [job for status, job, _ in results if status == 202]
    refused = [status for status, _, _ in results if status != 202]
    assert len(accepted) >= 4 and set(refused) <= {429}
    names = {wait(server, job["id"])["instance"] for job in accepted}
    assert len(names) == len(accepted)


def test_cancel_running_and_queued_jobs_and_the_queue_limit(server):
    # Two long jobs take both workers; two more wait (the queue limit); a fifth is refused.
    jobs = [request(server, "POST", "/v1/solves", long_job(f"long-{k}"))[1] for k in range(2)]
    for job in jobs:
        wait(server, job["id"], until=("running",), timeout=60)
    queued = [request(server, "POST", "/v1/solves", long_job(f"queued-{k}"))[1] for k in range(2)]
    assert all(job["status"] == "queued" for job in queued)
    status, error, headers = request(server, "POST", "/v1/solves", long_job("one-too-many"))
    assert status == 429 and headers["retry-after"] == "5" and error["detail"][0]["path"] == "queue"

    status, job, _ = request(server, "DELETE", f"/v1/solves/{queued[1]['id']}")
    assert status == 200 and job["status"] == "canceled"
    started = time.monotonic()
    status, job, _ = request(server, "DELETE", f"/v1/solves/{jobs[0]['id']}")
    assert status == 200 and job["status"] == "canceled" and time.monotonic() - started < 10
    assert request(server, "DELETE", f"/v1/solves/{jobs[0]['id']}")[0] == 409  # already canceled
    assert request(server, "GET", f"/v1/solves/{jobs[0]['id']}/plan")[0] == 409  # no plan
    # The freed worker picks up the queued job; cancel the rest so the module's server is idle again.
    wait(server, queued[0]["id"], until=("running",), timeout=30)
    for job in (jobs[1], queued[0]):
        assert request(server, "DELETE", f"/v1/solves/{job['id']}")[1]["status"] == "canceled"


def test_a_failing_and_a_hanging_solve_do_not_block_others(tmp_path):
    server = Server(tmp_path / "jobs.sqlite", "--workers", "2", "--grace", "0.5").start()
    try:
        # Killed at its hard limit (time limit 1 s + 0.5 s grace): the fleet-year (8760 hours, 3M
        # variables) takes longer than that to load and build, so the solver never gets to stop it.
        fleet = yaml.safe_load((ROOT / "instances" / "fleet-year.yaml").read_text())
        hanging = request(server, "POST", "/v1/solves", {"instance": fleet, "options": {"time_limit_s": 1}})[1]
        assert hanging["status"] in ("queued", "running"), hanging
        # Two hard services on one chip: valid on its face, infeasible together.
        infeasible = instance_data(pools=[pool("p", available=1)],
                                   workloads=[inference("a", demand_pflops=1.0), inference("b", demand_pflops=1.0)])
        failing = request(server, "POST", "/v1/solves", {"instance": infeasible})[1]
        fine = request(server, "POST", "/v1/solves", {"instance": two_gangs()})[1]
        hung = wait(server, hanging["id"])
        assert hung["status"] == "failed" and hung["error"]["kind"] == "hard_time_limit"
        failed = wait(server, failing["id"])
        assert failed["status"] == "failed" and failed["error"]["kind"] == "infeasible"
        assert "inference_demand" in failed["error"]["message"] or "demand_pflops" in failed["error"]["message"]
        assert wait(server, fine["id"])["status"] == "succeeded"
    finally:
        server.stop()


def test_jobs_survive_a_restart(tmp_path):
    db = tmp_path / "jobs.sqlite"
    first = Server(db, "--workers", "1").start()
    try:
        done = request(first, "POST", "/v1/solves", {"instance": two_gangs()})[1]
        assert wait(first, done["id"])["status"] == "succeeded"
        running = request(first, "POST", "/v1/solves", {"instance": DEFAULT, "options": {"mip_rel_gap": 0.05, "time_limit_s": 30}})[1]
        waiting = request(first, "POST", "/v1/solves", {"instance": {**two_gangs(), "name": "waiting"}})[1]
        wait(first, running["id"], until=("running",), timeout=60)
    finally:
        first.stop()
    second = Server(db, "--workers", "1").start()
    try:
        status, job, _ = request(second, "GET", f"/v1/solves/{done['id']}")
        assert status == 200 and job["status"] == "succeeded"
        assert request(second, "GET", f"/v1/solves/{done['id']}/plan")[1]["summary"]["objective_usd"] == pytest.approx(80.0)
        # The job cut by the restart runs again, and the one waiting behind it runs too.
        assert wait(second, running["id"])["status"] == "succeeded"
        assert wait(second, waiting["id"])["status"] == "succeeded"
    finally:
        second.stop()


@pytest.mark.parametrize(
    "body, path, words",
    [
        ({"instance": {**two_gangs(), "pools": [{**two_gangs()["pools"][0], "chip": "nope"}]}}, "instance.pools[0](p).chip",
         "unknown chip"),
        ({"instance": two_gangs(), "options": {"engine": "gurobi"}}, "options.engine", "Input should be"),
        ({"instance": two_gangs(), "options": {"time_limit_s": 10_000}}, "options.time_limit_s", "over this server's limit"),
        ({"instance": two_gangs(), "extra": 1}, "extra", "unknown field"),
        ({"options": {}}, "instance", "required"),
        ({"instance": {**two_gangs(), "hours": "6"}}, "instance.hours", "integer"),
    ],
)
def test_bad_input_is_422_with_the_field_path(server, body, path, words):
    status, error, _ = request(server, "POST", "/v1/solves", body)
    assert status == 422
    assert any(d["path"] == path and words in d["reason"] for d in error["detail"]), error


def test_other_error_statuses(server):
    assert request(server, "POST", "/v1/solves", raw=b"{not json")[0] == 422
    status, error, _ = request(server, "POST", "/v1/solves", raw=b" " * 1_100_000)
    assert status == 413 and "limit" in error["detail"][0]["reason"]
    assert request(server, "GET", "/v1/solves/no-such-job")[0] == 404
    assert request(server, "DELETE", "/v1/solves/no-such-job")[0] == 404
    assert request(server, "GET", "/v1/solves/no-such-job/plan")[0] == 404
    status, error, _ = request(server, "GET", "/v1/solves/no-such-job/plan/secrets.txt")
    assert status == 422 and error["detail"][0]["path"] == "path.file"


def test_validate_health_and_openapi(server):
    status, body, _ = request(server, "POST", "/v1/validate", {"instance": DEFAULT})
    assert status == 200 and body["valid"] and body["pools"] == len(DEFAULT["pools"])
    status, body, _ = request(server, "POST", "/v1/validate", {"instance": {**DEFAULT, "hours": 0}})
    assert status == 422 and body["detail"][0]["path"] == "instance.hours"
    assert request(server, "GET", "/healthz")[:2] == (200, {"status": "ok"})
    status, ready, _ = request(server, "GET", "/readyz")
    assert status == 200 and ready["status"] == "ready"
    status, spec, _ = request(server, "GET", "/openapi.json")
    assert status == 200
    assert {"/v1/solves", "/v1/solves/{job_id}", "/v1/solves/{job_id}/plan", "/v1/check", "/v1/validate"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"Instance", "Pool", "TrainingWorkload"} <= set(schemas)
    assert "gang_chips" in schemas["TrainingWorkload"]["properties"]
    body_schema = spec["paths"]["/v1/solves"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["properties"]["instance"]["$ref"] == "#/components/schemas/Instance"


def test_a_request_cannot_point_the_server_at_a_dask_cluster(server):
    body = {"instance": two_gangs(), "options": {"cluster": "tcp://10.0.0.1:8786"}}
    status, error, _ = request(server, "POST", "/v1/solves", body)
    assert status == 422 and "options.cluster" in json.dumps(error)
