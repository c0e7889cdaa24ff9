"""API keys, tenants, content types and Host headers, against a real `chipmix serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.helpers import chipmix, instance_data
from tests.test_service import ROOT, Server, free_port, request, wait


def make_key(tenant: str) -> tuple[str, str]:
    result = chipmix("api-key", tenant)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    key, stored = lines["key (give to the client)"], lines["line for the --api-keys file"]
    assert stored.startswith(f"{tenant}:") and key not in stored  # stored hashed, never the key
    return key, stored


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    (key_a, line_a), (key_b, line_b) = make_key("acme"), make_key("globex")
    keys = folder / "keys.txt"
    keys.write_text(f"# tenants\n{line_a}\n{line_b}\n")
    server = Server(folder / "jobs.sqlite", "--api-keys", str(keys)).start()
    yield server, key_a, key_b
    server.stop()


def as_tenant(server: Server, key: str | None) -> Server:
    view = Server.__new__(Server)
    view.__dict__.update(server.__dict__)
    view.headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return view


def test_every_job_call_needs_a_valid_key(keyed):
    server, key_a, _ = keyed
    for who in (None, "cmx_not-a-key"):
        status, body, headers = request(as_tenant(server, who), "POST", "/v1/solves", {"instance": instance_data()})
        assert status == 401 and headers.get("www-authenticate") == "Bearer" and body["detail"][0]["path"] == "Authorization"
        assert request(as_tenant(server, who), "GET", "/v1/solves/whatever")[0] == 401
    assert request(as_tenant(server, None), "GET", "/healthz")[0] == 200  # probes stay open
    assert request(as_tenant(server, None), "GET", "/readyz")[0] == 200


def test_a_tenants_jobs_are_invisible_to_another(keyed):
    server, key_a, key_b = keyed
    acme, globex = as_tenant(server, key_a), as_tenant(server, key_b)
    status, job, _ = request(acme, "POST", "/v1/solves", {"instance": instance_data(name="acme-job")})
    assert status == 202
    assert wait(acme, job["id"])["status"] == "succeeded"
    for method, path in (("GET", ""), ("GET", "/plan"), ("GET", "/plan/allocations.csv"), ("DELETE", "")):
        assert request(globex, method, f"/v1/solves/{job['id']}{path}")[0] == 404, path
    assert request(acme, "GET", f"/v1/solves/{job['id']}/plan")[0] == 200


def test_an_idempotency_key_is_its_tenants_own(keyed):
    server, key_a, key_b = keyed
    body = {"instance": instance_data(name="idem")}
    first = request(as_tenant(server, key_a), "POST", "/v1/solves", body, headers={"Idempotency-Key": "k1"})
    other = request(as_tenant(server, key_b), "POST", "/v1/solves", body, headers={"Idempotency-Key": "k1"})
    again = request(as_tenant(server, key_a), "POST", "/v1/solves", body, headers={"Idempotency-Key": "k1"})
    assert first[0] == 202 and other[0] == 202 and again[0] == 200
    assert first[1]["id"] == again[1]["id"] != other[1]["id"]


def test_a_body_that_is_not_json_is_415(keyed):
    server, key_a, _ = keyed
    form = urllib.request.Request(server.url + "/v1/solves", data=b"instance=x", method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {key_a}"})
    try:
        urllib.request.urlopen(form, timeout=30)
        raise AssertionError("a form post was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 415


def test_a_foreign_host_header_is_refused_and_docs_are_off_by_default(keyed):
    server, key_a, _ = keyed
    status, _, _ = request(as_tenant(server, key_a), "GET", "/v1/solves/x", headers={"Host": "evil.example"})
    assert status == 400
    assert request(as_tenant(server, key_a), "GET", "/docs")[0] == 404
    assert request(as_tenant(server, None), "GET", "/openapi.json")[0] == 200


def test_keys_from_the_environment_and_docs_on_request(tmp_path):
    key, line = make_key("initech")
    server = Server(tmp_path / "jobs.sqlite", "--docs", no_auth=False, env={**os.environ, "CHIPMIX_API_KEYS": line})
    server.start()
    try:
        assert request(as_tenant(server, key), "GET", "/v1/solves/nope")[0] == 404  # known key, no such job
        assert request(as_tenant(server, "wrong"), "GET", "/v1/solves/nope")[0] == 401
        assert request(as_tenant(server, None), "GET", "/docs")[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize("flags, words", [
    ((), "needs API keys"),
    (("--no-auth", "--host", "0.0.0.0"), "only on a loopback address"),
])
def test_the_server_refuses_to_start_open_to_the_network(tmp_path, flags, words):
    result = subprocess.run(
        [sys.executable, "-m", "optimizer", "serve", "--port", str(free_port()), "--db", str(tmp_path / "j.sqlite"), *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "CHIPMIX_API_KEYS"})
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
