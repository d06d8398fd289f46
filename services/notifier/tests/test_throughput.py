"""The notifier's throughput pieces without network: group commit, the concurrent consumer and
the SMTP connection pool, each checked for the guarantee it must keep."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from services.identity.events import AccountRegistered, PasswordChanged
from services.kernel.envelope import CloudEvent, event_json, new_event
from services.kernel.kafka import IncomingMessage, OutgoingMessage
from services.notifier import mailer as mailer_module
from services.notifier.batching import BulkBatcher
from services.notifier.concurrent_consumer import ConcurrentConsumer
from services.notifier.mailer import PermanentSmtpError, SmtpMailer
from services.notifier.settings import NotifierSettings


# group commit


async def test_writes_queued_together_go_in_one_bulk_call_and_each_caller_gets_its_own_outcome() -> None:
    calls: list[list[int]] = []

    async def bulk(items: Sequence[int]) -> list[str | Exception]:
        calls.append(list(items))
        return [ValueError(f"refused {i}") if i % 2 else f"ok {i}" for i in items]

    commit: BulkBatcher[int, str] = BulkBatcher(bulk)
    outcomes = await asyncio.gather(*(commit.submit(i) for i in range(6)), return_exceptions=True)
    assert calls == [[0, 1, 2, 3, 4, 5]]
    assert [str(o) for o in outcomes] == ["ok 0", "refused 1", "ok 2", "refused 3", "ok 4", "refused 5"]


async def test_writes_arriving_during_a_bulk_call_go_in_the_next_one_and_a_failed_call_fails_its_callers() -> None:
    calls: list[list[str]] = []
    first_in_flight = asyncio.Event()
    release = asyncio.Event()

    async def bulk(items: Sequence[str]) -> list[None | Exception]:
        calls.append(list(items))
        if len(calls) == 1:
            first_in_flight.set()
            await release.wait()
            raise ConnectionError("database unreachable")
        return [None] * len(items)

    commit: BulkBatcher[str, None] = BulkBatcher(bulk)
    first = asyncio.ensure_future(commit.submit("a"))
    await first_in_flight.wait()
    later = [asyncio.ensure_future(commit.submit(x)) for x in ("b", "c")]
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(ConnectionError):
        await first
    assert await asyncio.gather(*later) == [None, None]
    assert calls == [["a"], ["b", "c"]]


# concurrent consumer


class OneBatch:
    def __init__(self, messages: list[IncomingMessage]) -> None:
        self.messages = messages
        self.committed: dict[tuple[str, int], int] = {}

    async def fetch(self, timeout_ms: int = 500) -> list[IncomingMessage]:
        batch, self.messages = self.messages, []
        return batch

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        self.committed.update(next_offsets)


class Remembered:
    def __init__(self, already: set[str] | None = None) -> None:
        self.ids = set(already or ())

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        return self.ids & set(event_ids)

    async def remember(self, group: str, event_ids: Sequence[str]) -> None:
        self.ids |= set(event_ids)


class DeadLetters:
    def __init__(self) -> None:
        self.published: list[OutgoingMessage] = []

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        self.published.extend(messages)


def message(event: CloudEvent[Any], offset: int, partition: int = 0) -> IncomingMessage:
    return IncomingMessage("identity.account.v1", partition, offset, event.subject, event_json(event))


def account_event(account: str, n: int) -> CloudEvent[Any]:
    if n == 0:
        data: Any = AccountRegistered(account_id=account, email=f"{account}@example.org", display_name=account,
                                      registered_at="2026-09-01T08:00:00Z")
    else:
        data = PasswordChanged(account_id=account, changed_at="2026-09-01T08:00:00Z", via="change")
    return new_event(data, source="/tests", subject=account, event_id=f"{account}-{n}")


def consumer(subscription: OneBatch, handlers: dict[Any, Any], processed: Remembered, dead: DeadLetters, concurrency: int) -> ConcurrentConsumer:
    return ConcurrentConsumer(
        concurrency=concurrency, group_id="g", subscription=subscription, handlers=handlers, processed=processed,
        dead_letters=dead, is_transient=lambda exc: False, max_attempts=1,
    )


async def test_accounts_run_at_once_up_to_the_bound_and_each_accounts_events_stay_in_order() -> None:
    accounts = [f"acc{i}" for i in range(6)]
    events = [account_event(a, n) for n in range(2) for a in accounts]  # interleaved, as in a partition
    running = 0
    most_at_once = 0
    order: dict[str, list[str]] = {}

    async def handle(event: CloudEvent[Any]) -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.01)
        order.setdefault(event.subject, []).append(event.type)
        running -= 1

    subscription, processed = OneBatch([message(e, i) for i, e in enumerate(events)]), Remembered()
    c = consumer(subscription, {AccountRegistered: handle, PasswordChanged: handle}, processed, DeadLetters(), concurrency=4)
    assert await c.consume_once() == 12
    assert most_at_once == 4
    assert all(types == ["AccountRegistered", "PasswordChanged"] for types in order.values()) and len(order) == 6
    assert processed.ids == {e.id for e in events}
    assert subscription.committed == {("identity.account.v1", 0): 12}


async def test_already_handled_events_are_skipped_and_a_failing_one_is_dead_lettered_without_stopping_the_rest() -> None:
    done, failing, fine = account_event("a", 0), account_event("b", 0), account_event("c", 0)
    handled: list[str] = []

    async def handle(event: CloudEvent[Any]) -> None:
        if event.id == failing.id:
            raise ValueError("broken")
        handled.append(event.id)

    subscription, dead = OneBatch([message(e, i) for i, e in enumerate([done, failing, fine, fine])]), DeadLetters()
    processed = Remembered({done.id})
    c = consumer(subscription, {AccountRegistered: handle}, processed, dead, concurrency=8)
    await c.consume_once()
    assert handled == [fine.id]  # the duplicate in the same batch is skipped too
    assert [(m.value, dict(m.headers)["dlq.consumer_group"]) for m in dead.published] == [(event_json(failing), b"g")]
    assert processed.ids == {done.id, fine.id}
    assert subscription.committed == {("identity.account.v1", 0): 4}


# SMTP connection pool


class FakeSmtp:
    """Stands in for aiosmtplib.SMTP: counts connections and transactions at once."""

    opened = 0
    busy = 0
    most_busy = 0
    script: list[Exception] = []

    def __init__(self, **_: Any) -> None:
        self.is_connected = False

    async def connect(self) -> None:
        FakeSmtp.opened += 1
        self.is_connected = True

    async def send_message(self, message: EmailMessage, recipients: list[str]) -> tuple[dict[str, Any], str]:
        FakeSmtp.busy += 1
        FakeSmtp.most_busy = max(FakeSmtp.most_busy, FakeSmtp.busy)
        try:
            await asyncio.sleep(0.01)
            if FakeSmtp.script:
                raise FakeSmtp.script.pop(0)
            return {}, "250 OK"
        finally:
            FakeSmtp.busy -= 1

    def close(self) -> None:
        self.is_connected = False

    async def quit(self) -> None:
        self.is_connected = False


@pytest.fixture
def fake_smtp(monkeypatch: pytest.MonkeyPatch) -> type[FakeSmtp]:
    monkeypatch.setattr(mailer_module.aiosmtplib, "SMTP", FakeSmtp)
    FakeSmtp.opened = FakeSmtp.busy = FakeSmtp.most_busy = 0
    FakeSmtp.script = []
    return FakeSmtp


async def test_the_pool_keeps_its_connections_for_the_next_emails_and_never_exceeds_its_size(fake_smtp: type[FakeSmtp]) -> None:
    pool = SmtpMailer(NotifierSettings(smtp_connections=3))
    for _ in range(3):
        await asyncio.gather(*(pool.send(EmailMessage(), f"p{i}@example.org") for i in range(10)))
    assert fake_smtp.most_busy == 3
    assert fake_smtp.opened == 3


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_failing_the_email(fake_smtp: type[FakeSmtp]) -> None:
    pool = SmtpMailer(NotifierSettings(smtp_connections=1))
    await pool.send(EmailMessage(), "a@example.org")
    fake_smtp.script = [aiosmtplib.SMTPServerDisconnected("idle timeout")]
    assert await pool.send(EmailMessage(), "b@example.org") == "250 OK"
    assert fake_smtp.opened == 2


async def test_a_refusal_is_still_permanent_and_its_connection_is_not_reused(fake_smtp: type[FakeSmtp]) -> None:
    pool = SmtpMailer(NotifierSettings(smtp_connections=1))
    await pool.send(EmailMessage(), "a@example.org")
    fake_smtp.script = [aiosmtplib.SMTPResponseException(550, "no such user")]
    with pytest.raises(PermanentSmtpError):
        await pool.send(EmailMessage(), "b@example.org")
    await pool.send(EmailMessage(), "c@example.org")
    assert fake_smtp.opened == 2
