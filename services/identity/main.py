"""Wiring of the identity service: settings, clients opened in the lifespan, routes. Run with
``python -m services.identity.main``."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.service import backend_app, serve
from services.identity import api, events
from services.identity.settings import IdentitySettings


def create_app() -> FastAPI:
    return backend_app(
        IdentitySettings(),
        title="Identité",
        description="Accounts, credentials, activation and reset tokens, roles, token signing keys.",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
    )


if __name__ == "__main__":
    serve("services.identity.main:create_app", IdentitySettings())
