"""Password reset and activation resend do the same work whether or not the address has an
account (issue #18, item 12): one link built, its event built, one database write, one relay
wake-up after the answer. Their timing is measured by bench/enumeration.py."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.contracts.identity import ActivationLinkIssued
from services.identity.domain import AccountState, issue_link
from services.identity.store import KEEP_LINKS, TIMING_DECOYS, IdentityStore
from services.identity.tests.fakes import service_with_account
from services.kernel.envelope import new_event
from services.kernel.outbox import OUTBOX_FIELD, PENDING_FIELD, outbox_entry

EMAIL = "camille.martin@example.org"


async def work_done(route: str, email: str, *, pending: bool) -> tuple[int, int, Any]:
    service, store, account_id = await service_with_account(EMAIL, "tartine au miel de mai", neutral_answer_relay_delay_s=0)
    if pending:
        store.accounts[account_id]["state"] = AccountState.PENDING_ACTIVATION
    wakes: list[int] = []
    service._events_queued = lambda: wakes.append(1)
    answer = await getattr(service, route)(email)
    await asyncio.sleep(0.01)
    return store.writes, len(wakes), answer


@pytest.mark.parametrize("route", ["request_reset", "resend_activation"])
async def test_an_unknown_address_costs_the_same_database_write_and_relay_wake_up_as_an_account(route: str) -> None:
    known = await work_done(route, EMAIL, pending=True)
    unknown = await work_done(route, "personne@example.org", pending=True)
    assert known == unknown == (1, 1, known[2])


async def test_a_resend_for_an_account_already_active_does_the_same_work_too() -> None:
    assert await work_done("resend_activation", EMAIL, pending=False) == await work_done("resend_activation", EMAIL, pending=True)


class RecordingCollection:
    """Keeps what an update would write, without a database."""

    def __init__(self) -> None:
        self.updates: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def update_one(self, query: dict[str, Any], update: dict[str, Any], upsert: bool = False) -> None:
        self.updates.append((query, update))


async def test_the_decoy_keeps_no_trace_of_the_account_or_address_asked_for_and_stays_a_few_entries_long() -> None:
    collections: defaultdict[str, RecordingCollection] = defaultdict(RecordingCollection)
    store = IdentityStore(collections)  # type: ignore[arg-type]
    decoys = collections[TIMING_DECOYS]
    account_id = "5f0c2d1e-account-of-camille"
    now = datetime.now(UTC)
    token, link = issue_link(now, timedelta(hours=1))
    event = ActivationLinkIssued(
        account_id=account_id, email=EMAIL, display_name="Camille Martin",
        link=f"https://ecp.example/activer?token={token}", expires_at=link.expires_at,
    )
    entries = [outbox_entry(new_event(event, source="/services/identity", subject=account_id), event.topic)]
    await store.write_decoy("activation", link, entries)
    [(_, update)] = decoys.updates
    written = repr(update)
    for personal in (account_id, EMAIL, "Camille", token):
        assert personal not in written
    pushed = update["$push"]
    assert pushed["events"]["$slice"] == pushed["activation_links"]["$slice"] == -KEEP_LINKS
    assert [len(e["key"]) for e in pushed["events"]["$each"]] == [len(account_id)]
    assert OUTBOX_FIELD not in pushed and PENDING_FIELD not in update.get("$set", {})  # the relay never sees it
