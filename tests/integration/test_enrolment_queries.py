"""The agents' enrolment lists against the real database server (a throwaway database): the
union of "at this school" and "asking to move to this school", and of "awaiting a decision" and
"out-of-sector request pending", without a $or (which the local server answers by scanning)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.enrolment.store import EnrolmentStore

START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def enrolment(eid: str, minutes: int, *, school: str, status: str, level: str = "CP", last_name: str = "Martin",
              derogation: dict[str, str] | None = None, year: int = 2027) -> dict[str, Any]:
    document: dict[str, Any] = {"_id": eid, "school_id": school, "school_year": year, "status": status, "level": level,
                                "child": {"last_name": last_name}, "created_at": START + timedelta(minutes=minutes),
                                "slot": f"slot-{eid}"}
    if derogation is not None:
        document["derogation"] = derogation
    return document


async def test_school_lists_and_pending_decisions_merge_both_sides_once_in_order(db_client: Any) -> None:
    name = f"ecp_test_enrol_queries_{uuid.uuid4().hex[:8]}"
    store = EnrolmentStore(db_client[name])
    try:
        await store.ensure_indexes()
        await store.enrolments.insert_many([
            enrolment("at-jaures", 1, school="jaures", status="confirmed", last_name="Bernard"),
            enrolment("to-jaures", 2, school="ferry", status="confirmed", level="CE1",
                      derogation={"requested_school_id": "jaures", "status": "pending"}),
            enrolment("both", 3, school="jaures", status="pending_agent", last_name="Albert",
                      derogation={"requested_school_id": "jaures", "status": "pending"}),
            enrolment("elsewhere", 4, school="ferry", status="pending_agent"),
            enrolment("other-year", 5, school="jaures", status="pending_agent", year=2028),
            enrolment("decided", 6, school="ferry", status="refused",
                      derogation={"requested_school_id": "jaures", "status": "refused"}),
        ])
        at_jaures = [e["_id"] for e in await store.of_school("jaures", 2027)]
        assert at_jaures == ["to-jaures", "both", "at-jaures", "decided"]  # by level code, then last name; once each

        assert [e["_id"] for e in await store.pending(None, 2027)] == ["to-jaures", "both", "elsewhere"]
        assert [e["_id"] for e in await store.pending("jaures", 2027)] == ["to-jaures", "both"]
        assert [e["_id"] for e in await store.pending(None, None)] == ["to-jaures", "both", "elsewhere", "other-year"]
        assert [e["_id"] for e in await store.pending(None, 2027, limit=2)] == ["to-jaures", "both"]
    finally:
        await db_client.drop_database(name)


async def test_the_certificate_queue_gives_due_ones_oldest_first_skips_live_leases_and_leases_each_once(db_client: Any) -> None:
    name = f"ecp_test_enrol_queries_{uuid.uuid4().hex[:8]}"
    store = EnrolmentStore(db_client[name])
    now = datetime.now(UTC)

    def confirmed(eid: str, minutes_ago: int, **more: Any) -> dict[str, Any]:
        return {**enrolment(eid, 0, school="jaures", status="confirmed"), "certificate_due": True,
                "confirmed_at": now - timedelta(minutes=minutes_ago), **more}

    try:
        await store.ensure_indexes()
        await store.enrolments.insert_many([
            confirmed("newer", 1),
            confirmed("older", 5),
            confirmed("rendering", 9, certificate_lease_until=now + timedelta(seconds=30)),
            confirmed("crashed", 7, certificate_lease_until=now - timedelta(seconds=1)),
            {**confirmed("issued", 8), "certificate_due": False},
        ])
        candidates = await store.due_certificates(now)
        assert [c["_id"] for c in candidates] == ["crashed", "older", "newer"]
        until = now + timedelta(seconds=30)
        first = await store.lease_certificate(candidates[0], until)
        assert first is not None and first["_id"] == "crashed" and "outbox" not in first
        assert await store.lease_certificate(candidates[0], until) is None  # read before the lease: taken since
        assert [c["_id"] for c in await store.due_certificates(now)] == ["older", "newer"]
    finally:
        await db_client.drop_database(name)
