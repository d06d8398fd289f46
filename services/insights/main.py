"""Wiring of the insights service: the faust app started in the lifespan beside the HTTP routes
(one process, so the routes read the tables the agents keep). Run with ``python -m services.insights.main``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.insights import api
from services.insights.consumers import InsightsStreams
from services.insights.settings import InsightsSettings
from services.insights.workdays import french_calendar
from services.kernel import telemetry
from services.kernel.app import create_service_app
from services.kernel.auth import RevokedAccounts, TokenVerifier, session_router
from services.kernel.health import ReadinessCheck
from services.kernel.runtime import feed_revocations
from services.kernel.service import serve


def create_app(settings: InsightsSettings | None = None) -> FastAPI:
    settings = settings or InsightsSettings()

    async def startup(app: FastAPI) -> Sequence[ReadinessCheck]:
        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0),
                                           event_hooks={"request": [telemetry.inject_into_request]})
        # A deleted account's tokens are refused at once, as in every service (kernel auth).
        app.state.revoked_accounts = RevokedAccounts(timedelta(minutes=settings.revocation_lookback_minutes))
        app.state.revocations = asyncio.create_task(feed_revocations(settings, app.state.revoked_accounts))
        app.state.token_verifier = TokenVerifier.from_url(
            settings.jwks_url, app.state.http, revoked=app.state.revoked_accounts.is_revoked)
        streams = InsightsStreams(settings, french_calendar(settings.timezone))
        app.state.streams = streams
        await streams.start()
        return [ReadinessCheck("kafka", streams.ready_kafka), ReadinessCheck("tables", streams.ready_tables)]

    async def shutdown(app: FastAPI) -> None:
        app.state.revocations.cancel()
        await app.state.streams.stop()
        await app.state.http.aclose()

    return create_service_app(
        settings,
        title="Tableau de bord de la campagne",
        description=(
            "Live tables of the enrolment campaign (faust-streaming, changelog-backed): files per status "
            "and per day, decision delays, backlog, corrections, schools and levels, the families' funnel, "
            "overdue files. Agents only."
        ),
        routers=[session_router(), api.router],
        startup=startup,
        shutdown=shutdown,
    )


if __name__ == "__main__":
    serve("services.insights.main:create_app", InsightsSettings())
