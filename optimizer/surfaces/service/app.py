"""The chipmix HTTP service: solve jobs, plans, the checker and validation over HTTP.

Shaped like the optimisation services procurement tooling already calls (submit, poll, fetch):

- ``POST /v1/solves`` ``{instance, options}`` -> 202 and a job; ``Idempotency-Key`` makes a retried
  submission return the same job (the same key with another body is 409).
- ``GET /v1/solves/{id}`` status and timings; ``GET /v1/solves/{id}/plan`` the plan as JSON;
  ``GET /v1/solves/{id}/plan/{file}`` the same CSV / JSON files ``chipmix solve`` writes;
  ``DELETE /v1/solves/{id}`` cancels.
- ``POST /v1/check`` ``{instance, plan}`` runs the independent checker; ``POST /v1/validate``
  ``{instance}`` validates only.
- ``/healthz`` (the process answers), ``/readyz`` (the job store answers and the runner runs).

Every error is ``{"detail": [{"path", "reason", "hint"}]}``: 422 for bad input (the field path of
every problem, as the CLI gives it), 413 for a body over the limit, 429 when too many jobs wait,
404 for an unknown job, 409 for a plan not ready or a reused key.  The body is parsed by hand (not by
FastAPI) so that instance errors carry the same paths as the CLI's; the OpenAPI document still
describes it with the instance's JSON Schema.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import sqlite3
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware
from pydantic import BaseModel, ConfigDict, Field

from optimizer.errors import FieldError, InputError
from optimizer.input.loading import instance_from_data, validate_document
from optimizer.solvers.options import SolveOptions
from optimizer.input.schema import Instance
from optimizer.surfaces.service.auth import ApiKeys
from optimizer.surfaces.service.runner import LocalJobs, Runner
from optimizer.solvers.result import relative_gap
from optimizer.plans.economics import ROUTING_COLUMNS
from optimizer.plans.energy import ENERGY_COLUMNS
from optimizer.plans.instruments import COVERAGE_COLUMNS, PURCHASE_COLUMNS
from optimizer.plans.plan import ALLOCATION_COLUMNS, RESERVATION_COLUMNS
from optimizer.surfaces.service.store import STATUSES, IdempotencyConflict, JobStore, QueueFull


class ServiceSettings(BaseModel):
    """How the service runs (``chipmix serve`` flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db_path: str = Field(default="chipmix-jobs.sqlite", description="SQLite file that keeps the jobs.")
    workers: int = Field(default=2, ge=1, description="Solves running at once, each in its own process.")
    max_queued: int = Field(default=32, ge=1, description="Jobs waiting beyond this get 429.")
    max_body_bytes: int = Field(default=20_000_000, ge=1, description="Larger request bodies get 413.")
    default_time_limit_s: float = Field(default=60.0, gt=0, description="Solver time limit when the request gives none.")
    max_time_limit_s: float = Field(default=600.0, gt=0, description="Largest time_limit_s a request may ask for.")
    grace_s: float = Field(default=60.0, ge=0, description="A job is killed this long after its solver time limit.")
    job_memory_mb: int | None = Field(default=8192, ge=64,
                                      description="Address space each job process (and each solver it starts) may use, MB.")
    api_keys: dict[str, str] = Field(default_factory=dict, description="sha256 of each API key -> its tenant.")
    no_auth: bool = Field(default=False, description="No keys: every caller is the anonymous tenant (loopback only).")
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"],
                                     description="Host headers accepted (others get 400); '*' accepts any.")
    docs: bool = Field(default=False, description="Serve the interactive API docs at /docs.")
    max_analysis_solves: int = Field(default=200, ge=1, description="Most solves one lock-in or sweep job may run.")
    cluster: str | None = Field(default=None, description="Dask scheduler address: run the jobs on its workers "
                                                          "instead of in processes beside the server.")


class SolveRequest(BaseModel):
    """Body of POST /v1/solves (documentation only: the body is validated by hand)."""

    instance: Instance
    options: SolveOptions = SolveOptions()


class PlanTables(BaseModel):
    """A plan as GET /v1/solves/{id}/plan returns it."""

    allocations: list[dict[str, Any]]
    reservations: list[dict[str, Any]]
    summary: dict[str, Any]
    purchases: list[dict[str, Any]] = []
    coverage: list[dict[str, Any]] = []
    energy: list[dict[str, Any]] | None = None  # required by the checker (energy.csv): a plan without it is rejected
    routing: list[dict[str, Any]] | None = None  # routing.csv: required where the instance routes services


class CheckRequest(BaseModel):
    instance: Instance
    plan: PlanTables


class ValidateRequest(BaseModel):
    instance: Instance


class ApiError(Exception):
    def __init__(self, status: int, errors: list[FieldError], headers: dict[str, str] | None = None):
        self.status, self.errors, self.headers = status, errors, headers or {}


def _error(status: int, path: str, reason: str, hint: str | None = None, **headers: str) -> ApiError:
    return ApiError(status, [FieldError(path, reason, hint)], headers)


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    size, body = 0, bytearray()
    # Read (and drop) what is sent beyond the limit, up to four times it, before answering 413:
    # a client still sending when the connection closes sees a reset instead of the 413.
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            body += chunk
        elif size > 4 * limit:
            break
    if size > limit or (declared is not None and declared.isdigit() and int(declared) > limit):
        shown = int(declared) if declared is not None and declared.isdigit() else size
        raise _error(413, "body", f"{shown} bytes is over the {limit}-byte limit", "send a smaller instance")
    try:
        return await asyncio.to_thread(json.loads, bytes(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(422, "body", f"not JSON: {exc}") from None
    except RecursionError:
        raise _error(422, "body", "nested too deeply to be an instance", "send a flat JSON document") from None
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise _error(422, "body", f"not a number chipmix can read: {exc}") from None


def _fields(data: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _error(422, "body", "the body must be a JSON object")
    problems = [FieldError(key, "unknown field", f"use {', '.join(sorted(allowed))}") for key in data if key not in allowed]
    problems += [FieldError(key, "required") for key in sorted(required - set(data))]
    if problems:
        raise ApiError(422, problems)
    return data


def _under(field: str, exc: InputError) -> ApiError:
    """A 422 whose paths start at the body field the document came from (``instance.pools[0]...``)."""
    return ApiError(422, [FieldError(f"{field}.{e.path}" if e.path else field, e.reason, e.hint) for e in exc.errors])


def _instance(data: Any) -> Instance:
    try:
        return instance_from_data(data, source="instance")
    except InputError as exc:
        raise _under("instance", exc) from None


_NO_OPTIONS = object()


def _options(data: Any, settings: ServiceSettings) -> SolveOptions:
    """The request's SolveOptions (the same options as the CLI's and the Python API's), with this
    server's limits on top: its default and largest time limit, and no solver log (it would go to
    the server's own stderr)."""
    if data is None:
        raise _error(422, "options", "must be an object (null is not)", "leave options out for the defaults")
    try:
        options = validate_document(SolveOptions, {} if data is _NO_OPTIONS else data, source="options")
    except InputError as exc:
        raise _under("options", exc) from None
    if options.cluster is not None:
        # A request must not point this server at a Dask scheduler of its choosing.
        raise _error(422, "options.cluster", "is this server's to set, not a request's",
                     "leave it out (chipmix serve --cluster ADDRESS runs the jobs on a cluster)")
    if options.time_limit_s is not None and options.time_limit_s > settings.max_time_limit_s:
        raise _error(422, "options.time_limit_s", f"{options.time_limit_s:g} s is over this server's limit of "
                     f"{settings.max_time_limit_s:g} s", f"use at most {settings.max_time_limit_s:g}")
    limits = {"verbose": False}
    if options.time_limit_s is None:
        limits["time_limit_s"] = settings.default_time_limit_s
    return options.model_copy(update=limits)


def _schema_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI requestBody for a hand-validated JSON body, from the pydantic models."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # moved into components by create_app's openapi()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


#: Each plan file: the payload's key and the file's columns (plans/plan.py, the same as chipmix solve).
_PLAN_FILES = {
    "allocations.csv": ("allocations", ALLOCATION_COLUMNS),
    "reservations.csv": ("reservations", RESERVATION_COLUMNS),
    "purchases.csv": ("purchases", PURCHASE_COLUMNS),
    "coverage.csv": ("coverage", COVERAGE_COLUMNS),
    "energy.csv": ("energy", ENERGY_COLUMNS),
    "routing.csv": ("routing", ROUTING_COLUMNS),
    "unmet.csv": ("unmet", ["workload", "hour", "unmet_pflops"]),
    "shortfall.csv": ("shortfall", ["workload", "short_eflop"]),
}


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column) for column in columns])
    return out.getvalue()


#: Buckets of the chipmix_solve_seconds histogram (/metrics), s.
SOLVE_SECONDS_BUCKETS = (1, 5, 15, 60, 300, 900, 3600)
#: Paths anyone may call: probes for orchestrators, and the API's schema.
OPEN_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"}


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings(no_auth=True)
    keys = ApiKeys(dict(settings.api_keys))
    if not keys and not settings.no_auth:
        raise ValueError("the service needs API keys, or no_auth")
    store = JobStore(settings.db_path)
    if settings.cluster:
        from optimizer.surfaces.service.cluster import ClusterJobs

        executor = ClusterJobs(settings.cluster, settings.job_memory_mb)  # ClusterUnavailable if out of reach
    else:
        executor = LocalJobs(settings.job_memory_mb)
    runner = Runner(store, settings.workers, settings.max_time_limit_s + settings.grace_s, settings.grace_s,
                    executor=executor)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(
        title="chipmix",
        version="1",
        description="Cheapest feasible plans for AI compute across chips, clouds and power-capped sites.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
    )
    if "*" not in settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))

    @app.middleware("http")
    async def tenants_and_content(request: Request, call_next):
        """Every /v1 call needs a key (its tenant owns the jobs it submits), and a body must be
        JSON: a form post from another site's page is refused before it is read."""
        if request.url.path not in OPEN_PATHS:
            tenant = "" if settings.no_auth else keys.tenant_of(request.headers.get("authorization"))
            if tenant is None:
                body = {"detail": [{"path": "Authorization", "reason": "a valid API key is required",
                                    "hint": "send Authorization: Bearer <key>"}]}
                return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            request.state.tenant = tenant
        if request.method in ("POST", "PUT", "PATCH"):
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
                body = {"detail": [{"path": "Content-Type", "reason": f"{kind or 'no content type'} is not JSON",
                                    "hint": "send Content-Type: application/json"}]}
                return JSONResponse(body, status_code=415)
        return await call_next(request)
    app.state.store, app.state.runner, app.state.settings = store, runner, settings

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own checks (path and query parameters) answer in the same shape as ours.
        detail = [{"path": ".".join(str(part) for part in error["loc"]), "reason": error["msg"], "hint": None}
                  for error in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(sqlite3.Error)
    async def store_error(request: Request, exc: sqlite3.Error) -> JSONResponse:
        # The job store failed (a read-only or full disk): say so, and that it may pass.
        detail = [{"path": "store", "reason": f"the job store failed: {type(exc).__name__}: {exc}",
                   "hint": "retry later; GET /readyz says when the store works again"}]
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        detail = [{"path": e.path, "reason": e.reason, "hint": e.hint} for e in exc.errors]
        return JSONResponse({"detail": detail}, status_code=exc.status, headers=exc.headers)

    def job_or_404(job_id: str, request: Request):
        job = store.get(job_id, tenant=request.state.tenant)
        if job is None:
            raise _error(404, "id", f"no solve job {job_id!r}")
        return job

    @app.post("/v1/solves", status_code=202, openapi_extra=_schema_body(SolveRequest), tags=["solves"])
    async def submit(request: Request) -> JSONResponse:
        """Queue a solve; 202 with the job.  Idempotency-Key: a retry returns the same job."""
        data = _fields(await _read_json(request, settings.max_body_bytes), {"instance", "options"}, {"instance"})
        instance = await asyncio.to_thread(_instance, data["instance"])  # heavy: off the event loop
        options = _options(data.get("options", _NO_OPTIONS), settings)
        return queue(request, {"instance": data["instance"], "options": options.model_dump()}, instance.name,
                     "/v1/solves")

    def queue(request: Request, body: dict[str, Any], instance_name: str, location: str) -> JSONResponse:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        key = request.headers.get("idempotency-key")
        try:
            job, created = store.submit(body, digest, instance_name, key, settings.max_queued,
                                        tenant=request.state.tenant)
        except IdempotencyConflict:
            raise _error(409, "Idempotency-Key", f"key {key!r} was used with another request body",
                         "use a new key for a new request") from None
        except QueueFull as exc:
            raise _error(429, "queue", f"{exc.args[0]} jobs are already waiting", "retry later",
                         **{"Retry-After": "5"}) from None
        headers = {"Location": f"{location}/{job.id}"}
        return JSONResponse(job.public(), status_code=202 if created else 200, headers=headers)

    def restrictions(instance, data: Any) -> list[str] | None:
        from optimizer.analyses.lockin import restrict

        if data is None:
            return None
        if not isinstance(data, list) or not all(isinstance(r, str) for r in data):
            raise _error(422, "restrictions", "must be a list of names (multi, vendor=NAME, cloud=NAME, greedy)")
        problems = []
        for index, name in enumerate(data):
            if name in ("multi", "greedy"):
                continue
            try:
                restrict(instance, name)
            except InputError as exc:
                problems += [FieldError(f"restrictions[{index}]", e.reason, e.hint) for e in exc.errors]
        if problems:
            raise ApiError(422, problems)
        return data

    def analysis_options(data: Any, solves: int) -> SolveOptions:
        if solves > settings.max_analysis_solves:
            raise _error(422, "restrictions", f"{solves} solves is more than this server runs in one job "
                         f"({settings.max_analysis_solves})", "ask for fewer restrictions or scenarios")
        return _options(data, settings)

    @app.post("/v1/lockins", status_code=202, tags=["analyses"])
    async def submit_lockin(request: Request) -> JSONResponse:
        """Queue a lock-in table (multi-vendor against each single vendor and cloud, and greedy) as a
        job: {instance, options, restrictions, greedy}.  Status and result at /v1/jobs/{id}."""
        from optimizer.analyses.lockin import restrictions_of

        data = _fields(await _read_json(request, settings.max_body_bytes),
                       {"instance", "options", "restrictions", "greedy"}, {"instance"})
        instance = await asyncio.to_thread(_instance, data["instance"])
        names = restrictions(instance, data.get("restrictions"))
        greedy = data.get("greedy", True)
        if not isinstance(greedy, bool):
            raise _error(422, "greedy", "must be true or false")
        solves = len(names if names is not None else restrictions_of(instance)) + 2
        options = analysis_options(data.get("options", _NO_OPTIONS), solves)
        body = {"kind": "lockin", "instance": data["instance"], "options": options.model_dump(),
                "restrictions": names, "greedy": greedy, "solves": solves}
        return queue(request, body, instance.name, "/v1/jobs")

    @app.post("/v1/sweeps", status_code=202, tags=["analyses"])
    async def submit_sweep(request: Request) -> JSONResponse:
        """Queue a sweep (every scenario x restriction, re-optimised and with the base plan's
        reservations held) as a job: {instance, scenarios, options, restrictions}; ``scenarios`` is
        a scenario file's content.  Status and result at /v1/jobs/{id}."""
        from optimizer.analyses.lockin import restrictions_of
        from optimizer.analyses.scenarios import scenarios_from_data

        data = _fields(await _read_json(request, settings.max_body_bytes),
                       {"instance", "options", "restrictions", "scenarios"}, {"instance", "scenarios"})
        instance = await asyncio.to_thread(_instance, data["instance"])
        try:
            parsed = await asyncio.to_thread(scenarios_from_data, data["scenarios"], instance, "scenarios")
        except InputError as exc:
            raise _under("scenarios", exc) from None
        names = restrictions(instance, data.get("restrictions"))
        count = len(names if names is not None else restrictions_of(instance)) + 1
        solves = (2 * len(parsed) + 1) * count
        options = analysis_options(data.get("options", _NO_OPTIONS), solves)
        body = {"kind": "sweep", "instance": data["instance"], "options": options.model_dump(),
                "restrictions": names, "scenarios": data["scenarios"], "solves": solves}
        return queue(request, body, instance.name, "/v1/jobs")

    @app.get("/v1/jobs/{job_id}", tags=["analyses"])
    async def job_status(job_id: str, request: Request) -> dict[str, Any]:
        """Any job (solve, lockin, sweep): status, timings, and its error if it failed."""
        return job_or_404(job_id, request).public()

    @app.get("/v1/jobs/{job_id}/result", tags=["analyses"])
    async def job_output(job_id: str, request: Request) -> dict[str, Any]:
        """What the job made: a solve's plan, or a lock-in or sweep table ({kind, columns, rows})."""
        return finished_plan(job_id, request)

    @app.delete("/v1/jobs/{job_id}", tags=["analyses"])
    async def job_cancel(job_id: str, request: Request) -> dict[str, Any]:
        return await cancel(job_id, request)

    @app.get("/v1/solves/{job_id}", tags=["solves"])
    async def status(job_id: str, request: Request) -> dict[str, Any]:
        """Status (queued | running | succeeded | failed | canceled), timings, summary or error."""
        return job_or_404(job_id, request).public()

    def finished_plan(job_id: str, request: Request) -> dict[str, Any]:
        job = job_or_404(job_id, request)
        if job.status != "succeeded":
            raise _error(409, "status", f"the job is {job.status}; a plan exists only when it succeeded")
        return job.result

    @app.get("/v1/solves/{job_id}/plan", tags=["solves"])
    async def plan(job_id: str, request: Request) -> dict[str, Any]:
        """The plan: summary, allocations, reservations, unmet, shortfall, details, checker."""
        return finished_plan(job_id, request)

    @app.get("/v1/solves/{job_id}/plan/focus.csv", tags=["solves"])
    async def plan_focus(job_id: str, request: Request, period: Literal["hour", "day"] = "hour") -> Response:
        """The plan as a FinOps FOCUS 1.2 cost and usage CSV (the same as ``chipmix export focus``)."""
        from optimizer.plans.focus import focus_csv, focus_rows

        result = finished_plan(job_id, request)
        job = job_or_404(job_id, request)

        def build() -> str:
            instance = instance_from_data(job.request["instance"], source="instance")
            return focus_csv(focus_rows(instance, result["allocations"], result["reservations"], period,
                                        result.get("purchases", []), result.get("coverage", [])))

        return PlainTextResponse(await asyncio.to_thread(build), media_type="text/csv")

    @app.get("/v1/solves/{job_id}/plan/{file}", tags=["solves"])
    async def plan_file(job_id: str, request: Request,
                        file: Literal["allocations.csv", "reservations.csv", "purchases.csv", "coverage.csv", "energy.csv", "routing.csv",
                                      "unmet.csv", "shortfall.csv", "summary.json"]) -> Response:
        """One plan file, byte for byte the layout ``chipmix solve`` writes."""
        result = finished_plan(job_id, request)
        if file == "summary.json":
            return PlainTextResponse(json.dumps(result["summary"], indent=2) + "\n", media_type="application/json")
        key, columns = _PLAN_FILES[file]
        return PlainTextResponse(_csv(result.get(key, []), columns), media_type="text/csv")  # older jobs: no purchases

    @app.get("/v1/solves/{job_id}/progress", tags=["solves"])
    async def progress(job_id: str, request: Request) -> dict[str, Any]:
        """Incumbent, bound and gap over time, as the solver reports them: live while the job runs,
        the whole record once it has ended (a queued job has none yet)."""
        job = job_or_404(job_id, request)
        records = runner.progress(job_id)
        if records is None:
            records = ((job.result or {}).get("details") or {}).get("progress", [])
        rows = []
        for seconds, incumbent, bound in records:
            gap = relative_gap(incumbent, bound)
            rows.append({"seconds": seconds, "incumbent_usd": incumbent, "bound_usd": bound,
                         "gap": None if gap is None or gap == float("inf") else gap})
        return {"id": job.id, "status": job.status, "progress": rows}

    @app.get("/metrics", tags=["service"])
    async def metrics() -> PlainTextResponse:
        """Prometheus text format: jobs by status, the queue, running and unrecorded jobs, and
        the seconds finished jobs ran."""
        counts, seconds = await asyncio.to_thread(store.metrics)
        lines = ["# HELP chipmix_jobs Jobs in the store by status.", "# TYPE chipmix_jobs gauge"]
        lines += [f'chipmix_jobs{{status="{status}"}} {counts.get(status, 0)}' for status in STATUSES]
        lines += ["# HELP chipmix_queue_length Jobs waiting to start.", "# TYPE chipmix_queue_length gauge",
                  f"chipmix_queue_length {counts.get('queued', 0)}",
                  "# HELP chipmix_jobs_running Job processes running now.", "# TYPE chipmix_jobs_running gauge",
                  f"chipmix_jobs_running {runner.running_count()}",
                  "# HELP chipmix_jobs_unrecorded Finished jobs whose outcome the store has not taken yet.",
                  "# TYPE chipmix_jobs_unrecorded gauge", f"chipmix_jobs_unrecorded {runner.unrecorded}",
                  "# HELP chipmix_solve_seconds Seconds a finished job ran (succeeded or failed).",
                  "# TYPE chipmix_solve_seconds histogram"]
        for bucket in SOLVE_SECONDS_BUCKETS:
            lines.append(f'chipmix_solve_seconds_bucket{{le="{bucket:g}"}} {sum(1 for x in seconds if x <= bucket)}')
        lines += [f'chipmix_solve_seconds_bucket{{le="+Inf"}} {len(seconds)}',
                  f"chipmix_solve_seconds_sum {sum(seconds):.3f}", f"chipmix_solve_seconds_count {len(seconds)}"]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    @app.delete("/v1/solves/{job_id}", tags=["solves"])
    async def cancel(job_id: str, request: Request) -> dict[str, Any]:
        """Cancel a queued or running job (a finished one is 409)."""
        job = job_or_404(job_id, request)
        if job.status in ("succeeded", "failed", "canceled"):
            raise _error(409, "status", f"the job is already {job.status}")
        if job.status == "queued" and store.finish(job_id, "canceled", error={"kind": "canceled", "message": "canceled by request"}):
            return store.get(job_id).public()
        runner.cancel(job_id)
        for _ in range(100):  # the runner kills the process within a poll interval
            job = store.get(job_id)
            if job.status != "running":
                break
            await asyncio.sleep(0.05)
        return job.public()

    @app.post("/v1/check", openapi_extra=_schema_body(CheckRequest), tags=["plans"])
    async def check(request: Request) -> dict[str, Any]:
        """Run the independent checker on an instance and a plan (as GET .../plan returns it)."""
        from optimizer.plans.checker import check_tables

        data = _fields(await _read_json(request, settings.max_body_bytes), {"instance", "plan"}, {"instance", "plan"})
        instance = await asyncio.to_thread(_instance, data["instance"])  # heavy: off the event loop
        plan = data["plan"]
        if not isinstance(plan, dict):
            raise _error(422, "plan", "must be an object with allocations, reservations and summary")
        missing = [FieldError(f"plan.{key}", "required") for key in ("allocations", "reservations", "summary") if key not in plan]
        if missing:
            raise ApiError(422, missing)
        for key in ("allocations", "reservations", "purchases", "coverage", "energy", "routing"):
            if key in plan and (not isinstance(plan[key], list) or not all(isinstance(row, dict) for row in plan[key])):
                raise _error(422, f"plan.{key}", "must be a list of objects (one per CSV row)")
        report = check_tables(instance, plan["allocations"], plan["reservations"], plan["summary"],
                              purchases=plan.get("purchases", []), coverage=plan.get("coverage", []),
                              energy=plan.get("energy"), routing=plan.get("routing"))
        return {"ok": report.ok, "violations": report.violations, "recomputed": report.recomputed}

    @app.post("/v1/validate", openapi_extra=_schema_body(ValidateRequest), tags=["plans"])
    async def validate(request: Request) -> dict[str, Any]:
        """Validate an instance only: 200 with its size, or 422 with every field path."""
        data = _fields(await _read_json(request, settings.max_body_bytes), {"instance"}, {"instance"})
        instance = await asyncio.to_thread(_instance, data["instance"])  # heavy: off the event loop
        return {"valid": True, "name": instance.name, "hours": instance.hours, "chips": len(instance.chips),
                "sites": len(instance.sites), "pools": len(instance.pools), "workloads": len(instance.workloads)}

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    async def readyz() -> JSONResponse:
        """Ready when the store takes a write, the runner runs, and the runner's last store call
        worked; otherwise 503 with the reasons."""
        runner.ensure_running()
        problems = []
        store_problem = await asyncio.to_thread(store.ping)
        if store_problem:
            problems.append(f"job store: {store_problem}")
        if not runner.alive:
            problems.append("job runner: not running")
        if runner.store_error and not store_problem:
            problems.append(f"job runner: its last store call failed ({runner.store_error})")
        executor_problem = await asyncio.to_thread(runner.executor.problem)
        if executor_problem:
            problems.append(executor_problem)
        body: dict[str, Any] = {"status": "not ready" if problems else "ready", "problems": problems,
                                "unrecorded": runner.unrecorded}
        if not store_problem:
            body.update(queued=store.count("queued"), running=store.count("running"))
        return JSONResponse(body, status_code=503 if problems else 200)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # The hand-validated bodies reference these schemas: put them in components.
        if app.openapi_schema is None:
            schema = original_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (SolveRequest, CheckRequest, ValidateRequest):
                for name, definition in model.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items():
                    components.setdefault(name, definition)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app
