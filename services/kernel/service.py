"""Wiring shared by the back-end services: runtime in the lifespan, consumers, uvicorn entry point."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.kernel import mongo
from services.kernel import telemetry
from services.kernel.app import create_service_app
from services.kernel.auth import RevokedAccounts, TokenVerifier, session_router
from services.kernel.health import ReadinessCheck
from services.kernel.logging import get_logger
from services.kernel.runtime import DEPENDENCY_DOWN, ConsumerSpec, ServiceRuntime
from services.kernel.settings import CommonSettings

log = get_logger(__name__)
DEPENDENCY_DOWN_DETAIL = "Le service est momentanément indisponible. Veuillez réessayer dans quelques instants."

Wiring = Callable[[FastAPI, ServiceRuntime], Awaitable[None]]
# Builds the HTTP answer for one of a service's own error types (its api module knows the shape).
ErrorResponse = Callable[[Any], Response]


def backend_app(
    settings: CommonSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    outbox_collections: Sequence[str] = (),
    consumers: Callable[[FastAPI, ServiceRuntime], Sequence[ConsumerSpec]] = lambda app, rt: (),
    extra_checks: Callable[[FastAPI, ServiceRuntime], Sequence[ReadinessCheck]] = lambda app, rt: (),
    on_start: Wiring | None = None,
    on_stop: Wiring | None = None,
    error_responses: Mapping[type[Exception], ErrorResponse] | None = None,
) -> FastAPI:
    """A service app whose lifespan opens the database and Kafka, relays its outbox and runs its consumers."""

    async def startup(app: FastAPI) -> Sequence[ReadinessCheck]:
        runtime = ServiceRuntime(settings, outbox_collections=outbox_collections)
        await runtime.start()
        app.state.runtime = runtime
        app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(5.0, connect=2.0), event_hooks={"request": [telemetry.inject_into_request]}
        )
        revoked = None
        if settings.revocation_topic:
            app.state.revoked_accounts = RevokedAccounts(timedelta(minutes=settings.revocation_lookback_minutes))
            runtime.follow_revocations(app.state.revoked_accounts)
            revoked = app.state.revoked_accounts.is_revoked
        app.state.token_verifier = TokenVerifier.from_url(settings.jwks_url, app.state.http, revoked=revoked)
        if on_start is not None:
            await on_start(app, runtime)
        for spec in consumers(app, runtime):
            runtime.add_consumer(spec)
        return [*runtime.readiness_checks(), *extra_checks(app, runtime)]

    async def shutdown(app: FastAPI) -> None:
        runtime: ServiceRuntime = app.state.runtime
        # A handler still running would use a client on_stop closes (the notifier's SMTP pool).
        await runtime.stop_background()
        if on_stop is not None:
            await on_stop(app, runtime)
        await app.state.http.aclose()
        await runtime.stop()

    app = create_service_app(
        settings,
        title=title,
        description=description,
        routers=[session_router(), _db_commands_router(), *routers],
        startup=startup,
        shutdown=shutdown,
    )
    # Before the service's own mappings, which may answer some of these more precisely.
    for kind in DEPENDENCY_DOWN:
        app.add_exception_handler(kind, _dependency_down)
    for kind, respond in (error_responses or {}).items():
        app.add_exception_handler(kind, _handler(respond))
    return app


def _db_commands_router() -> APIRouter:
    """What the journey benchmark reads on each service's own port; the gateway does not forward
    ``/internal/`` (no OpenAPI entry either: it is not part of the public API)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/internal/db-commands")
    async def db_commands() -> dict[str, int]:
        return mongo.command_counts.snapshot()

    @router.get("/internal/db-time")
    async def db_time() -> dict[str, float]:
        return mongo.command_counts.durations_ms()

    return router


async def _dependency_down(request: Request, exc: Exception) -> Response:
    """The database, the broker or S3 unreachable in the middle of a request: the client may
    retry, so a French 503 with Retry-After rather than a 500."""
    log.warning("dependency unavailable", error=repr(exc), path=request.url.path)
    return JSONResponse({"detail": DEPENDENCY_DOWN_DETAIL}, status_code=503, headers={"Retry-After": "30"})


def _handler(respond: ErrorResponse) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        return respond(exc)

    return handle


def serve(factory_path: str, settings: CommonSettings) -> None:
    """Runs one service process: ``factory_path`` is "package.module:create_app"."""
    uvicorn.run(
        factory_path,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=5,
    )
