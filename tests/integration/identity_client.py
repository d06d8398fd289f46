"""Test helpers for identity flows: a client per simulated person, and the events it caused."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from services.kernel.envelope import TYPE_PREFIX
from tests.integration.kafka_tools import read_all

IDENTITY = "http://127.0.0.1:8101"
GATEWAY = "http://127.0.0.1:8080"
GOOD_PASSWORD = "tartine au miel de mai"
NEW_PASSWORD = "lampe verte sur le piano"


def person() -> tuple[httpx.AsyncClient, str]:
    """A client with its own address (as the gateway forwards it) and a fresh email."""
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    client = httpx.AsyncClient(base_url=IDENTITY, headers={"X-Forwarded-For": address}, timeout=15)
    return client, f"parent.{uuid.uuid4().hex[:10]}@example.org"


async def wait_for_event(topic: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        for record in reversed(await read_all(topic)):
            event = json.loads(record.value)
            if predicate(event):
                return event
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching event on {topic} within {timeout_s}s")
        await asyncio.sleep(0.3)


async def events_for(topic: str, account_id: str) -> list[dict[str, Any]]:
    return [e for e in (json.loads(r.value) for r in await read_all(topic)) if e["subject"] == account_id]


async def link_token(event_type: str, email: str, *, exclude: set[str] = frozenset()) -> tuple[str, dict[str, Any]]:
    """The token of the newest link of that type mailed to ``email`` (not one already seen)."""
    event = await wait_for_event(
        "identity.mail.v1",
        # .get: the topic also holds malformed events that tests of the dead-letter path publish.
        lambda e: e["type"].removeprefix(TYPE_PREFIX) == event_type and e["data"].get("email") == email and e["data"]["link"] not in exclude,
    )
    return event["data"]["link"].split("jeton=")[1], event


async def registered_and_activated(client: httpx.AsyncClient, email: str) -> str:
    """Registers, activates from the mailed link; returns the account id."""
    response = await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Camille Martin"})
    assert response.status_code == 202, response.text
    token, event = await link_token("ActivationLinkIssued", email)
    assert (await client.post("/auth/activation", json={"token": token})).status_code == 200
    return event["subject"]


async def logged_in(client: httpx.AsyncClient, email: str, password: str = GOOD_PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def invited_staff(role: str = "agent", name: str = "Anne Agent") -> tuple[str, str]:
    """A staff account created by the admin command; returns (email, invitation token)."""
    import subprocess
    import sys

    from tests.integration.conftest import ROOT

    email = f"{role}.{uuid.uuid4().hex[:10]}@ville.example.fr"
    created = subprocess.run(
        [sys.executable, "-m", "services.identity.admin", "create-staff", "--email", email, "--name", name, "--role", role],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token, _ = await link_token("PasswordResetLinkIssued", email)
    return email, token


async def staff_token(role: str = "agent", name: str = "Anne Agent") -> str:
    """An access token of a new staff member who chose a password from the invitation."""
    email, token = await invited_staff(role, name)
    client, _ = person()
    async with client:
        confirmed = await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
        assert confirmed.status_code == 200, confirmed.text
        return (await logged_in(client, email, NEW_PASSWORD))["access_token"]
