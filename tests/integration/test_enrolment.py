"""Enrolment against the real gateway, Kafka, database and S3 (SeaweedFS).

Household's DossierValidated is published here directly (built with the kernel's envelope), so
these tests do not depend on the household service's review flow."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from schemas.contracts.household import Address, Child, DossierValidated
from services.kernel.envelope import CloudEvent, event_json, new_event
from services.kernel.kafka import KafkaPublisher, OutgoingMessage
from services.kernel.objectstore import ObjectStore
from services.kernel.settings import S3Settings
from tests.integration.identity_client import (
    GATEWAY,
    GOOD_PASSWORD,
    logged_in,
    person,
    registered_and_activated,
    staff_token,
    wait_for_event,
)
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR

API = f"{GATEWAY}/api/enrolment"
TOPIC = "enrolment.enrolment.v1"
DOSSIER_TOPIC = "household.dossier.v1"
_agent: dict[str, str] = {}


class Family:
    def __init__(self, account_id: str, token: str, identity: httpx.AsyncClient) -> None:
        self.account_id = account_id
        self.auth = {"Authorization": f"Bearer {token}"}
        self.identity = identity
        self.api = httpx.AsyncClient(base_url=API, headers=self.auth, timeout=30)

    async def close(self) -> None:
        await self.api.aclose()
        await self.identity.aclose()


async def family() -> Family:
    client, email = person()
    account_id = await registered_and_activated(client, email)
    token = (await logged_in(client, email))["access_token"]
    return Family(account_id, token, client)


async def agent() -> httpx.AsyncClient:
    if "token" not in _agent:
        _agent["token"] = await staff_token("agent", "Agnès Agent")
    return httpx.AsyncClient(base_url=API, headers={"Authorization": f"Bearer {_agent['token']}"}, timeout=30)


def child(first: str, born: date) -> Child:
    return Child(child_id=str(uuid.uuid4()), first_name=first, last_name=f"Durand{uuid.uuid4().hex[:6]}", birth_date=born)


def dossier_event(account_id: str, children: list[Child], number: str = "12 bis", street: str = "rue des Lilas") -> CloudEvent[Any]:
    dossier_id = str(uuid.uuid4())
    data = DossierValidated(
        dossier_id=dossier_id, account_id=account_id,
        address=Address(number=number, street=street, postcode="45190", town="Montclair-sur-Loire"),
        children=children, document_ids=[str(uuid.uuid4())], validated_at=datetime.now(UTC),
    )
    return new_event(data, source="/services/household", subject=dossier_id)


async def publish(*events: CloudEvent[Any]) -> None:
    publisher = KafkaPublisher(BOOTSTRAP, client_id="test-enrolment", auth=OPERATOR)
    await publisher.start()
    try:
        await publisher.publish([OutgoingMessage(DOSSIER_TOPIC, e.subject, event_json(e)) for e in events])
    finally:
        await publisher.stop()


async def unlocked(f: Family, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = (await f.api.get("/enrolments/eligible")).json()
        if body["unlocked"]:
            return body
        assert time.monotonic() < deadline, "the DossierValidated event was not projected in time"
        await asyncio.sleep(0.3)


async def coming_year(f: Family) -> int:
    return (await f.api.get("/enrolments/eligible")).json()["school_year_start"]


async def ensure_free(staff: httpx.AsyncClient, school: str, level: str, year: int, free: int) -> None:
    overview = (await staff.get(f"/schools/{school}/enrolments", params={"school_year": year})).json()
    row = next(r for r in overview["levels"] if r["level"] == level)
    if row["free"] < free:
        r = await staff.put(f"/schools/{school}/capacity", json={"school_year": year, "level": level, "capacity": row["seats_taken"] + free + 5})
        assert r.status_code == 200, r.text


CERTIFICATE_NOT_READY = "Le certificat d'inscription est en cours de préparation : réessayez dans quelques secondes."


async def certificate_link(client: httpx.AsyncClient, enrolment_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """The download link, once the certificate rendered after the confirmation is stored; until
    then the answer is the French 409 saying it is being prepared."""
    deadline = time.monotonic() + timeout_s
    while True:
        link = await client.get(f"/enrolments/{enrolment_id}/certificate")
        if link.status_code != 409:
            assert link.status_code == 200, link.text
            return link.json()
        assert link.json()["detail"] == CERTIFICATE_NOT_READY and link.headers["retry-after"] == "5"
        assert time.monotonic() < deadline, "the certificate was not rendered in time"
        await asyncio.sleep(0.3)


async def certificate_text(client: httpx.AsyncClient, enrolment_id: str) -> str:
    from pypdf import PdfReader

    body = await certificate_link(client, enrolment_id)
    assert body["expires_in"] <= 300
    async with httpx.AsyncClient(timeout=30) as raw:
        pdf = await raw.get(body["url"])
    assert pdf.status_code == 200
    assert pdf.headers["content-disposition"].startswith("attachment")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)


async def test_nothing_is_enrolable_before_the_dossier_is_validated_and_a_child_is_right_after() -> None:
    f = await family()
    try:
        before = (await f.api.get("/enrolments/eligible")).json()
        assert before["unlocked"] is False and before["children"] == [] and "validé" in before["message"]
        year = before["school_year_start"]
        kid = child("Léa", date(year - 3, 12, 31))
        refused = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
        assert refused.status_code == 403 and "validé" in refused.json()["detail"]

        baby, old = child("Tom", date(year - 1, 1, 1)), child("Max", date(year - 11, 12, 31))
        await publish(dossier_event(f.account_id, [kid, baby, old]))
        after = await unlocked(f)
        by_id = {c["child_id"]: c for c in after["children"]}
        assert by_id[kid.child_id]["level"] == "PS" and by_id[kid.child_id]["can_enrol"] is True
        assert by_id[kid.child_id]["sector_school"]["id"] == "mat-coquelicots"  # 12 bis: the even side
        assert by_id[baby.child_id]["can_enrol"] is False
        assert by_id[baby.child_id]["message"] == (
            f"Votre enfant, né·e en {year - 1}, pourra être inscrit·e en petite section à la rentrée {year + 2}.")
        too_young = await f.api.post("/enrolments", json={"child_id": baby.child_id, "school_year": year})
        assert too_young.status_code == 422 and too_young.json()["detail"] == by_id[baby.child_id]["message"]
        too_old = await f.api.post("/enrolments", json={"child_id": old.child_id, "school_year": f"{year}-{year + 1}"})
        assert too_old.status_code == 422 and "collège" in too_old.json()["detail"]
        wrong_year = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year + 1})
        assert wrong_year.status_code == 422
        someone_else = await f.api.post("/enrolments", json={"child_id": str(uuid.uuid4()), "school_year": year})
        assert someone_else.status_code == 404
    finally:
        await f.close()


async def test_an_in_sector_enrolment_is_confirmed_with_a_certificate_and_only_once(db_client) -> None:
    f = await family()
    staff = await agent()
    try:
        year = await coming_year(f)
        await ensure_free(staff, "elem-jaures", "CP", year, 3)
        kid = child("Inès", date(year - 6, 1, 1))
        event = dossier_event(f.account_id, [kid], number="7", street="Rue des lilas")
        await publish(event)
        await unlocked(f)
        created = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": f"{year}-{year + 1}"})
        assert created.status_code == 201, created.text
        enrolment = created.json()
        assert enrolment["status"] == "confirmed" and enrolment["level"] == "CP" and enrolment["school_id"] == "elem-jaures"
        # Confirmed at once; the PDF (a second of rendering) is made after the answer.
        assert enrolment["certificate_available"] is False
        assert enrolment["status_label"] == "inscription confirmée (certificat en préparation)"
        not_yet = await f.api.get(f"/enrolments/{enrolment['id']}/certificate")
        assert not_yet.status_code == 409 and not_yet.json()["detail"] == CERTIFICATE_NOT_READY
        again = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
        assert again.status_code == 409 and "déjà inscrit" in again.json()["detail"]

        text = await certificate_text(f.api, enrolment["id"])
        assert "Certificat d'inscription scolaire" in text
        assert kid.last_name.upper() in text and "Inès" in text and f"1er janvier {year - 6}" in text
        assert "CP" in text and "École élémentaire Jean-Jaurès" in text and f"{year}-{year + 1}" in text
        assert enrolment["reference"] in text and "Le Maire" in text and "Montclair-sur-Loire" in text
        assert (await certificate_text(staff, enrolment["id"])) == text  # agents may download it too
        stranger = await family()
        try:
            assert (await stranger.api.get(f"/enrolments/{enrolment['id']}/certificate")).status_code == 404
        finally:
            await stranger.close()

        confirmed = await wait_for_event(TOPIC, lambda e: e["type"] == "fr.montclair-sur-loire.ecp.EnrolmentConfirmed" and e["subject"] == enrolment["id"])
        assert confirmed["data"]["school_id"] == "elem-jaures" and confirmed["data"]["certificate_available"] is True
        assert (await f.api.get(f"/enrolments/{enrolment['id']}")).json()["certificate_available"] is True

        # The same DossierValidated published again changes nothing.
        stored = await db_client["ecp_enrolment"]["dossiers"].find_one({"_id": event.subject})
        await publish(event)
        await asyncio.sleep(3)
        assert await db_client["ecp_enrolment"]["dossiers"].find_one({"_id": event.subject}) == stored
        assert await db_client["ecp_enrolment"]["enrolments"].count_documents({"account_id": f.account_id}) == 1
        assert stored["applied_events"] == [event.id]
    finally:
        await staff.aclose()
        await f.close()


async def test_two_families_racing_for_the_last_seat_exactly_one_gets_it() -> None:
    staff = await agent()
    families = [await family(), await family()]
    try:
        year = await coming_year(families[0])
        kids = [child("Jules", date(year - 5, 6, 1)), child("Zoé", date(year - 5, 2, 1))]
        await publish(*[dossier_event(f.account_id, [k], number="40", street="rue des Lilas") for f, k in zip(families, kids)])
        for f in families:
            await unlocked(f)
        overview = (await staff.get("/schools/mat-coquelicots/enrolments", params={"school_year": year})).json()
        taken = next(r for r in overview["levels"] if r["level"] == "GS")["seats_taken"]
        r = await staff.put("/schools/mat-coquelicots/capacity", json={"school_year": year, "level": "GS", "capacity": taken + 1})
        assert r.status_code == 200 and r.json()["free"] == 1
        results = await asyncio.gather(*[
            f.api.post("/enrolments", json={"child_id": k.child_id, "school_year": year}) for f, k in zip(families, kids)
        ])
        assert [r.status_code for r in results] == [201, 201]
        statuses = sorted((r.json()["status"], r.json()["pending_reason"]) for r in results)
        assert statuses == [("confirmed", None), ("pending_agent", "no_seat")]
        after = (await staff.get("/schools/mat-coquelicots/enrolments", params={"school_year": year})).json()
        gs = next(row for row in after["levels"] if row["level"] == "GS")
        assert gs["free"] == 0 and gs["seats_taken"] == taken + 1
        lowering = await staff.put("/schools/mat-coquelicots/capacity", json={"school_year": year, "level": "GS", "capacity": 0})
        assert lowering.status_code == 409
        # The agent confirms the one waiting once the capacity is raised.
        waiting = next(r.json() for r in results if r.json()["status"] == "pending_agent")
        assert (await staff.post(f"/enrolments/{waiting['id']}/decision", json={"decision": "confirm"})).status_code == 409
        await staff.put("/schools/mat-coquelicots/capacity", json={"school_year": year, "level": "GS", "capacity": taken + 30})
        decided = await staff.post(f"/enrolments/{waiting['id']}/decision", json={"decision": "confirm"})
        assert decided.status_code == 200 and decided.json()["status"] == "confirmed"
    finally:
        await staff.aclose()
        for f in families:
            await f.close()


async def test_derogations_accepted_and_refused_and_the_csv_export() -> None:
    staff = await agent()
    f = await family()
    try:
        year = await coming_year(f)
        for school in ("prim-curie", "mat-coquelicots"):
            await ensure_free(staff, school, "PS", year, 3)
        accepted_kid, refused_kid = child("Nina", date(year - 3, 3, 14)), child("Hugo", date(year - 3, 7, 1))
        await publish(dossier_event(f.account_id, [accepted_kid, refused_kid], number="12", street="rue des Lilas"))
        await unlocked(f)
        derogation = {"requested_school_id": "prim-curie", "reason_category": "fratrie", "reason_text": "Sa sœur est en CE1 à Marie-Curie."}
        bad = await f.api.post("/enrolments", json={"child_id": accepted_kid.child_id, "school_year": year,
                                                   "derogation": {**derogation, "reason_category": "religion"}})
        assert bad.status_code == 422
        first = (await f.api.post("/enrolments", json={"child_id": accepted_kid.child_id, "school_year": year, "derogation": derogation})).json()
        assert first["status"] == "pending_agent" and first["pending_reason"] == "derogation"
        assert first["sector_school_id"] == "mat-coquelicots" and first["derogation"]["status"] == "pending"
        queue = (await staff.get("/enrolments/pending", params={"school_id": "prim-curie", "school_year": year})).json()
        assert first["id"] in [e["id"] for e in queue["enrolments"]]
        assert (await f.api.post(f"/enrolments/{first['id']}/derogation/decision", json={"decision": "accepted"})).status_code == 403
        ok = await staff.post(f"/enrolments/{first['id']}/derogation/decision", json={"decision": "accepted"})
        assert ok.status_code == 200 and ok.json()["status"] == "confirmed" and ok.json()["school_id"] == "prim-curie"
        text = await certificate_text(f.api, first["id"])
        assert "École primaire Marie-Curie" in text and "petite section" in text and "Nina" in text

        second = (await f.api.post("/enrolments", json={"child_id": refused_kid.child_id, "school_year": year,
                                                        "derogation": {**derogation, "reason_category": "travail_des_parents"}})).json()
        no_reason = await staff.post(f"/enrolments/{second['id']}/derogation/decision", json={"decision": "refused", "reason": "  "})
        assert no_reason.status_code == 422 and "motif" in no_reason.json()["detail"]
        refused = await staff.post(f"/enrolments/{second['id']}/derogation/decision",
                                   json={"decision": "refused", "reason": "Plus de place en petite section à Marie-Curie."})
        body = refused.json()
        assert refused.status_code == 200 and body["derogation"]["status"] == "refused"
        assert body["status"] == "confirmed" and body["school_id"] == "mat-coquelicots"  # the sector school
        decided = await wait_for_event(TOPIC, lambda e: e["type"] == "fr.montclair-sur-loire.ecp.DerogationDecided" and e["subject"] == second["id"])
        assert decided["data"]["decision"] == "refused" and decided["data"]["reason"].startswith("Plus de place")

        export = await staff.get("/schools/mat-coquelicots/enrolments.csv", params={"school_year": year})
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert export.content.startswith(b"\xef\xbb\xbf")
        lines = export.content.decode("utf-8-sig").splitlines()
        assert lines[0].split(";")[:5] == ["Référence", "Nom", "Prénom", "Date de naissance", "Niveau"]
        row = next(line for line in lines if refused_kid.last_name in line).split(";")
        assert row[2] == "Hugo" and row[3] == f"01/07/{year - 3}" and row[4] == "petite section" and row[5] == "confirmée"
        assert not any(accepted_kid.last_name in line for line in lines)
        assert (await f.api.get("/schools/mat-coquelicots/enrolments.csv")).status_code == 403
    finally:
        await staff.aclose()
        await f.close()


async def test_an_address_not_on_the_map_goes_to_an_agent_who_chooses_the_school_or_refuses() -> None:
    staff = await agent()
    f = await family()
    try:
        year = await coming_year(f)
        await ensure_free(staff, "mat-tilleuls", "MS", year, 2)
        kids = [child("Lou", date(year - 4, 5, 5)), child("Noé", date(year - 4, 9, 9))]
        await publish(dossier_event(f.account_id, kids, number="3", street="rue Imaginaire"))
        eligible = await unlocked(f)
        assert all(c["address_on_map"] is False and c["can_enrol"] for c in eligible["children"])
        first, second = [(await f.api.post("/enrolments", json={"child_id": k.child_id, "school_year": year})).json() for k in kids]
        assert first["status"] == "pending_agent" and first["pending_reason"] == "address_unknown"
        assert (await staff.post(f"/enrolments/{first['id']}/decision", json={"decision": "confirm"})).status_code == 422
        confirmed = await staff.post(f"/enrolments/{first['id']}/decision", json={"decision": "confirm", "school_id": "mat-tilleuls"})
        assert confirmed.json()["status"] == "confirmed"
        refused = await staff.post(f"/enrolments/{second['id']}/decision",
                                   json={"decision": "refuse", "reason": "Adresse hors de la commune."})
        assert refused.json()["status"] == "refused" and refused.json()["refusal_reason"] == "Adresse hors de la commune."
        event = await wait_for_event(TOPIC, lambda e: e["type"] == "fr.montclair-sur-loire.ecp.EnrolmentRefused" and e["subject"] == second["id"])
        assert event["data"]["reason"] == "Adresse hors de la commune."
        assert (await f.api.get(f"/enrolments/{second['id']}/certificate")).status_code == 409
    finally:
        await staff.aclose()
        await f.close()


async def test_the_sector_map_import_reports_problems_before_anything_is_replaced() -> None:
    staff = await agent()
    try:
        current = (await staff.get("/sector-map")).json()
        bad = ("street;number_from;number_to;side;maternelle;elementaire\n"
               "rue A;1;21;odd;mat-tilleuls;elem-jaures\nrue A;19;41;odd;mat-coquelicots;elem-jaures\n"
               "rue B;1;9;both;ecole-x;elem-jaures\nrue C;x;9;both;mat-tilleuls;elem-jaures\n")
        report = await staff.post("/sector-map/validate", content=bad.encode(), headers={"Content-Type": "text/csv"})
        assert report.status_code == 200
        kinds = sorted(p["kind"] for p in report.json()["errors"])
        assert kinds == ["malformed", "overlap", "unknown_school"] and report.json()["can_apply"] is False
        imported = (await staff.post("/sector-map/imports", content=bad.encode(), headers={"Content-Type": "text/csv"})).json()
        applied = await staff.post(f"/sector-map/imports/{imported['import_id']}/apply")
        assert applied.status_code == 409
        assert (await staff.get("/sector-map")).json()["version"] == current["version"]
        # Re-importing the current map and applying it is one switch of the current version.
        csv_text = "street;number_from;number_to;side;maternelle;elementaire\n" + "".join(
            f"{s['street']};{s['number_from']};{s['number_to']};{s['side']};{s['maternelle_id']};{s['elementaire_id']}\n"
            for s in current["segments"])
        again = (await staff.post("/sector-map/imports", content=csv_text.encode(), headers={"Content-Type": "text/csv"})).json()
        assert again["can_apply"] and again["segments"] == len(current["segments"])
        switched = await staff.post(f"/sector-map/imports/{again['import_id']}/apply")
        assert switched.status_code == 200
        assert (await staff.get("/sector-map")).json()["version"] == again["import_id"]
        found = (await staff.get("/sector-map/lookup", params={"street": "Rue des Lilas", "number": "13 ter"})).json()
        assert found["segment"]["maternelle_id"] == "mat-tilleuls"
    finally:
        await staff.aclose()


@pytest.mark.parametrize("body", [{}, {"child_id": "x"}, {"child_id": "x", "school_year": "l'an prochain"}])
async def test_bad_input_gets_a_clear_french_4xx(body: dict[str, Any]) -> None:
    f = await family()
    try:
        await publish(dossier_event(f.account_id, [child("Ana", date(2022, 1, 1))]))
        await unlocked(f)
        r = await f.api.post("/enrolments", json=body)
        assert r.status_code == 422 and r.json()["detail"]
        assert (await f.api.post("/enrolments", content=b"{pas du json", headers={"Content-Type": "application/json"})).status_code == 422
        assert (await f.api.get("/enrolments/pending")).status_code == 403
    finally:
        await f.close()


async def test_account_erasure_removes_the_certificate_and_anonymises_the_enrolment(db_client) -> None:
    f = await family()
    staff = await agent()
    try:
        year = await coming_year(f)
        await ensure_free(staff, "elem-jaures", "CE1", year, 2)
        kid = child("Émile", date(year - 7, 4, 4))
        await publish(dossier_event(f.account_id, [kid], number="5", street="rue des Tilleuls"))
        await unlocked(f)
        enrolment = (await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})).json()
        await certificate_link(f.api, enrolment["id"])
        objects = ObjectStore(S3Settings())
        key = f"enrolments/{enrolment['id']}.pdf"
        assert await objects.exists(key)
        deleted = await f.identity.post("/me/delete", json={"password": GOOD_PASSWORD}, headers=f.auth)
        assert deleted.status_code == 204
        deadline = time.monotonic() + 20
        while (await db_client["ecp_enrolment"]["enrolments"].find_one({"_id": enrolment["id"]}))["account_id"] is not None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        stored = await db_client["ecp_enrolment"]["enrolments"].find_one({"_id": enrolment["id"]})
        assert stored["child"] == {"child_id": None} and stored["address"] is None and stored["status"] == "confirmed"
        assert not await objects.exists(key)
        assert await db_client["ecp_enrolment"]["dossiers"].count_documents({"account_id": f.account_id}) == 0
    finally:
        await staff.aclose()
        await f.close()
