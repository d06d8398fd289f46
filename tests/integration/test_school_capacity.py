"""Capacities as events, against the running system: an agent's capacity change in enrolment is
written with its SchoolCapacityChanged (the seat counter's outbox), the event is on
`enrolment.school.v1` once, and insights' `/schools` shows the new capacity against its counts.
Every sample school's default capacities were announced exactly once, however often enrolment
started."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from schemas.contracts.enrolment import SCHOOL_TOPIC
from tests.integration.identity_client import GATEWAY, staff_token
from tests.integration.kafka_tools import read_all
from tests.integration.polling import eventually

ENROLMENT = f"{GATEWAY}/api/enrolment"
INSIGHTS = f"{GATEWAY}/api/insights"
SCHOOL, LEVEL = "elem-jaures", "CP"


async def capacity_events() -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in await read_all(SCHOOL_TOPIC)]


async def test_an_agents_capacity_change_is_one_event_and_insights_shows_it_against_the_counts() -> None:
    token = await staff_token("agent", "Camille Capacité")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=ENROLMENT, headers=headers, timeout=30) as enrolment, \
            httpx.AsyncClient(base_url=INSIGHTS, headers=headers, timeout=30) as insights:
        overview = (await enrolment.get(f"/schools/{SCHOOL}/enrolments")).json()
        year = overview["school_year"]
        row = next(r for r in overview["levels"] if r["level"] == LEVEL)
        # A capacity the level never had in this test's runs: at least the seats taken, and new.
        new = max(row["capacity"], row["seats_taken"]) + 1 if row["capacity"] < 900 else row["seats_taken"] + 1
        started = datetime.now(UTC)
        changed = await enrolment.put(f"/schools/{SCHOOL}/capacity",
                                      json={"school_year": year, "level": LEVEL, "capacity": new})
        assert changed.status_code == 200, changed.text
        assert changed.json()["capacity"] == new
        # The same capacity again changes nothing, so announces nothing.
        again = await enrolment.put(f"/schools/{SCHOOL}/capacity", json={"school_year": year, "level": LEVEL, "capacity": new})
        assert again.status_code == 200, again.text

        async def shown() -> dict[str, Any] | None:
            rows = (await insights.get("/schools")).json()["rows"]
            mine = [r for r in rows if (r["school_id"], r["school_year"], r["level"]) == (SCHOOL, year, LEVEL)]
            return mine[0] if mine and mine[0]["capacity"] == new else None

        shown_row = await eventually(shown, f"insights shows the capacity {new} of {SCHOOL} {LEVEL} {year}", timeout_s=60)
        assert shown_row["school_name"] == overview["school"]["name"]

        def this_change(e: dict[str, Any]) -> bool:
            d = e["data"]
            return (e["subject"] == SCHOOL and d["school_id"] == SCHOOL and d["school_year"] == year and d["level"] == LEVEL
                    and datetime.fromisoformat(d["changed_at"]) >= started)

        announced = [e for e in await capacity_events() if this_change(e)]
        assert [(e["data"]["previous_capacity"], e["data"]["capacity"]) for e in announced] == [(row["capacity"], new)]
        assert announced[0]["data"]["changed_by"] is not None


async def test_every_schools_default_capacities_were_announced_exactly_once() -> None:
    token = await staff_token("agent", "Camille Capacité")
    async with httpx.AsyncClient(base_url=ENROLMENT, headers={"Authorization": f"Bearer {token}"}, timeout=30) as enrolment:
        schools = (await enrolment.get("/schools")).json()
    first = Counter((e["data"]["school_id"], e["data"]["level"]) for e in await capacity_events()
                    if e["data"]["school_year"] is None and e["data"]["previous_capacity"] is None)
    for school in schools:
        for level in school["capacity"]:
            assert first[(school["id"], level)] == 1, (school["id"], level)
