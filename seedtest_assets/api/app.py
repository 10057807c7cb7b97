"""The ASGI app: routes, request validation, authentication and error bodies.

Routes (each ``/analysis/...`` route is also served under ``/api/seedtest``, the path the
product's gateway used):

- ``POST /analysis/irt/update-theta`` ``{user_id, session_id?, lookback_days?}`` ->
  ``{status: ok, user_id, theta, se, model, version, updated_at}`` or
  ``{status: noop, user_id, message}`` (200). Scopes ``analysis:run`` (anyone) or
  ``exam:write`` (own ``sub`` only).
- ``GET /analysis/irt/theta/{user_id}``: the latest stored θ (404 ``not_found``).
- ``GET /healthz`` (the process is up), ``GET /readyz`` (warehouse reachable and an item
  bank loaded; 503 with the reasons otherwise), ``GET /metrics`` (Prometheus).

Errors: 401/403 with ``WWW-Authenticate: Bearer error=...`` and ``{status: error, error,
message}``; 422 for a body that is not valid (FastAPI's ``detail`` list, plus ``status`` and
``message``); 413 above :data:`MAX_BODY_BYTES`; 503 when the warehouse fails.
"""

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator
from starlette.concurrency import run_in_threadpool

from seedtest_assets.api import metrics
from seedtest_assets.api.auth import (
    ACCEPTED_SCOPES,
    LOCAL_DEV_PRINCIPAL,
    AuthError,
    Principal,
    TokenVerifier,
    bearer_token,
)
from seedtest_assets.api.config import ApiConfig
from seedtest_assets.api.events import DagsterEvents
from seedtest_assets.api.service import ThetaService
from seedtest_assets.core.ids import id_problem
from seedtest_assets.core.mirt_ability.online import DEFAULT_LOOKBACK_DAYS
from seedtest_assets.core.mirt_ability.read import stored_theta
from seedtest_assets.core.warehouse import make_engine

_log = logging.getLogger("seedtest.api")

MAX_BODY_BYTES = 16_384
MAX_ID_CHARS = 255  # the longest id a users partition key can be (defs/partitions.py)
MAX_LOOKBACK_DAYS = 366
PREFIX = "/api/seedtest"


class UpdateThetaRequest(BaseModel):
    """The exam app's call (the original's body; unknown fields are ignored, as there)."""

    model_config = ConfigDict(extra="ignore")

    user_id: StrictStr = Field(min_length=1, max_length=MAX_ID_CHARS)
    session_id: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    lookback_days: StrictInt = Field(default=DEFAULT_LOOKBACK_DAYS, ge=1, le=MAX_LOOKBACK_DAYS)

    @field_validator("user_id", "session_id")
    @classmethod
    def _usable_id(cls, value: str | None) -> str | None:
        if value is not None:
            problem = id_problem(value)
            if problem:
                raise ValueError(f"not a usable id: {problem}")
        return value


class BodyLimit:
    """413 for a declared body over :data:`MAX_BODY_BYTES`, and for a streamed one once it
    passes that size (a plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` cost a
    third of the event loop's time per request, measured)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY_BYTES):
                await _too_large(scope, receive, send)
                return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: dict, receive: Any, send: Any) -> None:
    response = JSONResponse(
        {"status": "error", "error": "too_large", "message": "request body over 16 KiB"},
        status_code=413,
    )
    await response(scope, receive, send)


def _auth_response(err: AuthError) -> JSONResponse:
    challenge = f'Bearer error="{err.error}", error_description="{err.description}"'
    if err.status == 403:
        challenge += f', scope="{" ".join(ACCEPTED_SCOPES)}"'
    headers = {"WWW-Authenticate": challenge} if err.status in (401, 403) else {}
    return JSONResponse(
        {"status": "error", "error": err.error, "message": err.description},
        status_code=err.status,
        headers=headers,
    )


def create_app(
    config: ApiConfig | None = None,
    *,
    database_url: str | None = None,
    events: DagsterEvents | None = None,
) -> FastAPI:
    """The service's app. ``config`` defaults to :meth:`ApiConfig.from_env`; the warehouse is
    ``database_url`` or the configured ``DATABASE_URL`` (else the embedded SQLite file);
    ``events``: where UI events go (default: ``DAGSTER_HOME``'s instance when configured)."""
    config = config or ApiConfig.from_env()
    verifier = (
        None
        if config.local_dev
        else TokenVerifier(
            str(config.jwks_url),
            str(config.audience),
            str(config.issuer),
            leeway_seconds=config.jwt_leeway_seconds,
        )
    )
    if events is None and config.dagster_events:
        events = DagsterEvents()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.local_dev:
            _log.warning(
                "LOCAL_DEV=true: tokens are NOT verified; every caller may update any student"
            )
        if verifier is not None:
            try:
                await run_in_threadpool(verifier.warm)
            except AuthError as exc:  # fetched again on the first request
                _log.warning("JWKS not fetched at start: %s", exc.description)
        service = ThetaService(make_engine(database_url), config, events)
        await service.start()
        app.state.service = service
        # Start-up's objects (modules, the item bank) never die: out of the collector's
        # sight, a full collection no longer walks them (gc.freeze's documented use).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="SeedTest θ-update service",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    app.add_middleware(BodyLimit)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return _auth_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return JSONResponse(
            {
                "status": "error",
                "error": "invalid_request",
                "message": f"{where}: {first['msg']}",
                "detail": errors,
            },
            status_code=422,
        )

    async def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        if verifier is None:
            return LOCAL_DEV_PRINCIPAL
        token = bearer_token(authorization)
        # Verifying with a cached key is ~0.1 ms of CPU: on the event loop. A kid not cached
        # fetches the JWKS (network): in a thread.
        if verifier.has_key_for(token):
            p = verifier.verify(token)
        else:
            p = await run_in_threadpool(verifier.verify, token)
        p.require_any()
        return p

    router = APIRouter()

    @router.post("/analysis/irt/update-theta")
    async def update_theta_route(
        body: UpdateThetaRequest, request: Request, who: Annotated[Principal, Depends(principal)]
    ) -> JSONResponse:
        who.require_student(body.user_id)
        service: ThetaService = request.app.state.service
        started = time.perf_counter()
        try:
            result = await service.update(body.user_id, body.lookback_days, body.session_id)
        except Exception as exc:
            metrics.THETA_UPDATES.labels("error").inc()
            _log.error("theta update for a student failed: %s", type(exc).__name__)
            return JSONResponse(
                {
                    "status": "error",
                    "user_id": body.user_id,
                    "error": "unavailable",
                    "message": "theta_update_failed: the warehouse could not be read or written",
                },
                status_code=503,
            )
        finally:
            metrics.LATENCY.observe(time.perf_counter() - started)
        metrics.THETA_UPDATES.labels(result.status).inc()
        return JSONResponse(result.to_api())

    @router.get("/analysis/irt/theta/{user_id}")
    async def latest_theta(
        user_id: str, request: Request, who: Annotated[Principal, Depends(principal)]
    ) -> JSONResponse:
        if id_problem(user_id) or len(user_id) > MAX_ID_CHARS:
            return JSONResponse(
                {"status": "error", "error": "invalid_request", "message": "not a usable id"},
                status_code=422,
            )
        who.require_student(user_id)
        service: ThetaService = request.app.state.service
        row = await run_in_threadpool(stored_theta, service.engine, user_id)
        if row is None:
            return JSONResponse(
                {"status": "not_found", "user_id": user_id, "message": "no theta stored yet"},
                status_code=404,
            )
        return JSONResponse(row.to_api())

    app.include_router(router)
    app.include_router(router, prefix=PREFIX)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        service: ThetaService = request.app.state.service
        problems: list[str] = []
        db = await run_in_threadpool(service.warehouse_ok)
        if db:
            problems.append(f"warehouse: {db}")
        basis = service.basis
        if basis is None:
            problems.append("item bank: no 2PL item parameters calibrated yet")
        if service.last_refresh_error:
            problems.append(f"item bank refresh: {service.last_refresh_error}")
        body = {
            "status": "ok" if not problems else "unavailable",
            "item_bank": basis.version if basis else None,
            "items": basis.n_items if basis else 0,
            "online_updates": service.config.online_enabled,
            "dagster_events": service.events is not None,
            "problems": problems,
        }
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics")
    async def metrics_route() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return app


def app_from_env() -> FastAPI:
    """The app as ``seedtest serve`` runs it (uvicorn's factory)."""
    return create_app()
