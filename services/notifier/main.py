"""Wiring of the notifier service: settings, clients opened in the lifespan, routes, consumers.
Run with ``python -m services.notifier.main``."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ConsumerSpec, ServiceRuntime, retry_forever
from services.kernel.service import backend_app, serve
from services.notifier import api, events
from services.notifier.consumers import Notifier
from services.notifier.digest import OverdueDigest
from services.notifier.mailer import SmtpMailer
from services.notifier.settings import NotifierSettings
from services.notifier.store import NotifierStore


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: NotifierSettings = runtime.settings  # type: ignore[assignment]
    app.state.mailer = SmtpMailer(settings)
    app.state.store = NotifierStore(runtime.db)
    await retry_forever(app.state.store.ensure_indexes, "notifier indexes")
    app.state.notifier = Notifier(settings, app.state.store, app.state.mailer, events_queued=runtime.events_queued)
    app.state.digest = OverdueDigest(settings, runtime.db, app.state.mailer)
    await retry_forever(app.state.digest.ensure_indexes, "overdue digest indexes")
    app.state.digest_task = asyncio.create_task(app.state.digest.run(), name="overdue-digest")

    async def purge() -> dict[str, int]:
        now = datetime.now(UTC)
        log_before = now - timedelta(days=settings.delivery_log_retention_days)
        purged = await app.state.store.purge(
            deliveries_before=log_before,
            tombstones_before=now - timedelta(days=settings.recipient_tombstone_days),
        )
        return {**purged, **await app.state.digest.purge(log_before)}

    runtime.every(settings.purge_interval_s, purge, "notifier retention purge")


def consumer_specs(app: FastAPI, runtime: ServiceRuntime) -> list[ConsumerSpec]:
    # The handlers mostly wait (database, SMTP server): a batch's accounts are handled at once.
    concurrency = runtime.settings.consumer_concurrency  # type: ignore[attr-defined]
    return [*(dataclasses.replace(spec, concurrency=concurrency) for spec in app.state.notifier.consumer_specs()),
            app.state.digest.consumer_spec()]


async def close_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    app.state.digest_task.cancel()
    await app.state.mailer.close()


def create_app() -> FastAPI:
    return backend_app(
        NotifierSettings(),
        title="Notifications",
        description="French emails for every family-facing transition, delivered over SMTP exactly once, "
        "and the delivery log agents read.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        consumers=consumer_specs,
        on_start=open_clients,
        on_stop=close_clients,
        extra_checks=lambda app, runtime: [ReadinessCheck("smtp", app.state.mailer.ping)],
    )


if __name__ == "__main__":
    serve("services.notifier.main:create_app", NotifierSettings())
