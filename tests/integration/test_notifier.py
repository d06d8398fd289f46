"""The notifier against the real Kafka, database and Mailpit (read through its HTTP API).

Some tests stop the mail catcher or kill -9 the notifier: each restores what it stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from services.identity.events import ActivationLinkIssued
from services.kernel.envelope import event_json, new_event
from services.notifier import domain
from tests.integration.conftest import ROOT
from tests.integration.identity_client import (
    GATEWAY,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    link_token,
    logged_in,
    person,
    registered_and_activated,
)
from tests.integration.kafka_tools import BOOTSTRAP, read_all

MAILPIT = "http://127.0.0.1:8025/api/v1"
NOTIFIER_DB = "ecp_notifier"
ECP = str(ROOT / "deploy/local/ecp")
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float, what: str, every_s: float = 0.3) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout_s}s")
        await asyncio.sleep(every_s)


async def mails_to(address: str) -> list[dict[str, Any]]:
    """Messages whose To contains ``address`` (Mailpit's search matches substrings)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{MAILPIT}/search", params={"query": f"to:{address}", "limit": 1000})
        response.raise_for_status()
        return response.json()["messages"]


async def mail(message_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{MAILPIT}/message/{message_id}")
        response.raise_for_status()
        return response.json()


async def wait_for_mails(address: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await mails_to(address)
        return found if len(found) >= count else None

    return await eventually(enough, timeout_s, f"{count} email(s) to {address}")


def ecp(*args: str) -> None:
    subprocess.run([ECP, *args], cwd=ROOT, check=True, capture_output=True, timeout=120)


async def test_registration_sends_one_french_activation_email_whose_link_is_the_events(db_client: Any) -> None:
    client, email = person()
    async with client:
        response = await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Zoé <b>Lefèvre</b>"})
        assert response.status_code == 202
        _, event = await link_token("ActivationLinkIssued", email)

        (summary,) = await wait_for_mails(email, 1)
        assert summary["Subject"] == "Activez votre Espace Citoyen"
        assert summary["MessageID"] == domain.message_id(event["id"], email).strip("<>")
        message = await mail(summary["ID"])
        link = event["data"]["link"]
        assert link in message["Text"] and "Bonjour Zoé <b>Lefèvre</b>" in message["Text"]
        assert "valable 48 heures, jusqu'au" in message["Text"]
        assert "Zoé &lt;b&gt;Lefèvre&lt;/b&gt;" in message["HTML"] and link.replace("&", "&amp;") in message["HTML"]

        # The link reaches the activation page through the gateway.
        async with httpx.AsyncClient(timeout=10) as web:
            page = await web.get(link)
        assert link.startswith(GATEWAY + "/activation?jeton=")
        assert page.status_code == 200, page.status_code
        assert "Activer mon espace" in page.text

        await asyncio.sleep(2)
        assert len(await mails_to(email)) == 1
        delivery = await db_client[NOTIFIER_DB]["deliveries"].find_one({"event_id": event["id"]})
        assert delivery["status"] == "sent" and delivery["template"] == "activation"
        assert link not in str(delivery)  # secrets stay out of the log


async def test_activation_then_password_change_each_send_one_email() -> None:
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
        tokens = await logged_in(client, email)
        response = await client.post(
            "/me/password", json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert response.status_code in (200, 204), response.text
        found = await wait_for_mails(email, 3)
        subjects = Counter(m["Subject"] for m in found)
        assert subjects == Counter(
            {"Activez votre Espace Citoyen": 1, "Bienvenue sur votre Espace Citoyen": 1, "Votre mot de passe a été modifié": 1}
        )
        welcome = await mail(next(m["ID"] for m in found if m["Subject"].startswith("Bienvenue")))
        assert "Déclarer mon entourage" in welcome["Text"] and "averti·e" in welcome["Text"]


async def test_the_same_event_published_twice_sends_one_email(db_client: Any) -> None:
    client, email = person()
    async with client:
        await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Léa Bernard"})
        _, event = await link_token("ActivationLinkIssued", email)
    await wait_for_mails(email, 1)
    (record,) = [r for r in await read_all("identity.mail.v1") if event["id"].encode() in r.value]
    processed = db_client[NOTIFIER_DB]["processed_events"]
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        # A plain redelivery (the consumer's processed-ids drop it), then one the consumer has
        # forgotten (as if it died after the email and before recording): the delivery's unique
        # key must drop that one.
        await producer.send_and_wait("identity.mail.v1", record.value, key=record.key.encode(), headers=list(record.headers.items()))
        await asyncio.sleep(2)
        await processed.delete_one({"_id": f"notifier-mail:{event['id']}"})
        await producer.send_and_wait("identity.mail.v1", record.value, key=record.key.encode(), headers=list(record.headers.items()))
    finally:
        await producer.stop()

    async def handled_again() -> bool:
        return await processed.find_one({"_id": f"notifier-mail:{event['id']}"}) is not None

    await eventually(handled_again, 30, "the republished event handled")
    await asyncio.sleep(1)
    assert len(await mails_to(email)) == 1
    assert await db_client[NOTIFIER_DB]["deliveries"].count_documents({"event_id": event["id"]}) == 1


async def test_with_the_smtp_server_down_the_email_is_retried_and_delivered_once_it_is_back(db_client: Any) -> None:
    deliveries = db_client[NOTIFIER_DB]["deliveries"]
    client, email = person()
    ecp("stop", "mail")
    try:
        async with client:
            await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Inès Moreau"})
            _, event = await link_token("ActivationLinkIssued", email)

        stopped_at = datetime.now(UTC)

        async def retrying() -> dict[str, Any] | None:
            # Ours, or an earlier email of the same partition that blocks it (as it should).
            return await deliveries.find_one(
                {"status": "sending", "attempts": {"$gte": 3}, "last_error": {"$exists": True}, "updated_at": {"$gt": stopped_at}}
            )

        pending = await eventually(retrying, 40, "retries while the SMTP server is down")
        assert "refused" in pending["last_error"].lower() and "@" not in pending["last_error"]
    finally:
        ecp("start", "mail")
    (summary,) = await wait_for_mails(email, 1, timeout_s=60)
    assert summary["Subject"] == "Activez votre Espace Citoyen"
    doc = await deliveries.find_one({"event_id": event["id"]})
    assert doc["status"] == "sent"
    await asyncio.sleep(2)
    assert len(await mails_to(email)) == 1


async def test_notifier_killed_mid_batch_loses_no_email_and_duplicates_at_most_the_one_in_flight(db_client: Any) -> None:
    run = uuid.uuid4().hex[:8]
    count = 150
    now = datetime.now(UTC)
    events = [
        new_event(
            ActivationLinkIssued(
                account_id=f"kill-{run}-{i}", email=f"kill.{run}.{i}@example.org", display_name=f"Test {i}",
                link=f"{GATEWAY}/activation?jeton=kill{run}{i}", expires_at=now + timedelta(hours=48),
            ),
            source="/tests/notifier", subject=f"kill-{run}-{i}",
        )
        for i in range(count)
    ]
    # Polled by _id (the unique delivery key): a full scan per poll would slow the notifier down.
    ids = [domain.delivery_id(e.id, e.data.email) for e in events]
    deliveries = db_client[NOTIFIER_DB]["deliveries"]
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True)
    await producer.start()
    try:
        # send() only enqueues: the whole batch is in the topic before the notifier is killed.
        acks = [await producer.send("identity.mail.v1", event_json(e), key=e.subject.encode()) for e in events]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()

    async def some_sent() -> int:
        n = await deliveries.count_documents({"_id": {"$in": ids}, "status": "sent"})
        return n if n >= 10 else 0

    sent_before_kill = await eventually(some_sent, 60, "the first emails of the batch", every_s=0.05)
    pid = int((ROOT / ".local/run/svc-notifier.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        await eventually(lambda: _gone(pid), 15, "the killed notifier gone", every_s=0.05)
        assert sent_before_kill < count, "the batch finished before the kill: raise the count"
    finally:
        ecp("start", "notifier")

    async def all_sent() -> bool:
        return await deliveries.count_documents({"_id": {"$in": ids}, "status": "sent"}) == count

    await eventually(all_sent, 120, "every email of the batch sent after the restart", every_s=0.5)
    recovery_s = time.monotonic() - killed_at
    await asyncio.sleep(1)
    found = await mails_to(f"kill.{run}.")
    per_recipient = Counter(m["To"][0]["Address"] for m in found)
    assert set(per_recipient) == {f"kill.{run}.{i}@example.org" for i in range(count)}, "an email was lost"
    duplicated = {address: n for address, n in per_recipient.items() if n > 1}
    # The window (SMTP accepted, "sent" not yet recorded) is one database write: at most the one
    # email in flight at the kill can be sent twice, and then with the same Message-ID.
    assert sum(n - 1 for n in duplicated.values()) <= 1, duplicated
    for address in duplicated:
        assert len({m["MessageID"] for m in found if m["To"][0]["Address"] == address}) == 1
    print(f"\nkill -9 after {sent_before_kill}/{count} sent: {len(duplicated)} duplicate(s), all delivered {recovery_s:.1f}s after the kill")


async def _gone(pid: int) -> bool:
    """SIGKILL is delivered asynchronously: `ecp start` must not see the old pid alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _agent_token() -> str:
    email = f"agent.{uuid.uuid4().hex[:10]}@ville.example.fr"
    created = subprocess.run(
        [sys.executable, "-m", "services.identity.admin", "create-staff", "--email", email, "--name", "Anne Agent", "--role", "agent"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token, _ = await link_token("PasswordResetLinkIssued", email)
    invitation = await wait_for_mails(email, 1)
    assert [m["Subject"] for m in invitation] == ["Choisissez votre mot de passe pour l'Espace Citoyen"]
    client, _ = person()
    async with client:
        assert (await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})).status_code == 200
        return (await logged_in(client, email, NEW_PASSWORD))["access_token"]


async def test_agents_read_the_delivery_log_and_erasure_anonymises_it(db_client: Any) -> None:
    agent = await _agent_token()
    client, email = person()
    async with client:
        account_id = await registered_and_activated(client, email)
        await wait_for_mails(email, 2)
        family = await logged_in(client, email)
        async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/notifier", timeout=10) as notifier:
            denied = await notifier.get("/deliveries", params={"account_id": account_id}, headers={"Authorization": f"Bearer {family['access_token']}"})
            assert denied.status_code == 403

            async def log(expect: int) -> dict[str, Any] | None:
                response = await notifier.get("/deliveries", params={"account_id": account_id}, headers={"Authorization": f"Bearer {agent}"})
                assert response.status_code == 200, response.text
                body = response.json()
                return body if len(body["deliveries"]) >= expect else None

            body = await eventually(lambda: log(2), 20, "two deliveries in the log")
            assert sorted(d["template"] for d in body["deliveries"]) == ["activation", "welcome"]
            assert {d["status"] for d in body["deliveries"]} == {"sent"}
            assert all(d["recipient"].endswith("@example.org") and d["recipient"] != email for d in body["deliveries"])
            assert "jeton" not in str(body)

            assert (await client.post("/me/delete", json={"password": GOOD_PASSWORD}, headers={"Authorization": f"Bearer {family['access_token']}"})).status_code == 204

            async def anonymised() -> dict[str, Any] | None:
                body = await log(2)
                return body if body and all(d["anonymised"] for d in body["deliveries"]) else None

            body = await eventually(anonymised, 30, "the log anonymised after erasure")
            assert all(d["recipient"] is None for d in body["deliveries"])
            assert email not in str(body)
    stored = [d async for d in db_client[NOTIFIER_DB]["deliveries"].find({"account_id": account_id})]
    assert stored and all("to" not in d and "to_masked" not in d for d in stored)
    assert email not in str(stored)
    projection = await db_client[NOTIFIER_DB]["recipients"].find_one({"_id": account_id})
    assert projection["deleted"] is True and "email" not in projection and "display_name" not in projection
