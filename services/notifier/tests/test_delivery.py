"""Delivery rules with an in-memory store and mailer: one email per (event, recipient)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest

from schemas.contracts.identity import AccountActivated, AccountRegistered, ActivationLinkIssued, PasswordChanged
from services.kernel.consumer import TransientError
from services.kernel.envelope import TYPE_PREFIX, new_event
from services.notifier.consumers import Notifier
from services.notifier.domain import DeliveryStatus
from services.notifier.mailer import PermanentSmtpError, TransientSmtpError
from services.notifier.settings import NotifierSettings
from services.notifier.store import Claim, ClaimState

NOW = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)


class MemoryStore:
    def __init__(self) -> None:
        self.recipients: dict[str, dict[str, Any]] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}

    async def remember_recipient(self, account_id: str, email: str, display_name: str, *, registered_at: datetime | None = None) -> dict[str, Any] | None:
        doc = self.recipients.setdefault(account_id, {})
        if doc.get("deleted"):
            return None
        doc.update(email=email, display_name=display_name)
        if registered_at is not None:
            doc.setdefault("registered_at", registered_at)
        return doc

    async def remember_children(self, account_id: str, first_names: dict[str, str]) -> None:
        doc = self.recipients.setdefault(account_id, {})
        if not doc.get("deleted"):
            doc.setdefault("children", {}).update(first_names)

    async def recipient(self, account_id: str) -> dict[str, Any] | None:
        doc = self.recipients.get(account_id)
        return None if doc is None or doc.get("deleted") else doc

    async def is_forgotten(self, account_id: str) -> bool:
        return bool(self.recipients.get(account_id, {}).get("deleted"))

    async def forget(self, account_id: str, now: datetime) -> int:
        self.recipients[account_id] = {"deleted": True}
        for d in self.deliveries.values():
            if d["account_id"] == account_id:
                d.pop("to", None)
        return 0

    async def claim(self, document: dict[str, Any], *, owner: str, now: datetime, lease: timedelta) -> Claim:
        existing = self.deliveries.get(document["_id"])
        if existing is None:
            self.deliveries[document["_id"]] = {**document, "status": "sending", "owner": owner, "lease_until": now + lease, "attempts": 1, "created_at": now, "outbox": []}
            return Claim(ClaimState.NEW, 1, now)
        if existing["status"] != "sending":
            return Claim(ClaimState.DONE)
        if existing["owner"] == owner or existing["lease_until"] < now:
            existing.update(owner=owner, lease_until=now + lease, attempts=existing["attempts"] + 1)
            return Claim(ClaimState.RESUMED, existing["attempts"], existing["created_at"])
        return Claim(ClaimState.BUSY)

    async def retry_noted(self, delivery_id: str, *, owner: str, error: str, now: datetime, lease: timedelta, next_attempt: bool = True) -> int:
        d = self.deliveries[delivery_id]
        d.update(last_error=error, attempts=d["attempts"] + (1 if next_attempt else 0))
        return d["attempts"]

    async def finish(self, delivery_id: str, *, status: DeliveryStatus, fields: dict[str, Any], events: list[dict[str, Any]]) -> None:
        d = self.deliveries[delivery_id]
        if d["status"] == "sending":
            d.update(status=status, **fields)
            d["outbox"] += events

    async def record_failed(self, document: dict[str, Any], events: list[dict[str, Any]]) -> bool:
        if document["_id"] in self.deliveries:
            return False
        self.deliveries[document["_id"]] = {**document, "status": "failed", "outbox": events}
        return True


class ScriptedMailer:
    """Answers each send with the next scripted outcome (an exception or None for success)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[tuple[str, Message]] = []

    async def send(self, message: Message, recipient: str) -> str:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append((recipient, message))
        return "250 OK"


async def no_sleep(_: float) -> None:
    return None


def notifier(store: MemoryStore, mailer: ScriptedMailer, owner: str = "me", now: datetime = NOW) -> Notifier:
    return Notifier(NotifierSettings(), store, mailer, clock=lambda: now, sleep=no_sleep, owner=owner)


def activation_event(email: str = "marie@example.org", event_id: str = "evt-1") -> Any:
    data = ActivationLinkIssued(account_id="acc-1", email=email, display_name="Marie", link="http://x/activation?jeton=SECRET", expires_at=NOW + timedelta(hours=48))
    return new_event(data, source="/services/identity", subject="acc-1", event_id=event_id, time=NOW)


def outbox_types(store: MemoryStore) -> list[str]:
    """The outbox's event types, without the CloudEvents reverse-DNS prefix."""
    return [e["type"].removeprefix(TYPE_PREFIX) for d in store.deliveries.values() for e in d["outbox"]]


async def test_an_event_delivered_twice_sends_one_email() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    n = notifier(store, mailer)
    await n.on_mail_request(activation_event())
    await n.on_mail_request(activation_event())
    assert len(mailer.sent) == 1
    (delivery,) = store.deliveries.values()
    assert delivery["status"] == "sent" and outbox_types(store) == ["NotificationSent"]
    sent = json.loads(delivery["outbox"][0]["value"])
    assert sent["subject"] == "acc-1" and sent["causationid"] == "evt-1"
    assert "SECRET" not in json.dumps(delivery, default=str)  # the link is never stored


async def test_transient_failures_are_retried_then_handed_back_to_the_consumer_and_resumed() -> None:
    store, mailer = MemoryStore(), ScriptedMailer(TransientSmtpError("refused"), TransientSmtpError("refused"), TransientSmtpError("refused"))
    n = notifier(store, mailer)
    with pytest.raises(TransientError):
        await n.on_mail_request(activation_event())
    assert mailer.sent == [] and next(iter(store.deliveries.values()))["status"] == "sending"
    await n.on_mail_request(activation_event())  # the consumer's retry: same process resumes at once
    assert len(mailer.sent) == 1
    delivery = next(iter(store.deliveries.values()))
    assert delivery["status"] == "sent" and delivery["attempts"] == 4


async def test_a_refused_recipient_is_recorded_as_failed_and_not_retried() -> None:
    store, mailer = MemoryStore(), ScriptedMailer(PermanentSmtpError("550 <marie@example.org> unknown", 550))
    await notifier(store, mailer).on_mail_request(activation_event())
    (delivery,) = store.deliveries.values()
    assert delivery["status"] == "failed" and delivery["smtp_code"] == 550
    assert "marie@example.org" not in delivery["last_error"]
    assert outbox_types(store) == ["NotificationFailed"]


async def test_a_delivery_left_sending_by_a_dead_process_waits_for_its_lease_then_is_sent_again() -> None:
    store = MemoryStore()
    await store.claim({"_id": "x"}, owner="dead", now=NOW, lease=timedelta(seconds=15))  # unrelated
    event = activation_event()
    from services.notifier import domain

    await store.claim({"_id": domain.delivery_id(event.id, "marie@example.org"), "account_id": "acc-1"}, owner="dead", now=NOW, lease=timedelta(seconds=15))
    mailer = ScriptedMailer()
    with pytest.raises(TransientError):
        await notifier(store, mailer, owner="new").on_mail_request(event)  # lease still live
    await notifier(store, mailer, owner="new", now=NOW + timedelta(seconds=16)).on_mail_request(event)
    assert len(mailer.sent) == 1  # at-least-once on the crash window, same Message-ID


async def test_an_erased_accounts_late_mail_request_is_dropped() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    await store.forget("acc-1", NOW)
    await notifier(store, mailer).on_mail_request(activation_event())
    assert mailer.sent == [] and store.deliveries == {}


async def test_expired_links_and_old_events_are_not_emailed_but_logged() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    await notifier(store, mailer, now=NOW + timedelta(hours=49)).on_mail_request(activation_event())
    await notifier(store, mailer, now=NOW + timedelta(days=10)).on_mail_request(activation_event(event_id="evt-2"))
    assert mailer.sent == []
    assert sorted(d["reason"] for d in store.deliveries.values()) == ["link_expired", "stale"]


async def test_password_changed_goes_to_the_projected_address_and_staff_get_no_family_welcome() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    n = notifier(store, mailer)
    registered = AccountRegistered(account_id="acc-1", email="marie@example.org", display_name="Marie", registered_at=NOW)
    await n.on_registered(new_event(registered, source="/s", subject="acc-1", time=NOW))
    staff = AccountActivated(account_id="acc-1", email="marie@example.org", display_name="Marie", activated_at=NOW, role="agent")
    await n.on_activated(new_event(staff, source="/s", subject="acc-1", time=NOW))
    assert mailer.sent == []
    family = AccountActivated(account_id="acc-1", email="marie@example.org", display_name="Marie", activated_at=NOW + timedelta(minutes=5))
    await n.on_activated(new_event(family, source="/s", subject="acc-1", time=NOW))
    changed = PasswordChanged(account_id="acc-1", changed_at=NOW, via="change")
    await n.on_password_changed(new_event(changed, source="/s", subject="acc-1", time=NOW))
    assert [(r, m["X-ECP-Template"]) for r, m in mailer.sent] == [("marie@example.org", "welcome"), ("marie@example.org", "password_changed")]
