"""Enrolment's decision trail and « Inscriptions à décider » against the real servers: who decided
what and when for every decision, capacity change and sector-map import; the paged list with
its filters and the family's address; events naming the deciding agent; families kept out."""

from __future__ import annotations

from datetime import date, datetime, timedelta, UTC
from typing import Any

import httpx

from tests.integration.identity_client import wait_for_event
from tests.integration.test_enrolment import (
    API, TOPIC, agent, child, coming_year, dossier_event, ensure_free, family, publish, unlocked,
)


async def trail_of(staff: httpx.AsyncClient, enrolment_id: str) -> list[dict[str, Any]]:
    response = await staff.get("/audit", params={"enrolment_id": enrolment_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_derogation_and_an_off_map_decision_are_in_the_trail_with_their_agent_and_time() -> None:
    staff = await agent()
    agent_id = (await staff.get("/session")).json()["account_id"]
    f = await family()
    try:
        year = await coming_year(f)
        for school in ("prim-curie", "mat-coquelicots", "mat-tilleuls"):
            await ensure_free(staff, school, "PS", year, 3)
        sector_kid, off_map_kid = child("Inès", date(year - 3, 2, 2)), child("Malo", date(year - 3, 4, 4))
        await publish(dossier_event(f.account_id, [sector_kid], number="12", street="rue des Lilas"))
        await unlocked(f)
        derogation = {"requested_school_id": "prim-curie", "reason_category": "fratrie", "reason_text": "Sa sœur est à Marie-Curie."}
        asked = (await f.api.post("/enrolments", json={"child_id": sector_kid.child_id, "school_year": year,
                                                        "derogation": derogation})).json()

        # « Inscriptions à décider »: filtered by reason and level, with the address and the dérogation's reason
        listed = (await staff.get("/pending-decisions", params={"reason": "derogation", "level": "PS", "school_year": year,
                                                               "limit": 100})).json()
        mine = next(i for i in listed["items"] if i["id"] == asked["id"])
        assert mine["kind"] == "derogation" and mine["on_map"] is True
        assert mine["address"]["street"] == "rue des Lilas" and mine["derogation"]["reason_text"] == "Sa sœur est à Marie-Curie."
        assert listed["total"] >= 1 and listed["pages"] >= 1
        others = (await staff.get("/pending-decisions", params={"reason": "no_seat", "limit": 100})).json()
        assert asked["id"] not in [i["id"] for i in others["items"]]

        before = datetime.now(UTC) - timedelta(seconds=5)
        decided = await staff.post(f"/enrolments/{asked['id']}/derogation/decision", json={"decision": "accepted"})
        assert decided.status_code == 200, decided.text
        [entry] = await trail_of(staff, asked["id"])
        assert entry["action"] == "derogation_accepted" and entry["label"] == "Dérogation acceptée"
        assert entry["agent_id"] == agent_id and entry["school_id"] == "prim-curie" and entry["reference"] == asked["reference"]
        assert before <= datetime.fromisoformat(entry["at"]) <= datetime.now(UTC) + timedelta(seconds=5)
        event = await wait_for_event(TOPIC, lambda e: e["type"].endswith("DerogationDecided") and e["subject"] == asked["id"])
        assert event["data"]["decided_by"] == agent_id

        # an address off the map: the school the agent chose is recorded as such
        await publish(dossier_event(f.account_id, [sector_kid, off_map_kid], number="3", street="rue Imaginaire"))
        async def off_map_enrolable() -> dict[str, Any] | None:
            response = await f.api.post("/enrolments", json={"child_id": off_map_kid.child_id, "school_year": year})
            return response.json() if response.status_code == 201 else None
        from tests.integration.polling import eventually
        pending = await eventually(off_map_enrolable, "the second child unlocked")
        assert pending["pending_reason"] == "address_unknown"
        off_map = (await staff.get("/pending-decisions", params={"reason": "address_unknown", "limit": 100})).json()
        assert next(i for i in off_map["items"] if i["id"] == pending["id"])["on_map"] is False
        chosen = await staff.post(f"/enrolments/{pending['id']}/decision", json={"decision": "confirm", "school_id": "mat-tilleuls"})
        assert chosen.status_code == 200, chosen.text
        [entry] = await trail_of(staff, pending["id"])
        assert entry["action"] == "school_chosen" and entry["school_id"] == "mat-tilleuls" and entry["agent_id"] == agent_id
    finally:
        await staff.aclose()
        await f.close()


async def test_a_capacity_change_and_a_sector_map_import_are_in_the_trail() -> None:
    staff = await agent()
    agent_id = (await staff.get("/session")).json()["account_id"]
    try:
        overview = (await staff.get("/schools/elem-jaures/enrolments")).json()
        row = next(r for r in overview["levels"] if r["level"] == "CM2")
        year = int(overview["school_year"][:4])
        changed = await staff.put("/schools/elem-jaures/capacity",
                                  json={"school_year": year, "level": "CM2", "capacity": row["capacity"] + 1})
        assert changed.status_code == 200, changed.text
        latest = (await staff.get("/audit", params={"action": "capacity_changed", "limit": 5})).json()["items"][0]
        assert latest["agent_id"] == agent_id and latest["school_id"] == "elem-jaures" and latest["level"] == "CM2"
        assert latest["details"] == {"from": row["capacity"], "to": row["capacity"] + 1}

        # re-importing the map in force and applying it changes nothing but leaves two lines in the trail
        current = (await staff.get("/sector-map")).json()
        csv_text = "street;number_from;number_to;side;maternelle;elementaire\n" + "".join(
            f"{s['street']};{s['number_from']};{s['number_to']};{s['side']};{s['maternelle_id']};{s['elementaire_id']}\n"
            for s in current["segments"])
        imported = await staff.post("/sector-map/imports", content=csv_text.encode(), params={"name": "trace.csv"},
                                    headers={"Content-Type": "text/csv"})
        assert imported.status_code == 201, imported.text
        version = imported.json()["import_id"]
        assert (await staff.post(f"/sector-map/imports/{version}/apply")).status_code == 200
        for action in ("sector_map_imported", "sector_map_applied"):
            entries = (await staff.get("/audit", params={"action": action, "limit": 20})).json()["items"]
            entry = next(e for e in entries if e["details"]["version"] == version)
            assert entry["agent_id"] == agent_id and entry["details"]["source_name"] == "trace.csv"
    finally:
        await staff.aclose()


async def test_families_get_403_on_the_trail_and_the_pending_list_and_anonymous_401() -> None:
    f = await family()
    try:
        for path in ("/audit", "/pending-decisions"):
            assert (await f.api.get(path)).status_code == 403
        async with httpx.AsyncClient(base_url=API, timeout=10) as anonymous:
            for path in ("/audit", "/pending-decisions"):
                assert (await anonymous.get(path)).status_code == 401
    finally:
        await f.close()
