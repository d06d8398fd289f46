"""Wiring of the enrolment service: settings, clients opened in the lifespan, routes. Run with
``python -m services.enrolment.main``."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ServiceRuntime
from services.kernel.objectstore import ObjectStore
from services.kernel.settings import S3Settings
from services.kernel.service import backend_app, serve
from services.enrolment import api, events
from services.enrolment.settings import EnrolmentSettings


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: EnrolmentSettings = runtime.settings  # type: ignore[assignment]
    app.state.objects = ObjectStore(S3Settings())


def create_app() -> FastAPI:
    return backend_app(
        EnrolmentSettings(),
        title="Inscriptions scolaires",
        description="Schools, sector map, enrolments, out-of-sector requests and certificates.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        on_start=open_clients,
        extra_checks=lambda app, runtime: [ReadinessCheck("s3", app.state.objects.ready)],
    )


if __name__ == "__main__":
    serve("services.enrolment.main:create_app", EnrolmentSettings())
