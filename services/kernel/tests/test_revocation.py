"""The per-process set of deleted accounts whose access tokens are refused before they expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.kernel.auth import RevokedAccounts

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
