"""The review queue against the real database server: totals from the ledger that never drift
(concurrent transitions, replays, a settle interrupted), windowed pages equal to a plain sorted
query for every filter, and the « école » filter fed by enrolment's events (a submitted file under
its children's sector schools before any enrolment)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from schemas.contracts import enrolment as enrolment_events
from services.household.store import COUNT_MARK_INC, COUNT_MARK_SET, HouseholdStore
from services.kernel.envelope import event_json, new_event
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR
from tests.integration.identity_client import GATEWAY, wait_for_event
from tests.integration.polling import eventually
from tests.integration.test_household import Household, agent, household, household_db  # noqa: F401

NOW = datetime.now(UTC).replace(microsecond=0)


async def files(store: HouseholdStore, n: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` files inserted one by one as the service does (each counted at once), submitted over
    the last 400 days, in every status, some at a school, some under a lease."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = {"_id": f"d{i:04d}", "account_id": f"a{i:04d}", "version": 1,
               "status": rng.choice(["submitted"] * 4 + ["validated", "rejected", "corrections_requested", "draft"]),
               "submitted_at": NOW - timedelta(days=rng.uniform(0, 400)), "search": [f"w{i % 7}"]}
        if row["status"] == "draft" and rng.random() < 0.5:
            del row["submitted_at"]
        if rng.random() < 0.3:
            row["schools"] = [rng.choice(["ecole-a", "ecole-b"])]
        if row["status"] == "submitted" and rng.random() < 0.2:
            row["assignment"] = {"agent_id": "agent-1", "until": NOW + timedelta(minutes=rng.choice([-5, 30]))}
        await store.insert(row)
        rows.append(row)
    return rows


def expected(rows: list[dict[str, Any]], *, statuses: tuple[str, ...], school: str | None = None,
             free_at: datetime | None = None, until: datetime | None = None, newest_first: bool = False) -> list[str]:
    kept = [r for r in rows if r["status"] in statuses and r.get("submitted_at") is not None
            and (school is None or school in r.get("schools", []))
            and (free_at is None or not (r.get("assignment") and r["assignment"]["until"] > free_at))
            and (until is None or r["submitted_at"] <= until)]
    kept.sort(key=lambda r: (r["submitted_at"], r["_id"]), reverse=newest_first)
    return [r["_id"] for r in kept]


async def test_concurrent_transitions_leave_the_totals_equal_to_a_real_count(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    rows = await files(store, 60)
    statuses = ["submitted", "validated", "rejected", "corrections_requested", "draft"]

    async def churn(worker: int) -> None:
        rng = random.Random(worker)
        for _ in range(25):
            row = rng.choice(rows)
            current = await store.get(row["_id"])
            assert current is not None
            # Lost compare-and-sets are part of the test: only the winners count. Half the writers
            # say the status they read, as the edit of a draft does (a draft to a draft: no settle).
            was = current["status"] if worker % 2 else None
            await store.replace_if_version(row["_id"], current["version"], {"status": rng.choice(statuses)}, [], was=was)

    await asyncio.gather(*(churn(w) for w in range(6)))
    counts, _ = await store.tallies()
    assert {k: n for k, n in counts.items() if n} == await store.real_counts()


async def test_a_drafts_creation_and_edits_leave_the_ledger_alone(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    await store.insert({"_id": "draft-1", "account_id": "a-draft", "version": 1, "status": "draft"})
    assert await store.replace_if_version("draft-1", 1, {"status": "draft", "children_count": 2}, [], was="draft")
    assert await db["queue_counts"].count_documents({}) == 0
    assert await db["dossiers"].count_documents({"count_pending": True}) == 0
    assert await store.replace_if_version("draft-1", 2, {"status": "submitted", "submitted_at": NOW}, [], was="draft")
    counts, _ = await store.tallies()
    assert {k: n for k, n in counts.items() if n} == await store.real_counts() == {"submitted": 1}


async def test_a_settle_replayed_late_or_interrupted_never_counts_twice(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    await files(store, 10)
    await store.replace_if_version("d0001", (await store.get("d0001"))["version"], {"status": "validated"}, [])  # type: ignore[index]
    # A process stopped between its write and its settle: the file stays marked.
    await db["dossiers"].update_one({"_id": "d0002"}, {"$set": {"status": "rejected", **COUNT_MARK_SET}, "$inc": COUNT_MARK_INC})
    for _ in range(3):
        await asyncio.gather(store.settle("d0001"), store.settle("d0001"), store.settle("d0003"))
    assert await store.settle_pending() == 1  # d0002, finished by the periodic run
    assert await db["dossiers"].count_documents({"count_pending": True}) == 0
    counts, _ = await store.tallies()
    assert {k: n for k, n in counts.items() if n} == await store.real_counts()
    # The copies pages read, lost (or never made by an older version): a restarted service remakes them.
    await db["queue_totals"].delete_many({})
    restarted = HouseholdStore(db)
    await restarted.settle_pending()
    counts, _ = await restarted.tallies()
    assert {k: n for k, n in counts.items() if n} == await store.real_counts()


async def test_windowed_pages_and_totals_equal_a_plain_query_for_every_filter(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    rows = await files(store, 150)
    until = NOW - timedelta(days=30)
    cases: list[dict[str, Any]] = [
        {"status": "submitted"}, {"status": "submitted", "newest_first": True}, {"status": None},
        {"status": None, "newest_first": True}, {"status": "validated", "school": "ecole-a"},
        {"status": "submitted", "unassigned_at": NOW}, {"status": "submitted", "submitted_until": until},
        {"status": "submitted", "submitted_until": until, "unassigned_at": NOW, "newest_first": True},
        {"status": "submitted", "school": "ecole-b", "newest_first": True},
    ]
    for case in cases:
        status = case["status"]
        want = expected(rows, statuses=(status,) if status else ("submitted", "validated", "rejected", "corrections_requested"),
                        school=case.get("school"), free_at=case.get("unassigned_at"), until=case.get("submitted_until"),
                        newest_first=case.get("newest_first", False))
        got: list[str] = []
        for page in range(1, 40):
            items, total, capped = await store.search(**case, page=page, limit=9)
            got += [i["_id"] for i in items]
            assert (total, capped) == (len(want), False), case
            if len(items) < 9:
                break
        assert got == want, case


async def test_enrolment_events_give_a_file_its_school_and_its_count(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    await store.insert({"_id": "f1", "account_id": "acc-1", "status": "submitted", "version": 1, "submitted_at": NOW})
    await store.enrolment_seen("e1", "acc-1", "c1", rank=1, state="requested", school_id="ecole-b", sector_school_id="ecole-a")
    assert (await store.get("f1"))["schools"] == ["ecole-b"]  # type: ignore[index]
    await store.derogation_refused("e1", "acc-1", "c1")  # on in the sector school
    await store.enrolment_seen("e1", "acc-1", "c1", rank=1, state="requested", school_id="ecole-b")  # replayed late
    assert (await store.get("f1"))["schools"] == ["ecole-a"]  # type: ignore[index]
    await store.enrolment_seen("e1", "acc-1", "c1", rank=3, state="refused")
    assert "schools" not in await store.get("f1") or not (await store.get("f1"))["schools"]  # type: ignore[operator, index]
    counts, _ = await store.tallies()
    assert counts.get("submitted:ecole-a", 0) == 0 and counts["submitted"] == 1


async def test_a_file_is_found_under_its_school_after_an_enrolment_event_and_not_under_another(
    household: Household, agent: httpx.AsyncClient, household_db: Any
) -> None:
    family = household.family
    _, dossier = await household.complete_and_submitted()
    school, other = f"ecole-{uuid.uuid4().hex[:8]}", f"ecole-{uuid.uuid4().hex[:8]}"

    async def listed(school_id: str) -> tuple[list[str], int]:
        page = (await agent.get("/review/queue", params={"status": "submitted", "school": school_id})).json()
        return [i["id"] for i in page["items"]], page["total"]

    assert await listed(school) == ([], 0)
    enrolment_id = str(uuid.uuid4())
    requested = new_event(enrolment_events.EnrolmentRequested(
        enrolment_id=enrolment_id, account_id=family.account_id, child_id=dossier["children"][0]["child_id"],
        school_year="2027-2028", level="CP", sector_school_id=school, status="pending_agent", pending_reason="no_seat",
        requested_at=datetime.now(UTC)), source="tests", subject=enrolment_id)
    producer = AIOKafkaProducer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for _ in range(2):  # a redelivery changes nothing
            await producer.send_and_wait(enrolment_events.TOPIC, event_json(requested), key=enrolment_id.encode())
    finally:
        await producer.stop()

    async def found() -> bool:
        return await listed(school) == ([dossier["id"]], 1)

    await eventually(found, "the file is listed under the school its child asked for")
    assert await listed(other) == ([], 0)
    assert (await agent.get("/review/queue", params={"school": "pas une école !"})).status_code == 422
    counts, _ = await HouseholdStore(household_db).tallies()
    assert counts[f"submitted:{school}"] == 1


async def test_two_childrens_enrolments_handled_at_once_leave_both_schools(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    await store.insert({"_id": "f2", "account_id": "acc-2", "status": "validated", "version": 1, "submitted_at": NOW})
    await asyncio.gather(*(store.enrolment_seen(f"e{n}", "acc-2", f"c{n}", rank=3, state="confirmed", school_id=f"ecole-{n}")
                           for n in range(4)))
    assert (await store.get("f2"))["schools"] == [f"ecole-{n}" for n in range(4)]  # type: ignore[index]
    counts, _ = await store.tallies()
    assert {k: n for k, n in counts.items() if n} == await store.real_counts()


async def test_sector_schools_list_a_waiting_file_until_a_real_enrolment_of_the_child_overrides_them(db: Any) -> None:
    store = HouseholdStore(db)
    await store.ensure_indexes()
    await store.insert({"_id": "f3", "account_id": "acc-3", "status": "submitted", "version": 1, "submitted_at": NOW})
    first, second = NOW, NOW + timedelta(minutes=5)

    async def schools() -> list[str]:
        return (await store.get("f3")).get("schools") or []  # type: ignore[union-attr]

    for _ in range(2):  # a redelivery changes nothing
        await store.sector_schools_found("acc-3", [("c1", "mat-a"), ("c2", "elem-a"), ("c3", None)], first)
        assert await schools() == ["elem-a", "mat-a"]
    # Resubmitted after a correction: c1 moved house, c2 left the file.
    await store.sector_schools_found("acc-3", [("c1", "mat-b"), ("c3", None)], second)
    assert await schools() == ["mat-b"]
    await store.sector_schools_found("acc-3", [("c1", "mat-a"), ("c2", "elem-a"), ("c3", None)], first)  # replayed late
    assert await schools() == ["mat-b"]
    # Once validated, a real enrolment of c1 wins over its sector school, whatever the order.
    await store.enrolment_seen("e3", "acc-3", "c1", rank=1, state="requested", school_id="prim-c", sector_school_id="mat-b")
    await store.sector_schools_found("acc-3", [("c1", "mat-b")], second)
    assert await schools() == ["prim-c"]
    await store.enrolment_seen("e3", "acc-3", "c1", rank=3, state="refused")
    assert await schools() == []
    counts, _ = await store.tallies()
    assert {k: n for k, n in counts.items() if n} == await store.real_counts()


async def test_a_submitted_file_is_listed_and_counted_under_its_childs_sector_school_and_not_another(
    household: Household, agent: httpx.AsyncClient, household_db: Any
) -> None:
    family = household.family
    _, dossier = await household.complete_and_submitted()  # 12 bis rue des Lilas, a child born in 2021
    child = dossier["children"][0]
    async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/enrolment", headers=family.headers, timeout=30) as enrolment:
        year = (await enrolment.get("/enrolments/eligible")).json()["school_year_start"]
        address = {k: dossier["address"][k] for k in ("street", "number", "postcode", "town")}
        enrolment.headers.update(agent.headers)
        segment = (await enrolment.get("/sector-map/lookup", params=address)).json()["segment"]
    # The map's maternelle up to grande section (born Y-5), its élémentaire from CP.
    maternelle = int(child["birth_date"][:4]) >= year - 5
    school, other = ((segment["maternelle_id"], segment["elementaire_id"]) if maternelle
                     else (segment["elementaire_id"], segment["maternelle_id"]))
    assert school != other

    found = await wait_for_event(enrolment_events.TOPIC, lambda e: e["type"].endswith(".SectorSchoolsFound")
                                 and e["data"]["dossier_id"] == dossier["id"])
    assert found["subject"] == dossier["id"] and found["data"]["on_map"] is True
    assert found["data"]["children"] == [{"child_id": child["child_id"], "school_id": school}]
    assert found["data"]["school_year"] == f"{year}-{year + 1}"

    async def listed(school_id: str, **params: Any) -> tuple[list[str], int]:
        page = (await agent.get("/review/queue", params={"status": "submitted", "school": school_id, **params})).json()
        return [i["id"] for i in page["items"]], page["total"]

    async def under_its_school() -> bool:
        return await listed(school, q=dossier["reference"]) == ([dossier["id"]], 1)

    await eventually(under_its_school, "the submitted file is listed under its child's sector school")
    assert await listed(other, q=dossier["reference"]) == ([], 0)
    items, total = await listed(school, sort="newest", limit=100)
    assert dossier["id"] in items and total >= 1
    store = HouseholdStore(household_db)

    async def counted() -> bool:  # other engineers' files may be changing meanwhile: until equal
        counts, _ = await store.tallies()
        return counts.get(f"submitted:{school}", 0) == (await store.real_counts()).get(f"submitted:{school}", 0) >= 1

    await eventually(counted, "the ledger counts the file under its sector school")
