"""Wiring of the household service: settings, clients opened in the lifespan, routes. Run with
``python -m services.household.main``."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.service import backend_app, serve
from services.household import api, events
from services.household.settings import HouseholdSettings


def create_app() -> FastAPI:
    return backend_app(
        HouseholdSettings(),
        title="Foyer",
        description="The family file (dossier): address, guardians, children, proofs, lifecycle and the agents' review.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
    )


if __name__ == "__main__":
    serve("services.household.main:create_app", HouseholdSettings())
