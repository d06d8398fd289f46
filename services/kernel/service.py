"""Wiring shared by the back-end services: runtime in the lifespan, consumers, uvicorn entry point."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI

from services.kernel.app import create_service_app
from services.kernel.auth import TokenVerifier, session_router
from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ConsumerSpec, ServiceRuntime
from services.kernel.settings import CommonSettings

Wiring = Callable[[FastAPI, ServiceRuntime], Awaitable[None]]


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
) -> FastAPI:
    """A service app whose lifespan opens the database and Kafka, relays its outbox and runs its consumers."""

    async def startup(app: FastAPI) -> Sequence[ReadinessCheck]:
        runtime = ServiceRuntime(settings, outbox_collections=outbox_collections)
        await runtime.start()
        app.state.runtime = runtime
        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        app.state.token_verifier = TokenVerifier.from_url(settings.jwks_url, app.state.http)
        if on_start is not None:
            await on_start(app, runtime)
        for spec in consumers(app, runtime):
            runtime.add_consumer(spec)
        return [*runtime.readiness_checks(), *extra_checks(app, runtime)]

    async def shutdown(app: FastAPI) -> None:
        runtime: ServiceRuntime = app.state.runtime
        if on_stop is not None:
            await on_stop(app, runtime)
        await app.state.http.aclose()
        await runtime.stop()

    return create_service_app(
        settings,
        title=title,
        description=description,
        routers=[session_router(), *routers],
        startup=startup,
        shutdown=shutdown,
    )


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
