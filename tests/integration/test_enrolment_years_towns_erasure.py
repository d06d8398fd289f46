"""Enrolment against the running system: the school year in progress as well as the next rentrée,
addresses outside the town, a deleted account's pending requests withdrawn, and the public check
of a printed certificate (through the gateway, rate limited)."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import date
from typing import Any

import httpx
import pytest

from tests.integration.identity_client import GATEWAY, GOOD_PASSWORD, logged_in, person, registered_and_activated
from tests.integration.test_enrolment import (
    Family,
    agent,
    certificate_link,
    child,
    dossier_event,
    ensure_free,
    family,
    publish,
    unlocked,
)
from tests.integration.test_notifier import mail, mails_to

WITHDRAWN = "Cette demande a été retirée : le compte de la famille a été supprimé. Il n'y a plus de décision à prendre."


def in_progress_year(eligibility: dict[str, Any]) -> int:
    running = [y for y in eligibility["school_years"] if y["in_progress"]]
    if not running:
        pytest.skip("the school year in progress takes no more enrolments today (summer): nothing to test")
    return running[0]["school_year_start"]


async def test_a_family_moving_in_mid_year_enrols_for_the_year_in_progress_at_that_years_level() -> None:
    f = await family()
    staff = await agent()
    try:
        body = (await f.api.get("/enrolments/eligible")).json()
        year = in_progress_year(body)
        next_year = year + 1
        assert [y["school_year_start"] for y in body["school_years"]] == [year, next_year]
        assert body["school_year_start"] == next_year  # the next rentrée unless the family asks
        await ensure_free(staff, "elem-jaures", "CM2", year, 2)
        kid = child("Noé", date(year - 10, 3, 3))  # CM2 this year, collège at the next rentrée
        await publish(dossier_event(f.account_id, [kid], number="5", street="rue des Tilleuls"))
        await unlocked(f)

        rentree = (await f.api.get("/enrolments/eligible")).json()["children"][0]
        assert not rentree["eligible"] and "collège" in rentree["message"]
        assert rentree["message"].endswith(f"Vous pouvez l'inscrire pour l'année scolaire en cours {year}-{year + 1}.")
        now = (await f.api.get("/enrolments/eligible", params={"school_year": f"{year}-{year + 1}"})).json()
        assert now["school_year_start"] == year and now["school_year_title"] == f"année scolaire en cours {year}-{year + 1}"
        assert now["children"][0]["level"] == "CM2" and now["children"][0]["can_enrol"]

        closed = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year + 2})
        assert closed.status_code == 422 and f"année scolaire en cours {year}-{year + 1}" in closed.json()["detail"]
        made = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
        assert made.status_code == 201, made.text
        enrolment = made.json()
        assert enrolment["level"] == "CM2" and enrolment["school_year"] == f"{year}-{year + 1}" and enrolment["mid_year"]
        seen = (await staff.get(f"/enrolments/{enrolment['id']}")).json()
        assert seen["mid_year"] and seen["school_year_title"] == f"année scolaire en cours {year}-{year + 1}"
    finally:
        await staff.aclose()
        await f.close()


async def test_an_address_outside_the_town_gets_no_sector_school_the_family_is_told_why_and_the_agent_sees_it() -> None:
    f = await family()
    staff = await agent()
    try:
        year = (await f.api.get("/enrolments/eligible")).json()["school_year_start"]
        kid = child("Lou", date(year - 7, 6, 6))
        event = dossier_event(f.account_id, [kid], number="7", street="rue des Lilas")  # a street of the map…
        paris = event.data.address.model_copy(update={"postcode": "75011", "town": "Paris"})  # …of another town
        await publish(event.model_copy(update={"data": event.data.model_copy(update={"address": paris})}))
        body = await unlocked(f)
        assert body["address_in_town"] is False
        assert "(75011 Paris) n'est pas à Montclair-sur-Loire" in body["address_message"]
        assert body["children"][0]["sector_school"] is None and not body["children"][0]["address_on_map"]

        made = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
        assert made.status_code == 201, made.text
        enrolment = made.json()
        assert enrolment["status"] == "pending_agent" and enrolment["sector_school_id"] is None
        assert enrolment["address_outside_town"] and "hors de la commune" in enrolment["status_label"]
        queue = (await staff.get("/enrolments/pending", params={"school_year": year})).json()["enrolments"]
        assert next(e for e in queue if e["id"] == enrolment["id"])["address_outside_town"]

        lookup = {"street": "rue des Lilas", "number": "7"}
        assert (await staff.get("/sector-map/lookup", params=lookup)).json()["found"]
        outside = (await staff.get("/sector-map/lookup", params={**lookup, "postcode": "75011", "town": "Paris"})).json()
        assert outside["found"] is False and outside["in_town"] is False
        inside = (await staff.get("/sector-map/lookup", params={**lookup, "postcode": "45190", "town": "Montclair-sur-Loire"})).json()
        assert inside["found"] and inside["in_town"]
    finally:
        await staff.aclose()
        await f.close()


async def test_a_deleted_accounts_pending_requests_are_withdrawn_and_deciding_them_is_a_clear_409(db_client) -> None:
    f = await family()
    staff = await agent()
    try:
        year = (await f.api.get("/enrolments/eligible")).json()["school_year_start"]
        await ensure_free(staff, "elem-jaures", "CE1", year, 2)
        confirmed_kid, waiting_kid = child("Inès", date(year - 7, 2, 2)), child("Jules", date(year - 7, 9, 9))
        await publish(dossier_event(f.account_id, [confirmed_kid, waiting_kid], number="5", street="rue des Tilleuls"))
        await unlocked(f)
        confirmed = (await f.api.post("/enrolments", json={"child_id": confirmed_kid.child_id, "school_year": year})).json()
        assert confirmed["status"] == "confirmed"
        derogation = {"requested_school_id": "prim-curie", "reason_category": "fratrie", "reason_text": "Sa sœur y est."}
        asked = await f.api.post(f"/enrolments/{confirmed['id']}/derogation", json=derogation)
        assert asked.status_code == 200, asked.text
        waiting = (await f.api.post("/enrolments", json={"child_id": waiting_kid.child_id, "school_year": year,
                                                         "derogation": derogation})).json()
        assert waiting["status"] == "pending_agent"
        ids = {confirmed["id"], waiting["id"]}
        queue = (await staff.get("/enrolments/pending", params={"school_id": "prim-curie", "school_year": year})).json()["enrolments"]
        assert ids <= {e["id"] for e in queue}

        assert (await f.identity.post("/me/delete", json={"password": GOOD_PASSWORD}, headers=f.auth)).status_code == 204
        enrolments = db_client["ecp_enrolment"]["enrolments"]
        deadline = time.monotonic() + 20
        while await enrolments.count_documents({"_id": {"$in": list(ids)}, "erased_at": {"$ne": None}}) < 2:
            assert time.monotonic() < deadline, "the erasure was not applied in time"
            await asyncio.sleep(0.3)

        queue = (await staff.get("/enrolments/pending", params={"school_id": "prim-curie", "school_year": year})).json()["enrolments"]
        assert not ids & {e["id"] for e in queue}
        overview = (await staff.get("/schools/prim-curie/enrolments", params={"school_year": year})).json()
        mine = {e["id"]: e for e in overview["enrolments"] if e["id"] in ids}
        assert mine[waiting["id"]]["status"] == "withdrawn" and mine[confirmed["id"]]["derogation"]["status"] == "withdrawn"
        for path, decision in ((f"/enrolments/{confirmed['id']}/derogation/decision", {"decision": "accepted"}),
                               (f"/enrolments/{waiting['id']}/derogation/decision", {"decision": "accepted"}),
                               (f"/enrolments/{waiting['id']}/derogation/decision", {"decision": "refused", "reason": "Non."}),
                               (f"/enrolments/{waiting['id']}/decision", {"decision": "refuse", "reason": "Non."})):
            answer = await staff.post(path, json=decision)
            assert answer.status_code == 409 and answer.json()["detail"] == WITHDRAWN, (path, answer.text)
    finally:
        await staff.aclose()
        await f.close()


async def test_a_printed_certificate_is_checked_on_the_public_page_which_shows_the_childs_initials_only() -> None:
    from pypdf import PdfReader

    f = await family()
    staff = await agent()
    try:
        year = (await f.api.get("/enrolments/eligible")).json()["school_year_start"]
        await ensure_free(staff, "elem-jaures", "CP", year, 1)
        kid = child("Zoé", date(year - 6, 1, 15))
        await publish(dossier_event(f.account_id, [kid], number="5", street="rue des Tilleuls"))
        await unlocked(f)
        enrolment = (await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})).json()
        link = await certificate_link(f.api, enrolment["id"])
        async with httpx.AsyncClient(timeout=30) as raw:
            pdf = PdfReader(io.BytesIO((await raw.get(link["url"])).content))
        code = (await f.api.get(f"/enrolments/{enrolment['id']}")).json()["verification_code"]
        assert len(pdf.pages) == 1 and code in pdf.pages[0].extract_text()

        async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as public:  # no login
            checked = await public.get(f"/api/enrolment/verifications/{code.lower().replace('-', ' ')}")
            assert checked.status_code == 200, checked.text
            assert checked.json() == {"code": code, "valid": True, "school_name": "École élémentaire Jean-Jaurès", "level": "CP",
                                      "level_label": "CP", "school_year": f"{year}-{year + 1}", "child_initials": f"Z. {kid.last_name[0]}."}
            page = await public.get(f"/verifier/{code}")
            assert page.status_code == 200 and f"Z. {kid.last_name[0]}." in page.text and "authentique" in page.text
            assert kid.last_name not in page.text and "Zoé" not in page.text
            unknown = await public.get("/verifier/0000-0000-0000")
            assert unknown.status_code == 404 and "Aucun certificat" in unknown.text
    finally:
        await staff.aclose()
        await f.close()


async def test_each_confirmed_enrolment_sends_one_email_naming_its_child_level_and_school_with_its_certificate_link() -> None:
    client, email = person()
    account_id = await registered_and_activated(client, email)
    f = Family(account_id, (await logged_in(client, email))["access_token"], client)
    staff = await agent()
    try:
        year = (await f.api.get("/enrolments/eligible")).json()["school_year_start"]
        await ensure_free(staff, "elem-jaures", "CP", year, 1)
        await ensure_free(staff, "elem-jaures", "CE2", year, 1)
        kids = [child("Léna", date(year - 6, 4, 4)), child("Malo", date(year - 8, 8, 8))]
        await publish(dossier_event(account_id, kids, number="5", street="rue des Tilleuls"))
        await unlocked(f)
        ids = {}
        for kid in kids:
            made = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
            assert made.status_code == 201 and made.json()["status"] == "confirmed", made.text
            ids[kid.first_name] = made.json()["id"]
        confirmed_subject = "Votre inscription scolaire est confirmée"

        async def confirmations() -> list[dict[str, Any]]:
            return [m for m in await mails_to(email) if m["Subject"] == confirmed_subject]

        deadline = time.monotonic() + 60
        while len(await confirmations()) < 2:
            assert time.monotonic() < deadline, "the two confirmation emails did not arrive"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        found = await confirmations()
        assert len(found) == 2  # one per enrolment, no more
        texts = sorted([(await mail(m["ID"]))["Text"] for m in found], key=lambda t: "Malo" in t)
        for text, (name, level) in zip(texts, (("Léna", "CP"), ("Malo", "CE2")), strict=True):
            assert f"L'inscription scolaire de {name} est confirmée" in text
            assert f"- Niveau : {level}" in text and "- École : École élémentaire Jean-Jaurès" in text
            assert f"{GATEWAY}/inscription-scolaire/{ids[name]}/certificat" in text
    finally:
        await staff.aclose()
        await f.close()


async def test_guessing_certificate_codes_is_rate_limited_by_the_gateway() -> None:
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as public:
        answers = [await public.get(f"/api/enrolment/verifications/0000-0000-{n:04d}") for n in range(30)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.status_code in (404, 429) for a in answers)
    assert limited[0].json()["detail"] and limited[0].headers.get("retry-after")
