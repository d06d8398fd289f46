"""Wiring of the documents service: settings, clients opened in the lifespan, routes. Run with
``python -m services.documents.main``."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ServiceRuntime
from services.kernel.objectstore import ObjectStore
from services.kernel.settings import S3Settings
from services.documents.scanner import ClamdScanner
from services.kernel.service import backend_app, serve
from services.documents import api, events
from services.documents.settings import DocumentsSettings


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: DocumentsSettings = runtime.settings  # type: ignore[assignment]
    app.state.objects = ObjectStore(S3Settings())
    app.state.scanner = ClamdScanner(settings.clamd_host, settings.clamd_port)


def create_app() -> FastAPI:
    return backend_app(
        DocumentsSettings(),
        title="Pièces justificatives",
        description="Uploaded supporting documents: storage, type check, virus scan, short-lived links.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        on_start=open_clients,
        extra_checks=lambda app, runtime: [ReadinessCheck("s3", app.state.objects.ready), ReadinessCheck("clamd", app.state.scanner.ping)],
    )


if __name__ == "__main__":
    serve("services.documents.main:create_app", DocumentsSettings())
