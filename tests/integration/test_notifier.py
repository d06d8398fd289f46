"""The notifier against the real Kafka, database and Mailpit (read through its HTTP API).

Some tests stop the mail catcher or kill -9 the notifier: each restores what it stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from schemas.contracts.documents import DocumentScanned
from schemas.contracts.enrolment import DerogationDecided, EnrolmentConfirmed, EnrolmentRefused
from schemas.contracts.household import (
    Address,
    Child,
    Correction,
    CorrectionRequested,
    DossierRejected,
    DossierValidated,
    HouseholdSubmitted,
)
from schemas.contracts.identity import ActivationLinkIssued
from services.kernel.envelope import CloudEvent, EventData, event_json, new_event
from services.kernel.kafka import KafkaPublisher, OutgoingMessage
from services.notifier import domain
from services.notifier.settings import NotifierSettings
from services.notifier.tests.test_family_emails import SUBJECTS
from tests.integration.conftest import ROOT
from tests.integration.identity_client import (
    GATEWAY,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    invited_staff,
    link_token,
    logged_in,
    person,
    registered_and_activated,
)
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR, group_caught_up, read_all
from tests.integration.polling import eventually

MAILPIT = "http://127.0.0.1:8025/api/v1"
NOTIFIER_DB = "ecp_notifier"
ECP = str(ROOT / "deploy/local/ecp")


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

    return await eventually(enough, f"{count} email(s) to {address}", timeout_s)


def ecp(*args: str) -> None:
    subprocess.run([ECP, *args], cwd=ROOT, check=True, capture_output=True, timeout=120)


async def test_registration_sends_one_french_activation_email_whose_link_is_the_events(db_client: Any) -> None:
    client, email = person()
    async with client:
        response = await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Zoé <b>Lefèvre</b>"})
        assert response.status_code == 202
        _, event = await link_token("ActivationLinkIssued", email)

        (summary,) = await wait_for_mails(email, 1)
        assert summary["Subject"] == "Activez votre Espace Citoyen Premium"
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
            {"Activez votre Espace Citoyen Premium": 1, "Bienvenue sur votre Espace Citoyen Premium": 1, "Votre mot de passe a été modifié": 1}
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
    producer = AIOKafkaProducer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        # Redelivered twice, each in its own batch: the group keeps no processed ids (its
        # handlers are idempotent by construction), so the delivery's unique key drops both.
        for _ in range(2):
            await producer.send_and_wait("identity.mail.v1", record.value, key=record.key.encode(), headers=list(record.headers.items()))
            await eventually(lambda: group_caught_up("notifier-mail", "identity.mail.v1"), "the republished event handled", 30)
    finally:
        await producer.stop()

    await asyncio.sleep(1)
    assert len(await mails_to(email)) == 1
    assert await db_client[NOTIFIER_DB]["deliveries"].count_documents({"event_id": event["id"]}) == 1
    # The outcome reaches the delivery topic through the notifier's relay, once.
    outcomes = [e for e in (json.loads(r.value) for r in await read_all("notifier.delivery.v1")) if e["causationid"] == event["id"]]
    assert [e["type"] for e in outcomes] == ["fr.montclair-sur-loire.ecp.NotificationSent"] and outcomes[0]["data"]["template"] == "activation"


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

        pending = await eventually(retrying, "retries while the SMTP server is down", 40)
        assert "refused" in pending["last_error"].lower() and "@" not in pending["last_error"]
    finally:
        ecp("start", "mail")
    (summary,) = await wait_for_mails(email, 1, timeout_s=60)
    assert summary["Subject"] == "Activez votre Espace Citoyen Premium"
    doc = await deliveries.find_one({"event_id": event["id"]})
    assert doc["status"] == "sent"
    await asyncio.sleep(2)
    assert len(await mails_to(email)) == 1


async def test_notifier_killed_mid_batch_loses_no_email_and_duplicates_at_most_the_ones_in_flight(db_client: Any) -> None:
    run = uuid.uuid4().hex[:8]
    count = 300
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
    producer = AIOKafkaProducer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP, enable_idempotence=True)
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

    sent_before_kill = await eventually(some_sent, "the first emails of the batch", 60, every_s=0.05)
    pid = int((ROOT / ".local/run/svc-notifier.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        await eventually(lambda: _gone(pid), "the killed notifier gone", 15, every_s=0.05)
        assert sent_before_kill < count, "the batch finished before the kill: raise the count"
    finally:
        ecp("start", "notifier")

    async def all_sent() -> bool:
        return await deliveries.count_documents({"_id": {"$in": ids}, "status": "sent"}) == count

    await eventually(all_sent, "every email of the batch sent after the restart", 120, every_s=0.5)
    recovery_s = time.monotonic() - killed_at
    await asyncio.sleep(1)
    found = await mails_to(f"kill.{run}.")
    per_recipient = Counter(m["To"][0]["Address"] for m in found)
    assert set(per_recipient) == {f"kill.{run}.{i}@example.org" for i in range(count)}, "an email was lost"
    duplicated = {address: n for address, n in per_recipient.items() if n > 1}
    # The window (SMTP accepted, "sent" not yet recorded) is one group-committed database write:
    # at most the emails in flight at the kill (one per concurrent account lane) can be sent
    # twice, and then with the same Message-ID.
    assert sum(n - 1 for n in duplicated.values()) <= NotifierSettings().consumer_concurrency, duplicated
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
    email, token = await invited_staff("agent")
    invitation = await wait_for_mails(email, 1)
    assert [m["Subject"] for m in invitation] == ["Choisissez votre mot de passe pour l'Espace Citoyen Premium"]
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

            body = await eventually(lambda: log(2), "two deliveries in the log", 20)
            assert sorted(d["template"] for d in body["deliveries"]) == ["activation", "welcome"]
            assert {d["status"] for d in body["deliveries"]} == {"sent"}
            assert all(d["recipient"].endswith("@example.org") and d["recipient"] != email for d in body["deliveries"])
            assert "jeton" not in str(body)

            assert (await client.post("/me/delete", json={"password": GOOD_PASSWORD}, headers={"Authorization": f"Bearer {family['access_token']}"})).status_code == 204

            async def anonymised() -> dict[str, Any] | None:
                body = await log(2)
                return body if body and all(d["anonymised"] for d in body["deliveries"]) else None

            body = await eventually(anonymised, "the log anonymised after erasure", 30)
            assert all(d["recipient"] is None for d in body["deliveries"])
            assert email not in str(body)
    stored = [d async for d in db_client[NOTIFIER_DB]["deliveries"].find({"account_id": account_id})]
    assert stored and all("to" not in d and "to_masked" not in d for d in stored)
    assert email not in str(stored)
    projection = await db_client[NOTIFIER_DB]["recipients"].find_one({"_id": account_id})
    assert projection["deleted"] is True and "email" not in projection and "display_name" not in projection


# The household, documents and enrolment emails: their events are published here directly (built
# with the kernel's envelope, keyed as their services key them) for an account the notifier knows.

REASON = "Justificatif illisible <scan flou> & daté de plus de 3 mois."


def _family_events(account_id: str) -> dict[str, CloudEvent[Any]]:
    now = datetime.now(UTC)
    dossier, document, enrolment, child = (str(uuid.uuid4()) for _ in range(4))
    ids = {"enrolment_id": enrolment, "account_id": account_id, "child_id": child}
    data: dict[str, tuple[EventData, str]] = {
        "dossier_submitted": (HouseholdSubmitted(dossier_id=dossier, account_id=account_id, submitted_at=now, document_ids=[document]), dossier),
        "corrections_requested": (CorrectionRequested(
            dossier_id=dossier, account_id=account_id, requested_at=now,
            corrections=[Correction(item="address.postcode", reason="Le code postal ne correspond pas à la commune."),
                         Correction(item=document, reason=REASON)],
        ), dossier),
        "dossier_validated": (DossierValidated(
            dossier_id=dossier, account_id=account_id, validated_at=now, document_ids=[document],
            address=Address(number="12 bis", street="rue des Lilas", postcode="45190", town="Montclair-sur-Loire"),
            children=[Child(child_id=child, first_name="Léo", last_name="Martin", birth_date=date(2021, 3, 14))],
        ), dossier),
        "dossier_rejected": (DossierRejected(dossier_id=dossier, account_id=account_id, reason=REASON, rejected_at=now), dossier),
        "document_infected": (DocumentScanned(
            document_id=document, account_id=account_id, kind="proof_of_address", result="infected",
            reason="Le fichier contient un virus (Win.Test.EICAR_HDB-1).", scanned_at=now,
        ), document),
        "enrolment_confirmed": (EnrolmentConfirmed(
            **ids, school_id="ecole-les-tilleuls", school_name="École élémentaire Les Tilleuls", level="CP",
            school_year="2027-2028", reference="INS-2027-3F2B8C1D", confirmed_at=now,
        ), enrolment),
        "enrolment_refused": (EnrolmentRefused(**ids, school_year="2027-2028", reason=REASON, refused_at=now), enrolment),
        "derogation_accepted": (DerogationDecided(**ids, requested_school_id="ecole-jean-moulin", decision="accepted", decided_at=now), enrolment),
        "derogation_refused": (DerogationDecided(**ids, requested_school_id="ecole-jean-moulin", decision="refused", reason=REASON, decided_at=now), enrolment),
    }
    return {name: new_event(d, source="/tests/notifier", subject=key) for name, (d, key) in data.items()}


async def _publish(*events: CloudEvent[Any]) -> None:
    publisher = KafkaPublisher(BOOTSTRAP, client_id="test-notifier", auth=OPERATOR)
    await publisher.start()
    try:
        await publisher.publish([OutgoingMessage(type(e.data).topic, e.subject, event_json(e)) for e in events])
    finally:
        await publisher.stop()


# The expected French subject of each family email: one table, with the unit tests.
FAMILY_SUBJECTS = SUBJECTS


async def test_household_documents_and_enrolment_events_each_send_one_french_email_even_published_twice(db_client: Any) -> None:
    client, email = person()
    async with client:
        account_id = await registered_and_activated(client, email)
    await wait_for_mails(email, 2)  # activation and welcome: the projection knows the account
    events = _family_events(account_id)
    clean = new_event(
        DocumentScanned(document_id=str(uuid.uuid4()), account_id=account_id, kind="other", result="clean", scanned_at=datetime.now(UTC)),
        source="/tests/notifier", subject="clean",
    )
    # Every event twice (a redelivery), and a clean scan, which asks for no email.
    await _publish(*events.values(), *events.values(), clean)

    found = await wait_for_mails(email, 2 + len(events), timeout_s=60)
    await asyncio.sleep(3)
    found = await mails_to(email)
    family = Counter(m["Subject"] for m in found) - Counter({"Activez votre Espace Citoyen Premium": 1, "Bienvenue sur votre Espace Citoyen Premium": 1})
    assert family == Counter(FAMILY_SUBJECTS.values()), family
    by_subject = {m["Subject"]: m for m in found}
    for name, event in events.items():
        assert by_subject[FAMILY_SUBJECTS[name]]["MessageID"] == domain.message_id(event.id, email).strip("<>")

    bodies = {name: await mail(by_subject[subject]["ID"]) for name, subject in FAMILY_SUBJECTS.items()}
    for name in ("corrections_requested", "dossier_rejected", "enrolment_refused", "derogation_refused"):
        assert REASON in bodies[name]["Text"], name  # verbatim in the text part
        assert "Justificatif illisible &lt;scan flou&gt; &amp; daté" in bodies[name]["HTML"], name  # escaped in HTML
    corrections = bodies["corrections_requested"]["Text"]
    assert "- Adresse du domicile (code postal) : Le code postal ne correspond pas à la commune." in corrections
    assert f"- Pièce justificative : {REASON}" in corrections
    assert "vous serez averti·e par email" in bodies["dossier_submitted"]["Text"]
    assert "vous pouvez maintenant inscrire votre enfant" in bodies["dossier_validated"]["Text"].lower()
    assert f"{GATEWAY}/inscription-scolaire" in bodies["dossier_validated"]["Text"]
    assert "Win.Test.EICAR_HDB-1" in bodies["document_infected"]["Text"] and "Envoyez un autre fichier" in bodies["document_infected"]["Text"]
    confirmed = bodies["enrolment_confirmed"]["Text"]
    for value in ("École élémentaire Les Tilleuls", "CP", "2027-2028", "INS-2027-3F2B8C1D", f"{GATEWAY}/inscription-scolaire"):
        assert value in confirmed

    deliveries = db_client[NOTIFIER_DB]["deliveries"]
    for event in events.values():
        assert await deliveries.count_documents({"event_id": event.id, "status": "sent"}) == 1
    assert await deliveries.count_documents({"event_id": clean.id}) == 0

    # Republished (the group keeps no processed ids: its handlers are idempotent by construction):
    # the delivery's unique key drops it.
    validated = events["dossier_validated"]
    await _publish(validated)
    await eventually(lambda: group_caught_up("notifier-dossiers", type(validated.data).topic), "the republished DossierValidated handled", 30)
    await asyncio.sleep(1)
    assert Counter(m["Subject"] for m in await mails_to(email))[FAMILY_SUBJECTS["dossier_validated"]] == 1


async def test_a_family_event_for_an_account_the_notifier_never_saw_is_logged_not_sent(db_client: Any) -> None:
    account_id = f"unknown-{uuid.uuid4()}"
    event = _family_events(account_id)["dossier_rejected"]
    await _publish(event)
    deliveries = db_client[NOTIFIER_DB]["deliveries"]

    async def logged() -> dict[str, Any] | None:
        return await deliveries.find_one({"event_id": event.id})

    delivery = await eventually(logged, "the failed delivery logged", 30)
    assert delivery["status"] == "failed" and delivery["reason"] == "unknown_recipient"
    assert delivery["template"] == "dossier_rejected" and delivery["subject"] == "Votre dossier a été refusé"
