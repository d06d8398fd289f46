"""Wiring of the notifier service: settings, clients opened in the lifespan, routes, consumers.
Run with ``python -m services.notifier.main``."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ServiceRuntime, retry_forever
from services.kernel.service import backend_app, serve
from services.notifier import api, events
from services.notifier.concurrent_consumer import run_consumer
from services.notifier.consumers import Notifier
from services.notifier.mailer import SmtpMailer
from services.notifier.relay import IndexedClaimRelay, run_relay
from services.notifier.settings import NotifierSettings
from services.notifier.store import NotifierStore


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: NotifierSettings = runtime.settings  # type: ignore[assignment]
    app.state.mailer = SmtpMailer(settings)
    app.state.store = NotifierStore(runtime.db)
    await retry_forever(app.state.store.ensure_indexes, "notifier indexes")
    # The notifier's own relay (relay.IndexedClaimRelay) publishes the deliveries' outcomes: the
    # kernel's claim query scans the whole collection on the local database server.
    assert runtime.publisher is not None
    relay = IndexedClaimRelay(
        [runtime.db[events.OUTBOX_COLLECTION]], runtime.publisher, owner=f"{settings.service_name}-{id(app):x}",
        lease_s=settings.outbox_lease_s, batch_size=settings.outbox_batch_size, poll_interval_s=settings.outbox_poll_interval_s,
    )
    app.state.notifier = Notifier(settings, app.state.store, app.state.mailer, events_queued=relay.notify)
    # The notifier's consumer groups handle a batch concurrently (concurrent_consumer), so they
    # run here rather than as the kernel's sequential consumers.
    app.state.background = [
        asyncio.create_task(run_consumer(runtime, spec, settings.consumer_concurrency), name=f"consumer-{spec.group_id}")
        for spec in app.state.notifier.consumer_specs()
    ]
    if settings.run_outbox_relay:
        app.state.background.append(asyncio.create_task(run_relay(runtime, relay), name="outbox-relay"))


async def close_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    for task in app.state.background:
        task.cancel()
    for task in app.state.background:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await app.state.mailer.close()


def create_app() -> FastAPI:
    return backend_app(
        NotifierSettings(),
        title="Notifications",
        description="French emails for every family-facing transition, delivered over SMTP exactly once, "
        "and the delivery log agents read.",
        routers=[api.router],
        on_start=open_clients,
        on_stop=close_clients,
        extra_checks=lambda app, runtime: [ReadinessCheck("smtp", app.state.mailer.ping)],
    )


if __name__ == "__main__":
    serve("services.notifier.main:create_app", NotifierSettings())
