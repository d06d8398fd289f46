"""Claims and leases against the real database server (a throwaway database): the kernel relay's
claim (pending aggregates without a lease or with an expired one, never one another relay holds,
their events published once) and the documents scanner's lease, both without a ``$or``, which the
local server answers by scanning the whole collection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.documents.domain import Status
from services.documents.store import SCAN_LEASE, DocumentsStore
from services.kernel import mongo
from services.kernel.kafka import OutgoingMessage
from services.kernel.relay import OutboxRelay


class Published:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        self.ids += [dict(m.headers)["ce_id"].decode() for m in messages]


def pending(doc_id: str, lease: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": doc_id, "outbox_pending": True,
        "outbox": [{"id": f"{doc_id}-event", "topic": "t", "key": doc_id, "type": "T", "value": b"{}"}],
    }
    if lease is not None:
        doc["outbox_lease"] = lease
    return doc


async def test_it_publishes_unleased_and_expired_aggregates_once_and_leaves_a_live_lease_alone(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    coll = db_client[name]["deliveries"]
    now = datetime.now(UTC)
    try:
        await coll.insert_many([
            pending("free"),
            pending("expired", {"owner": "dead", "token": "t1", "until": now - timedelta(seconds=5)}),
            pending("held", {"owner": "alive", "token": "t2", "until": now + timedelta(seconds=60)}),
            {"_id": "done", "outbox": []},
        ])
        published = Published()
        relay = OutboxRelay([coll], published)
        await relay.ensure_indexes()
        assert await relay.relay_once() == 2
        assert sorted(published.ids) == ["expired-event", "free-event"]
        assert await relay.relay_once() == 0  # pulled: nothing twice
        held = await coll.find_one({"_id": "held"})
        assert held["outbox_lease"]["owner"] == "alive" and len(held["outbox"]) == 1
        assert await coll.count_documents({"outbox_pending": True}) == 1
    finally:
        await db_client.drop_database(name)


class RecordedFilters:
    """The collection, recording every filter the relay sends it."""

    def __init__(self, coll: Any) -> None:
        self._coll = coll
        self.filters: list[dict[str, Any]] = []

    def find(self, filter_: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.filters.append(filter_)
        return self._coll.find(filter_, *args, **kwargs)

    async def update_many(self, filter_: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.filters.append(filter_)
        return await self._coll.update_many(filter_, *args, **kwargs)

    async def bulk_write(self, requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        self.filters += [r._filter for r in requests]
        return await self._coll.bulk_write(requests, *args, **kwargs)

    # No find_one_and_update here: a claim that used one would fail on this spy. The local server
    # answers its write with a read of the whole collection (see kernel.mongo.update_and_read).
    async def update_one(self, filter_: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.filters.append(filter_)
        return await self._coll.update_one(filter_, *args, **kwargs)

    async def find_one(self, filter_: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.filters.append(filter_)
        return await self._coll.find_one(filter_, *args, **kwargs)

    async def create_index(self, *args: Any, **kwargs: Any) -> Any:
        return await self._coll.create_index(*args, **kwargs)


def operators(filter_: Any) -> set[str]:
    if isinstance(filter_, dict):
        return {k for k in filter_ if k.startswith("$")} | {op for v in filter_.values() for op in operators(v)}
    if isinstance(filter_, list):
        return {op for v in filter_ for op in operators(v)}
    return set()


async def test_a_relay_pass_sends_no_or_which_the_local_server_answers_by_scanning_everything(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    coll = RecordedFilters(db_client[name]["deliveries"])
    now = datetime.now(UTC)
    try:
        await coll._coll.insert_many([
            pending("free"), pending("expired", {"owner": "dead", "token": "t1", "until": now - timedelta(seconds=5)}),
        ])
        relay = OutboxRelay([coll], Published())
        assert await relay.relay_once() == 2
        assert len(coll.filters) >= 4  # claim, leases, pull: the pass really went through the spy
        assert not any({"$or", "$nor", "$where"} & operators(f) for f in coll.filters)
    finally:
        await db_client.drop_database(name)


async def test_the_scanner_leases_due_documents_soonest_first_never_one_held_and_without_or(db_client: Any) -> None:
    name = f"ecp_test_scan_lease_{uuid.uuid4().hex[:8]}"
    store = DocumentsStore(db_client[name])
    documents = RecordedFilters(store.documents)
    store.documents = documents
    now = datetime.now(UTC)

    def document(doc_id: str, due_in_s: float, status: Status = Status.PENDING, **more: Any) -> dict[str, Any]:
        return {"_id": doc_id, "status": status, "next_scan_at": now + timedelta(seconds=due_in_s), **more}

    try:
        await store.ensure_indexes()
        await documents._coll.insert_many([
            document("held", -30, **{SCAN_LEASE: {"token": "t-alive", "until": now + timedelta(seconds=60)}}),
            document("expired", -20, **{SCAN_LEASE: {"token": "t-dead", "until": now - timedelta(seconds=1)}}),
            document("free", -10),
            document("later", 600),
            document("clean", -40, Status.CLEAN),
        ])
        lease = timedelta(seconds=30)
        first, second = await store.lease_pending(now, lease), await store.lease_pending(now, lease)
        assert [first["_id"], second["_id"]] == ["expired", "free"]
        assert first[SCAN_LEASE]["token"] not in ("t-dead", second[SCAN_LEASE]["token"])
        assert await store.lease_pending(now, lease) is None  # "held" is live, "later" not due
        held = await documents._coll.find_one({"_id": "held"})
        assert held[SCAN_LEASE]["token"] == "t-alive"
        assert not any({"$or", "$nor", "$where"} & operators(f) for f in documents.filters)
    finally:
        await db_client.drop_database(name)


async def test_update_and_read_gives_the_document_as_written_or_none_when_its_condition_no_longer_holds(db_client: Any) -> None:
    name = f"ecp_test_update_and_read_{uuid.uuid4().hex[:8]}"
    coll = db_client[name]["leases"]
    try:
        await coll.insert_one({"_id": "a", "owner": None, "attempts": 0, "note": "kept"})
        taken = await mongo.update_and_read(coll, {"_id": "a", "owner": None}, {"$set": {"owner": "me"}, "$inc": {"attempts": 1}},
                                            projection={"note": 0})
        assert taken == {"_id": "a", "owner": "me", "attempts": 1}
        assert await mongo.update_and_read(coll, {"_id": "a", "owner": None}, {"$set": {"owner": "you"}}) is None
        assert (await coll.find_one({"_id": "a"}))["owner"] == "me"
        created = await mongo.update_and_read(coll, {"_id": "b"}, {"$inc": {"attempts": 1}}, upsert=True)
        again = await mongo.update_and_read(coll, {"_id": "b"}, {"$inc": {"attempts": 1}}, upsert=True)
        assert (created, again) == ({"_id": "b", "attempts": 1}, {"_id": "b", "attempts": 2})
    finally:
        await db_client.drop_database(name)


class SlowPulls(RecordedFilters):
    """The collection, with every pull held until the test lets it go."""

    def __init__(self, coll: Any) -> None:
        super().__init__(coll)
        self.pull_started = asyncio.Event()
        self.let_pulls_go = asyncio.Event()

    async def bulk_write(self, requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        if any("$pull" in r._doc for r in requests):
            self.pull_started.set()
            await self.let_pulls_go.wait()
        return await super().bulk_write(requests, *args, **kwargs)


async def test_while_a_pass_still_pulls_the_relay_publishes_other_aggregates_and_never_its_held_ones_twice(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    coll = SlowPulls(db_client[name]["deliveries"])
    published = Published()
    relay = OutboxRelay([coll], published, poll_interval_s=0.05)
    running = asyncio.create_task(relay.run_forever())
    try:
        await coll._coll.insert_one(pending("first"))
        relay.notify()
        await asyncio.wait_for(coll.pull_started.wait(), 10)
        # "first" is still leased by its pull in flight; a new event on it must wait for that pull.
        await coll._coll.update_one({"_id": "first"}, {"$push": {"outbox": {"id": "first-again", "topic": "t", "key": "first", "type": "T", "value": b"{}"}}})
        await coll._coll.insert_one(pending("second"))
        relay.notify()
        for _ in range(200):
            if "second-event" in published.ids:
                break
            await asyncio.sleep(0.02)
        assert published.ids == ["first-event", "second-event"]  # not waiting for the first pull
        coll.let_pulls_go.set()
        for _ in range(200):
            if await coll._coll.count_documents({"outbox_pending": True}) == 0:
                break
            await asyncio.sleep(0.02)
        assert published.ids == ["first-event", "second-event", "first-again"]
    finally:
        coll.let_pulls_go.set()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await db_client.drop_database(name)


async def test_a_relay_pass_of_a_batch_costs_three_database_commands(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    collection = f"outbox_{uuid.uuid4().hex[:8]}"  # the process-wide counter tells collections apart by name
    coll = db_client[name][collection]
    try:
        await coll.insert_many([pending(f"aggregate-{i}") for i in range(5)])
        relay = OutboxRelay([coll], Published())
        before = mongo.command_counts.snapshot()
        assert await relay.relay_once() == 5
        after = mongo.command_counts.snapshot()
        sent = {k: n - before.get(k, 0) for k, n in after.items() if k.endswith(f" {collection}") and n != before.get(k, 0)}
        # The candidates and their events; the five leases; the five pulls, which also clear the flag.
        assert sent == {f"find {collection}": 1, f"update {collection}": 2}
        assert await coll.count_documents({"outbox_pending": True}) == 0
        assert await coll.count_documents({"outbox": []}) == 5
    finally:
        await db_client.drop_database(name)


class ChangedBeforeTheFirstLease(RecordedFilters):
    """The collection, where ``change`` happens to an aggregate after the relay's first read and
    before its first lease (another writer, or another relay, in between)."""

    def __init__(self, coll: Any, doc_id: str, change: dict[str, Any]) -> None:
        super().__init__(coll)
        self.doc_id, self.change = doc_id, change

    async def bulk_write(self, requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        if self.change and any("$set" in r._doc and "outbox_lease" in r._doc["$set"] for r in requests):
            await self._coll.update_one({"_id": self.doc_id}, self.change)
            self.change = {}
        return await super().bulk_write(requests, *args, **kwargs)


def event(doc_id: str, event_id: str) -> dict[str, Any]:
    return {"id": event_id, "topic": "t", "key": doc_id, "type": "T", "value": b"{}"}


async def test_an_event_queued_between_the_claims_read_and_its_lease_is_published_by_the_next_pass(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    coll = ChangedBeforeTheFirstLease(db_client[name]["deliveries"], "busy", {"$push": {"outbox": event("busy", "busy-later")}})
    published = Published()
    relay = OutboxRelay([coll], published)
    try:
        await coll._coll.insert_one(pending("busy"))
        assert await relay.relay_once() == 1
        assert published.ids == ["busy-event"]  # what the claim read, and only that
        busy = await coll._coll.find_one({"_id": "busy"})
        assert busy["outbox_pending"] is True and [e["id"] for e in busy["outbox"]] == ["busy-later"]
        assert await relay.relay_once() == 1
        assert published.ids == ["busy-event", "busy-later"]
        assert await coll._coll.count_documents({"outbox_pending": True}) == 0
    finally:
        await db_client.drop_database(name)


async def test_an_aggregate_another_relay_published_since_the_claims_read_is_not_published_again(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    # Another relay published and pulled "raced"'s event; then a new event arrived on it.
    coll = ChangedBeforeTheFirstLease(db_client[name]["deliveries"], "raced", {"$set": {"outbox": [event("raced", "raced-new")]}})
    published = Published()
    relay = OutboxRelay([coll], published)
    try:
        await coll._coll.insert_many([pending("raced"), pending("calm")])
        assert await relay.relay_once() == 1
        assert published.ids == ["calm-event"]  # never "raced-event" a second time
        assert await relay.relay_once() == 1
        assert published.ids == ["calm-event", "raced-new"]
    finally:
        await db_client.drop_database(name)
