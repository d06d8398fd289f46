"""Enrolment references are unique in the database itself: the live service's index refuses a
second enrolment with an existing reference; and, on a scratch database, the start-up step
(``EnrolmentService.make_references_unique``) renumbers enrolments sharing an older reference
before making the index unique, keeps the old one findable, and an insert whose counted
reference is taken is told apart from an enrolment that already exists."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime

import pytest
from pymongo.errors import DuplicateKeyError

from services.enrolment.settings import EnrolmentSettings
from services.enrolment.store import AlreadyExists, EnrolmentStore, ReferenceTaken
from services.enrolment.usecases import EnrolmentService
from services.kernel import mongo

SETTINGS = EnrolmentSettings()
SHARED = "INS-2026-3F2B8C1D"  # an older reference: eight characters of a random id


async def unique_reference_index(store: EnrolmentStore, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await store.reference_index_unique():
            return True
        await asyncio.sleep(0.5)
    return False


async def test_the_database_refuses_a_second_enrolment_with_an_existing_reference() -> None:
    client = mongo.connect(SETTINGS.mongo_url, 10_000)
    try:
        store = EnrolmentStore(client[SETTINGS.database_name])
        assert await unique_reference_index(store), "the enrolment service did not make its reference index unique"
        existing = await store.enrolments.find_one({"reference": {"$type": "string"}}, {"reference": 1})
        if existing is None:
            pytest.skip("no enrolment yet in this database")
        with pytest.raises(DuplicateKeyError):
            await store.enrolments.insert_one({"_id": f"test-{uuid.uuid4()}", "reference": existing["reference"]})
        assert await store.enrolments.count_documents({"reference": existing["reference"]}) == 1
    finally:
        client.close()


async def test_enrolments_sharing_an_older_reference_are_renumbered_before_the_index_becomes_unique() -> None:
    client = mongo.connect(SETTINGS.mongo_url, 10_000)
    name = f"ecp_test_unique_refs_{uuid.uuid4().hex[:8]}"
    try:
        store = EnrolmentStore(client[name])
        await store.enrolments.create_index("reference")  # as the older versions left it
        await store.enrolments.insert_many([
            {"_id": "newer", "reference": SHARED, "school_year": 2026, "created_at": datetime(2026, 5, 3)},
            {"_id": "oldest", "reference": SHARED, "school_year": 2026, "created_at": datetime(2026, 5, 1)},
            {"_id": "middle", "reference": SHARED, "school_year": 2026, "created_at": datetime(2026, 5, 2)},
            {"_id": "alone", "reference": "INS-2026-0A1B2C3D", "school_year": 2026, "created_at": datetime(2026, 5, 1)},
        ])
        service = EnrolmentService(store, None, SETTINGS)  # type: ignore[arg-type]  (no object store needed)
        assert await service.make_references_unique() == 2
        assert await store.reference_index_unique()

        by_id = {e["_id"]: e async for e in store.enrolments.find({})}
        assert by_id["oldest"]["reference"] == SHARED and "former_reference" not in by_id["oldest"]
        assert by_id["alone"]["reference"] == "INS-2026-0A1B2C3D"
        renumbered = sorted(by_id[i]["reference"] for i in ("middle", "newer"))
        assert renumbered == ["INS-2026-000001", "INS-2026-000002"]
        assert {by_id[i]["former_reference"] for i in ("middle", "newer")} == {SHARED}
        # agents still find all three by the reference they had
        assert {e["_id"] for e in await store.with_reference(SHARED)} == {"oldest", "middle", "newer"}

        with pytest.raises(DuplicateKeyError):
            await store.enrolments.insert_one({"_id": "copy", "reference": "INS-2026-000001"})
        await store.enrolments.insert_many([{"_id": "no-ref-1"}, {"_id": "no-ref-2"}])  # sparse: none is no clash
        assert await service.make_references_unique() == 0  # done once; the next starts only read the index

        # An insert whose counted reference is taken is not « already enrolled ».
        await store.enrolments.create_index("slot", unique=True, sparse=True)
        await store.insert_enrolment({"_id": "e1", "reference": "INS-2026-000003", "slot": "child:2026"}, [])
        with pytest.raises(ReferenceTaken):
            await store.insert_enrolment({"_id": "e2", "reference": "INS-2026-000003", "slot": "other:2026"}, [])
        with pytest.raises(AlreadyExists):
            await store.insert_enrolment({"_id": "e3", "reference": "INS-2026-000004", "slot": "child:2026"}, [])
    finally:
        await client.drop_database(name)
        client.close()
