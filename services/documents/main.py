"""Wiring of the documents service: settings, clients opened in the lifespan, routes, the scan
loop, the sweeper and the erasure consumer. Run with ``python -m services.documents.main``."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from schemas.contracts.identity import AccountDeleted
from schemas.contracts.identity import TOPIC as ACCOUNT_TOPIC
from services.documents import api, events
from services.documents.consumers import dossier_consumer
from services.documents.scanner import ClamdScanner
from services.documents.settings import DocumentsSettings
from services.documents.store import DocumentsStore
from services.documents.usecases import DocumentsError, DocumentsService
from services.kernel.envelope import CloudEvent
from services.kernel.health import ReadinessCheck
from services.kernel.runtime import ConsumerSpec, ServiceRuntime, retry_forever
from services.kernel.service import backend_app, serve
from services.kernel.settings import S3Settings
from services.kernel.objectstore import ObjectStore

ERASURE_GROUP = "documents-erasure"


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: DocumentsSettings = runtime.settings  # type: ignore[assignment]
    app.state.objects = ObjectStore(
        S3Settings(), public_endpoint=settings.public_endpoint, public_secure=settings.public_secure,
        sse=settings.s3_server_side_encryption,
    )
    app.state.scanner = ClamdScanner(settings.clamd_host, settings.clamd_port, settings.clamd_timeout_s)
    store = DocumentsStore(runtime.db)
    documents = DocumentsService(store, app.state.objects, app.state.scanner, settings, events_queued=runtime.events_queued)
    app.state.documents = documents

    async def background() -> None:
        await retry_forever(store.ensure_indexes, "documents indexes")
        await asyncio.gather(documents.run_scanner(), documents.run_sweeper())

    app.state.background = asyncio.create_task(background(), name="documents-scan-and-sweep")


async def close_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    app.state.background.cancel()


def consumers(app: FastAPI, runtime: ServiceRuntime) -> list[ConsumerSpec]:
    async def account_deleted(event: CloudEvent[AccountDeleted]) -> None:
        await app.state.documents.erase_account(
            event.data.account_id, causation_id=event.id, correlation_id=event.correlationid
        )

    return [
        ConsumerSpec(ERASURE_GROUP, [ACCOUNT_TOPIC], {AccountDeleted: account_deleted}),
        dossier_consumer(app.state.documents.store),
    ]


def create_app() -> FastAPI:
    return backend_app(
        DocumentsSettings(),
        title="Pièces justificatives",
        description="Uploaded supporting documents: storage, type check, virus scan, short-lived links, sworn statements.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        consumers=consumers,
        on_start=open_clients,
        on_stop=close_clients,
        extra_checks=lambda app, runtime: [
            ReadinessCheck("s3", app.state.objects.ready), ReadinessCheck("clamd", app.state.scanner.ping)
        ],
        error_responses={DocumentsError: api.documents_error_response},
    )


if __name__ == "__main__":
    serve("services.documents.main:create_app", DocumentsSettings())
