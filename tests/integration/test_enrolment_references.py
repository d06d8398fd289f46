"""Enrolments' short references against the real servers: INS-<year>-<six digits> from a
counter per school year, unique and increasing, found by the agents however typed in
« Inscriptions à décider » and in the decision trail."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from tests.integration.identity_client import logged_in, person, registered_and_activated, wait_for_event
from tests.integration.polling import eventually
from tests.integration.test_enrolment import (
    TOPIC, Family, agent, child, coming_year, dossier_event, ensure_free, family, publish, unlocked,
)
from tests.integration.test_notifier import mail, mails_to


async def test_the_schooling_pages_read_the_files_reference_from_enrolments_projection() -> None:
    f = await family()
    try:
        year = await coming_year(f)
        event = dossier_event(f.account_id, [child("Capucine", date(year - 6, 6, 6))])
        # as household's DossierValidated carries it
        await publish(event.model_copy(update={"data": event.data.model_copy(update={"reference": "MSL-2027-004321"})}))
        assert (await unlocked(f))["dossier_reference"] == "MSL-2027-004321"
    finally:
        await f.close()


async def test_enrolments_get_short_counted_references_that_agents_search_by() -> None:
    staff = await agent()
    identity, email = person()
    account_id = await registered_and_activated(identity, email)
    f = Family(account_id, (await logged_in(identity, email))["access_token"], identity)
    try:
        year = await coming_year(f)
        for school in ("prim-curie", "mat-coquelicots", "mat-tilleuls"):
            await ensure_free(staff, school, "PS", year, 3)
        first_kid, second_kid = child("Aude", date(year - 3, 3, 3)), child("Basile", date(year - 3, 5, 5))
        await publish(dossier_event(f.account_id, [first_kid, second_kid], number="12", street="rue des Lilas"))
        await unlocked(f)
        derogation = {"requested_school_id": "prim-curie", "reason_category": "fratrie", "reason_text": "Son frère est à Marie-Curie."}
        asked = (await f.api.post("/enrolments", json={"child_id": first_kid.child_id, "school_year": year,
                                                        "derogation": derogation})).json()
        confirmed = (await f.api.post("/enrolments", json={"child_id": second_kid.child_id, "school_year": year})).json()

        pattern = re.compile(rf"^INS-{year}-(\d{{6}})$")
        numbers = [int(pattern.fullmatch(e["reference"]).group(1)) for e in (asked, confirmed)]  # type: ignore[union-attr]
        assert numbers[1] > numbers[0]
        mine = (await f.api.get("/enrolments")).json()
        assert {e["reference"] for e in mine["enrolments"]} >= {asked["reference"], confirmed["reference"]}

        # « Inscriptions à décider »: found by its reference typed loosely, alone on the page
        typed = f"ins {year} {numbers[0]}"
        found = (await staff.get("/pending-decisions", params={"reference": typed})).json()
        assert [i["id"] for i in found["items"]] == [asked["id"]] and found["total"] == 1
        # a confirmed enrolment is not waiting for anyone, even searched by its own reference
        assert (await staff.get("/pending-decisions", params={"reference": confirmed["reference"]})).json()["total"] == 0
        refused = await staff.get("/pending-decisions", params={"reference": "Dupont"})
        assert refused.status_code == 422 and "INS-2027-000123" in refused.text

        decided = await staff.post(f"/enrolments/{asked['id']}/derogation/decision", json={"decision": "refused",
                                                                                          "reason": "Plus de place."})
        assert decided.status_code == 200, decided.text
        event = await wait_for_event(TOPIC, lambda e: e["type"].endswith("DerogationDecided") and e["subject"] == asked["id"])
        assert event["data"]["reference"] == asked["reference"]

        async def refusal_email() -> dict[str, Any] | None:
            found = [m for m in await mails_to(email) if "dérogation scolaire est refusée" in m["Subject"]]
            return await mail(found[0]["ID"]) if found else None
        sent = await eventually(refusal_email, "the dérogation refusal email")
        assert f"Référence à rappeler : {asked['reference']}" in sent["Text"]
        trail = (await staff.get("/audit", params={"reference": asked["reference"].lower()})).json()
        assert [(e["action"], e["reference"]) for e in trail["items"]] == [("derogation_refused", asked["reference"])]
        assert (await staff.get("/audit", params={"reference": "MSL-2027-000001"})).status_code == 422
    finally:
        await staff.aclose()
        await f.close()
