"""HTTP app factory shared by every service: lifespan, request ids, health routes, error shape."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kernel import telemetry
from services.kernel.health import ReadinessCheck, evaluate, health_router
from services.kernel.logging import configure_logging, get_logger, log_context
from services.kernel.settings import CommonSettings

log = get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")

Lifespan = Callable[[FastAPI], Any]


def _incoming_id(scope: Scope, header: str) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.decode("latin-1") == header:
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else None
    return None


class RequestContextMiddleware:
    """Binds the gateway's request id (and the correlation id) to the logs of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope, REQUEST_ID_HEADER) or uuid.uuid4().hex
        correlation_id = _incoming_id(scope, CORRELATION_ID_HEADER) or request_id
        scope.setdefault("state", {})["request_id"] = request_id
        scope["state"]["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with log_context(request_id=request_id, correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)


INVALID_INPUT = "Les données envoyées ne sont pas valides."
# FastAPI's answer when a body cannot be read at all (e.g. JSON that is not UTF-8): English and a 400.
_UNREADABLE_BODY = "There was an error parsing the body"
# What the 422 answers really look like (FastAPI's default component describes its own shape).
_VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    # ``errors`` lists the fields at fault when the request does not fit the route's parameters; a
    # service's own 422 (a rule it checks itself) carries only ``detail``.
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "Detail"},
        "errors": {
            "type": "array",
            "title": "Errors",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _invalid_input(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": INVALID_INPUT, "errors": errors})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _invalid_input(
        [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    )


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        return _invalid_input([{"loc": ["body"], "msg": "Le corps de la requête est illisible.", "type": "body_unreadable"}])
    return await http_exception_handler(request, exc)


def _openapi_with_real_validation_errors(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = _VALIDATION_ERROR_SCHEMA
        return schema

    return openapi


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc, path=request.url.path)
    return JSONResponse(
        status_code=500, content={"detail": "Une erreur inattendue s'est produite. Veuillez réessayer plus tard."}
    )


def create_service_app(
    settings: CommonSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    startup: Callable[[FastAPI], Awaitable[Sequence[ReadinessCheck]]],
    shutdown: Callable[[FastAPI], Awaitable[None]],
) -> FastAPI:
    """Builds a service's app. ``startup`` opens its clients and returns its readiness checks."""
    configure_logging(settings.service_name, settings.log_level)
    telemetry.configure(
        settings.service_name,
        enabled=settings.telemetry,
        otlp_endpoint=settings.otlp_endpoint,
        sample_ratio=settings.trace_sample_ratio,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.readiness_checks = await startup(app)
        telemetry.on_scrape(lambda: _observe_readiness(app.state.readiness_checks))
        log.info("service started", port=settings.http_port)
        try:
            yield
        finally:
            await shutdown(app)
            telemetry.clear_scrape_hooks()
            telemetry.flush()
            log.info("service stopped")

    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        # The gateway strips the public prefix; the OpenAPI document still shows public paths.
        servers=[{"url": settings.public_prefix}] if settings.public_prefix else None,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry spans are off: they record raw paths and query strings
        # (activation tokens) and add three spans per request; the kernel's middleware below
        # names each request by its route template.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Inside the request-context middleware: the request id is known when the span starts.
    app.add_middleware(telemetry.TelemetryMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(health_router(lambda request: request.app.state.readiness_checks))
    app.include_router(telemetry_router(settings))
    for router in routers:
        app.include_router(router)
    app.openapi = _openapi_with_real_validation_errors(app)  # type: ignore[method-assign]
    return app


async def _observe_readiness(checks: Sequence[ReadinessCheck]) -> None:
    for name, state in (await evaluate(checks)).checks.items():
        telemetry.READINESS.set(1.0 if state == "ok" else 0.0, check=name)


class TelemetrySwitch(BaseModel):
    enabled: bool


def telemetry_router(settings: CommonSettings) -> APIRouter:
    """``/metrics`` for Prometheus, and the run-time switch the journey benchmark uses; both on the
    service's own port only (the gateway answers 404 for them), outside the OpenAPI document."""
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def metrics() -> Response:
        body, content_type = await telemetry.render_metrics()
        return Response(body, media_type=content_type)

    @router.put("/internal/telemetry")
    async def switch_telemetry(switch: TelemetrySwitch) -> TelemetrySwitch:
        # Only where nothing but the developer can reach the port: elsewhere ECP_TELEMETRY decides.
        if settings.environment != "local":
            raise StarletteHTTPException(status_code=404, detail="Ressource introuvable.")
        telemetry.set_enabled(switch.enabled)
        log.info("telemetry switched", enabled=switch.enabled)
        return TelemetrySwitch(enabled=telemetry.enabled())

    return router
