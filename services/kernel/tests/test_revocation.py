"""The per-process set of deleted accounts whose access tokens are refused before they expire."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.kernel import runtime
from services.kernel.auth import RevokedAccounts
from services.kernel.settings import CommonSettings

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def deleted_event(account_id: str, deleted_at: datetime, *, prefixed: bool = True) -> bytes:
    kind = "fr.montclair-sur-loire.ecp.AccountDeleted" if prefixed else "AccountDeleted"
    return json.dumps({"type": kind, "subject": account_id, "data": {"account_id": account_id, "deleted_at": deleted_at.isoformat()}}).encode()


async def test_an_account_deleted_event_revokes_the_account_whatever_the_type_prefix() -> None:
    revoked = RevokedAccounts(timedelta(minutes=20), clock=lambda: NOW)
    assert revoked.take(deleted_event("a-1", NOW))
    assert revoked.take(deleted_event("a-2", NOW, prefixed=False))
    assert await revoked.is_revoked("a-1") and await revoked.is_revoked("a-2")
    assert not await revoked.is_revoked("a-3")


async def test_other_events_and_malformed_messages_revoke_nobody() -> None:
    revoked = RevokedAccounts(timedelta(minutes=20), clock=lambda: NOW)
    activated = json.dumps({"type": "fr.montclair-sur-loire.ecp.AccountActivated", "data": {"account_id": "a-1"}}).encode()
    assert not revoked.take(activated)
    assert not revoked.take(b"not json")
    assert not revoked.take(json.dumps({"type": "AccountDeleted", "data": {"account_id": "a-1"}}).encode())
    assert not await revoked.is_revoked("a-1")


async def test_a_revocation_is_forgotten_once_no_token_issued_before_it_can_be_alive() -> None:
    clock = [NOW]
    revoked = RevokedAccounts(timedelta(minutes=20), clock=lambda: clock[0])
    revoked.take(deleted_event("a-1", NOW))
    clock[0] = NOW + timedelta(minutes=19)
    assert await revoked.is_revoked("a-1")
    clock[0] = NOW + timedelta(minutes=21)
    assert not await revoked.is_revoked("a-1")
    # A deletion read back from further than the look-back is not kept at all.
    revoked.take(deleted_event("a-2", NOW - timedelta(hours=1)))
    assert not await revoked.is_revoked("a-2")


async def test_revocations_nobody_asks_about_again_do_not_pile_up() -> None:
    clock = [NOW]
    revoked = RevokedAccounts(timedelta(minutes=20), clock=lambda: clock[0])
    for i in range(1100):
        revoked.revoke(f"a-{i}", NOW)
    clock[0] = NOW + timedelta(minutes=21)
    revoked.revoke("late", clock[0])
    assert len(revoked._until) == 1 and await revoked.is_revoked("late")


class UnreachableThenReachableTail:
    """Stands for KafkaTail: Kafka refuses the first connection, then serves one deletion."""

    starts = 0

    def __init__(self, bootstrap: str, topics: list[str], client_id: str, since_ms: int, auth: object = None) -> None:
        self.delivered = False

    async def start(self) -> None:
        type(self).starts += 1
        if type(self).starts == 1:
            raise ConnectionError("Kafka unreachable")

    async def fetch(self, timeout_ms: int) -> list[SimpleNamespace]:
        if self.delivered:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        self.delivered = True
        return [SimpleNamespace(key=b"a-1", value=deleted_event("a-1", datetime.now(UTC)))]

    async def stop(self) -> None:
        pass


async def test_the_revocation_feed_keeps_trying_while_kafka_is_down_and_fills_the_set_once_it_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.kafka, "KafkaTail", UnreachableThenReachableTail)
    revoked = RevokedAccounts(timedelta(minutes=20))
    feed = asyncio.create_task(runtime.feed_revocations(CommonSettings(), revoked))
    try:
        await asyncio.sleep(0.05)
        assert UnreachableThenReachableTail.starts == 1 and not feed.done()
        assert not await revoked.is_revoked("a-1")
        for _ in range(40):  # the retry waits 0.5 s after the first failure
            if await revoked.is_revoked("a-1"):
                break
            await asyncio.sleep(0.05)
        assert await revoked.is_revoked("a-1")
    finally:
        feed.cancel()
