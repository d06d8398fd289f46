"""Wiring of the identity service: settings, clients opened in the lifespan, routes. Run with
``python -m services.identity.main``."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from fastapi import FastAPI

from services.identity import api, events
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.identity.store import IdentityStore
from services.identity.usecases import KEY_RELOAD_INTERVAL, IdentityError, IdentityService, load_keyring
from services.kernel.auth import TokenVerifier
from services.kernel.runtime import ServiceRuntime, retry_forever
from services.kernel.service import backend_app, serve


async def open_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    settings: IdentitySettings = runtime.settings  # type: ignore[assignment]
    store = IdentityStore(runtime.db)
    await retry_forever(store.ensure_indexes, "identity indexes")
    keyring = await load_keyring(store, settings, datetime.now(UTC))
    passwords = Passwords(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
    identity = IdentityService(store, settings, passwords, keyring, events_queued=runtime.events_queued)
    app.state.identity = identity

    async def local_jwks() -> dict:
        return identity.keyring.jwks()

    async def deleted(account_id: str) -> bool:
        return await store.by_id(account_id) is None

    # Identity verifies its own tokens from its key ring, without an HTTP call to itself, and
    # refuses those of an account deleted meanwhile from its own records.
    app.state.token_verifier = TokenVerifier(local_jwks, refetch_interval_s=0, revoked=deleted)

    async def reload_keys() -> None:
        # Picks up keys rotated by the admin command (or another replica), before they sign.
        while True:
            await asyncio.sleep(KEY_RELOAD_INTERVAL.total_seconds())
            with contextlib.suppress(Exception):
                identity.keyring = await load_keyring(store, settings, datetime.now(UTC))
            with contextlib.suppress(Exception):
                await store.purge_rate_limits(datetime.now(UTC))

    app.state.key_reloader = asyncio.create_task(reload_keys())
    runtime.every(settings.purge_interval_s, identity.purge, "identity retention purge")


async def close_clients(app: FastAPI, runtime: ServiceRuntime) -> None:
    app.state.key_reloader.cancel()


def create_app() -> FastAPI:
    return backend_app(
        IdentitySettings(),
        title="Identité",
        description="Accounts, credentials, activation and reset links, sessions, roles, token signing keys (JWKS).",
        routers=[api.router],
        outbox_collections=[events.OUTBOX_COLLECTION],
        on_start=open_clients,
        on_stop=close_clients,
        error_responses={IdentityError: api.identity_error_response},
    )


if __name__ == "__main__":
    serve("services.identity.main:create_app", IdentitySettings())
