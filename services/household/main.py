"""Wiring of the household service: settings, clients opened in the lifespan, routes, consumers.
Run with ``python -m services.household.main``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from services.household import api, events
from services.household.consumers import consumer_specs
from services.household.settings import HouseholdSettings
from services.household.store import HouseholdStore
from services.household.usecases import HouseholdError, HouseholdService
from services.kernel.runtime import ConsumerSpec, ServiceRuntime, retry_forever
from services.kernel.service import backend_app, serve


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: HouseholdSettings = runtime.settings  # type: ignore[assignment]
    store = HouseholdStore(runtime.db)
    await retry_forever(store.ensure_indexes, "household indexes")
    app.state.household = HouseholdService(
        store, documents_url=settings.documents_url, reference_prefix=settings.reference_prefix, http=app.state.http,
        events_queued=runtime.events_queued
    )
    # In the background: the service answers meanwhile, and the older files get theirs in seconds.
    app.state.reference_backfill = asyncio.create_task(
        retry_forever(app.state.household.backfill_references, "household references"))
    app.state.reasons_seed = asyncio.create_task(
        retry_forever(app.state.household.seed_correction_reasons, "household correction reasons"))

    async def purge() -> dict[str, int]:
        now = datetime.now(UTC)
        return await app.state.household.purge(updated_before=now - timedelta(days=settings.dossier_retention_days),
                                               audit_before=now - timedelta(days=settings.audit_retention_days))

    runtime.every(settings.purge_interval_s, purge, "household retention purge")
    runtime.every(settings.count_settle_interval_s, store.settle_pending, "household queue counts")


def consumers(app: FastAPI, runtime: ServiceRuntime) -> list[ConsumerSpec]:
    return consumer_specs(app.state.household)


def create_app() -> FastAPI:
    return backend_app(
        HouseholdSettings(),
        title="Foyer",
        description="The family file (dossier): address, guardians, children, proofs, lifecycle and the agents' review.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        consumers=consumers,
        on_start=open_clients,
        error_responses={HouseholdError: api.household_error_response},
    )


if __name__ == "__main__":
    serve("services.household.main:create_app", HouseholdSettings())
