"""The seat leak repair against the real database server (a throwaway database): a seat taken
for an enrolment that was never written, as a crash between the two writes leaves it, is given
back once, and only once it is too old to be a request still in flight."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.enrolment.settings import EnrolmentSettings
from services.enrolment.store import EnrolmentStore
from services.enrolment.usecases import EnrolmentService

START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


async def test_a_seat_whose_enrolment_was_never_written_is_given_back_once_and_the_others_are_kept(db_client: Any) -> None:
    name = f"ecp_test_seats_{uuid.uuid4().hex[:8]}"
    store = EnrolmentStore(db_client[name])
    now = [START]
    service = EnrolmentService(store, None, EnrolmentSettings(seat_hold_grace_s=600), clock=lambda: now[0])  # type: ignore[arg-type]
    try:
        await store.ensure_seat("elem:CP:2027", "elem", "CP", 2027, 3)
        assert await store.take_seat("elem:CP:2027", "written", START)
        await store.enrolments.insert_one({"_id": "written", "seat_id": "elem:CP:2027", "status": "confirmed"})
        assert await store.take_seat("elem:CP:2027", "crashed", START)  # the enrolment insert never happened

        assert await service.repair_seats() == 0, "a hold this recent may be a request still writing"
        now[0] = START + timedelta(minutes=11)
        assert await store.take_seat("elem:CP:2027", "in-flight", now[0])
        assert await service.repair_seats() == 1

        seat = await store.seat("elem:CP:2027")
        assert seat is not None and (seat["count"], seat["free"]) == (2, 1)
        assert set(seat["holds"]) == {"written", "in-flight"} and seat["holds"]["written"].get("checked") is True
        assert await store.release_seat("elem:CP:2027", "crashed") is False  # never given back twice
        assert await service.repair_seats() == 0
    finally:
        await db_client.drop_database(name)
