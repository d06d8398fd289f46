"""Wiring of the notifier service: settings, clients opened in the lifespan, routes. Run with
``python -m services.notifier.main``."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ServiceRuntime
from services.notifier.mailer import SmtpMailer
from services.kernel.service import backend_app, serve
from services.notifier import api, events
from services.notifier.settings import NotifierSettings


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: NotifierSettings = runtime.settings  # type: ignore[assignment]
    app.state.mailer = SmtpMailer(settings)


def create_app() -> FastAPI:
    return backend_app(
        NotifierSettings(),
        title="Notifications",
        description="French emails for every family-facing transition, delivered over SMTP exactly once.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        on_start=open_clients,
        extra_checks=lambda app, runtime: [ReadinessCheck("smtp", app.state.mailer.ping)],
    )


if __name__ == "__main__":
    serve("services.notifier.main:create_app", NotifierSettings())
