"""The notifier's throughput pieces without network: group commit and the SMTP connection pool,
each checked for the guarantee it must keep. (The concurrent consumer is the kernel's, tested in
services/kernel/tests/test_consumer.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from services.notifier import mailer as mailer_module
from services.notifier.batching import BulkBatcher
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
