"""Wiring of the enrolment service: settings, clients opened in the lifespan, routes, the
certificate worker and the consumers (household dossiers, account erasure). Run with
``python -m services.enrolment.main``."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure

from schemas.contracts.household import DossierValidated, HouseholdSubmitted
from schemas.contracts.household import TOPIC as DOSSIER_TOPIC
from schemas.contracts.identity import AccountDeleted
from schemas.contracts.identity import TOPIC as ACCOUNT_TOPIC
from services.enrolment import api, certificate, domain, events
from services.enrolment.settings import EnrolmentSettings
from services.enrolment.store import EnrolmentStore
from services.enrolment.usecases import EnrolmentError, EnrolmentService
from services.kernel.envelope import CloudEvent
from services.kernel.health import ReadinessCheck
from services.kernel.logging import get_logger
from services.kernel.objectstore import ObjectStore, StorageUnavailable
from services.kernel.runtime import ConsumerSpec, ServiceRuntime, retry_forever
from services.kernel.service import backend_app, serve
from services.kernel.settings import S3Settings

DOSSIERS_GROUP = "enrolment-dossiers"
ERASURE_GROUP = "enrolment-erasure"
log = get_logger(__name__)


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: EnrolmentSettings = runtime.settings  # type: ignore[assignment]
    app.state.objects = ObjectStore(
        S3Settings(), public_endpoint=settings.public_endpoint, public_secure=settings.public_secure,
        sse=settings.s3_server_side_encryption,
    )
    store = EnrolmentStore(runtime.db)
    enrolment = EnrolmentService(store, app.state.objects, settings, events_queued=runtime.events_queued)
    app.state.enrolment = enrolment

    async def background() -> None:
        await retry_forever(store.ensure_indexes, "enrolment indexes")
        await retry_forever(enrolment.make_references_unique, "enrolment unique references")
        await retry_forever(enrolment.withdraw_erased_derogations, "withdraw erased accounts' dérogations")
        if settings.load_sample_data:
            await retry_forever(enrolment.load_sample_data, "enrolment sample data")
        await retry_forever(enrolment.announce_capacities, "announce the schools' capacities")
        await asyncio.gather(enrolment.run_certificate_worker(), enrolment.run_seat_repair())

    app.state.background = asyncio.create_task(background(), name="enrolment-background")
    runtime.every(settings.purge_interval_s, enrolment.purge, "enrolment retention purge")


async def close_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    app.state.background.cancel()
    certificate.shutdown()


def consumers(app: FastAPI, runtime: ServiceRuntime) -> list[ConsumerSpec]:
    async def dossier_validated(event: CloudEvent[DossierValidated]) -> None:
        await app.state.enrolment.dossier_validated(event.data, event.id)

    async def household_submitted(event: CloudEvent[HouseholdSubmitted]) -> None:
        await app.state.enrolment.household_submitted(event.data, event.id, correlation_id=event.correlationid)

    async def account_deleted(event: CloudEvent[AccountDeleted]) -> None:
        await app.state.enrolment.erase_account(event.data.account_id)

    return [
        ConsumerSpec(DOSSIERS_GROUP, [DOSSIER_TOPIC], {DossierValidated: dossier_validated, HouseholdSubmitted: household_submitted}),
        ConsumerSpec(ERASURE_GROUP, [ACCOUNT_TOPIC], {AccountDeleted: account_deleted}),
    ]



async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable", error=repr(exc), path=request.url.path)
    return JSONResponse({"detail": domain.UNAVAILABLE}, status_code=503, headers={"Retry-After": "30"})


def create_app() -> FastAPI:
    app = backend_app(
        EnrolmentSettings(),
        title="Inscriptions scolaires",
        description=(
            "Schools, the sector map, enrolments (level from the birth year, sector school, capacity), "
            "out-of-sector requests (dérogations) and certificats d'inscription."
        ),
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION, *events.CAPACITY_OUTBOX_COLLECTIONS, events.SECTOR_OUTBOX_COLLECTION],
        consumers=consumers,
        on_start=open_clients,
        on_stop=close_clients,
        extra_checks=lambda app, runtime: [ReadinessCheck("s3", app.state.objects.ready)],
        error_responses={EnrolmentError: api.enrolment_error_response},
    )
    app.add_exception_handler(ConnectionFailure, unavailable)
    app.add_exception_handler(StorageUnavailable, unavailable)
    return app


if __name__ == "__main__":
    serve("services.enrolment.main:create_app", EnrolmentSettings())
