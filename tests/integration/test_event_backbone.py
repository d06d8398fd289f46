"""Outbox → relay → Kafka → consumer against the real broker and database server.

Effects must happen exactly once and in order per aggregate even when the relay or the consumer
is killed with SIGKILL at the worst moment; poison messages go to the dead-letter topic while
the partition keeps flowing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.contracts.identity import AccountDeleted
from services.kernel import mongo
from services.kernel.consumer import EventConsumer
from services.kernel.envelope import CloudEvent, event_json, new_event
from services.kernel.kafka import KafkaPublisher, KafkaSubscription, OutgoingMessage
from services.kernel.outbox import PENDING_FIELD, new_document_with_events, outbox_entry
from services.kernel.relay import OutboxRelay
from services.kernel.runtime import is_transient
from tests.integration.conftest import Processes
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR, create_test_topic, delete_topics, read_all

FAST_LEASE = {"ECP_OUTBOX_LEASE_S": "3", "ECP_OUTBOX_POLL_INTERVAL_S": "0.1"}


async def queue_events(db: Any, topic: str, aggregates: int, per_aggregate: int) -> dict[str, list[str]]:
    """Writes aggregates whose outbox holds events; returns the expected event ids per key, in order."""
    expected: dict[str, list[str]] = {}
    docs = []
    for a in range(aggregates):
        key = f"agg-{a:03d}"
        events = [
            new_event(AccountDeleted(account_id=key, deleted_at=datetime.now(UTC)), source="/tests", subject=key)
            for _ in range(per_aggregate)
        ]
        expected[key] = [e.id for e in events]
        docs.append(new_document_with_events({"_id": key}, [outbox_entry(e, topic) for e in events]))
    await db["aggs"].insert_many(docs)
    await db["effects"].insert_many([{"_id": key, "count": 0, "order": []} for key in expected])
    return expected


async def wait_until(condition: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(interval_s)


async def pending(db: Any) -> int:
    return await db["aggs"].count_documents({PENDING_FIELD: True})


async def effects_total(db: Any) -> int:
    return sum([d["count"] async for d in db["effects"].find({}, {"count": 1})])


def first_occurrence_order(records: list[Any]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for r in records:
        event_id = r.headers["ce_id"].decode()
        if event_id not in order[r.key]:
            order[r.key].append(event_id)
    return dict(order)


async def assert_effects_exactly_once_in_order(db: Any, expected: dict[str, list[str]]) -> None:
    async for doc in db["effects"].find({}):
        assert doc["count"] == len(expected[doc["_id"]]), doc["_id"]
        assert doc["order"] == expected[doc["_id"]], doc["_id"]


async def test_events_survive_a_relay_killed_mid_run_and_take_effect_exactly_once_in_order(
    db: Any, processes: Processes, tmp_path: Path
) -> None:
    topic = await create_test_topic("relay-kill")
    try:
        expected = await queue_events(db, topic, aggregates=60, per_aggregate=10)
        relay_args = ("-m", "services.kernel.relay", "--database", db.name, "--collections", "aggs")
        first = processes.start(*relay_args, "--batch-size", "1", env=FAST_LEASE)
        await wait_until(lambda: _fewer_pending(db, 55), 60, "the first relay to start publishing", 0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        left = await pending(db)
        assert left > 0, "the relay finished before it could be killed; the test proves nothing"

        processes.start(*relay_args, env=FAST_LEASE)
        await wait_until(lambda: _fewer_pending(db, 1), 60, "the restarted relay to drain the outbox")

        records = await read_all(topic)
        ids = [r.headers["ce_id"].decode() for r in records]
        assert set(ids) == {i for chain in expected.values() for i in chain}, "an event was lost"
        assert first_occurrence_order(records) == expected, "an aggregate's events were reordered"

        processes.start(
            "tests/integration/counting_consumer.py", "--topic", topic, "--group", "g-relay-kill", "--database", db.name
        )
        await wait_until(lambda: _effects_reach(db, 600), 60, "every effect")
        await asyncio.sleep(1.0)  # let any duplicate arrive: it must change nothing
        await assert_effects_exactly_once_in_order(db, expected)
        print(f"relay killed with {left} aggregates pending; {len(ids) - len(set(ids))} duplicates on the topic")
    finally:
        await delete_topics(topic, topic + ".dlq")


async def test_a_consumer_killed_after_its_effect_but_before_committing_changes_nothing_on_redelivery(
    db: Any, processes: Processes, tmp_path: Path
) -> None:
    topic = await create_test_topic("consumer-kill")
    try:
        expected = await queue_events(db, topic, aggregates=20, per_aggregate=5)
        publisher = KafkaPublisher(BOOTSTRAP, "test-relay", OPERATOR)
        await publisher.start()
        try:
            relay = OutboxRelay([db["aggs"]], publisher)
            while await relay.relay_once():
                pass
        finally:
            await publisher.stop()
        victim = expected["agg-007"][2]
        consumer_args = ("tests/integration/counting_consumer.py", "--topic", topic, "--group", "g-kill", "--database", db.name)
        crashing = processes.start(*consumer_args, "--crash-on", victim, "--crash-marker", str(tmp_path / "crashed"))
        assert await asyncio.to_thread(crashing.wait, 60) == -signal.SIGKILL
        assert await db["invocations"].count_documents({"event_id": victim}) == 1
        assert victim in (await db["effects"].find_one({"_id": "agg-007"}))["order"]

        processes.start(*consumer_args)
        await wait_until(lambda: _effects_reach(db, 100), 60, "every effect after the restart")
        await wait_until(
            lambda: _invocations_of(db, victim, 2), 30, "the uncommitted event to be delivered again"
        )
        await asyncio.sleep(1.0)
        await assert_effects_exactly_once_in_order(db, expected)
    finally:
        await delete_topics(topic, topic + ".dlq")


async def test_poison_messages_go_to_the_dead_letter_topic_while_later_messages_are_processed(db: Any) -> None:
    topic = await create_test_topic("poison")
    publisher = KafkaPublisher(BOOTSTRAP, "test-poison", OPERATOR)
    await publisher.start()
    subscription = KafkaSubscription(BOOTSTRAP, "g-poison", [topic], "test-poison", OPERATOR)
    try:
        good = [
            new_event(AccountDeleted(account_id=f"ok-{i}", deleted_at=datetime.now(UTC)), source="/tests", subject="k1")
            for i in range(3)
        ]
        poison = new_event(AccountDeleted(account_id="poison", deleted_at=datetime.now(UTC)), source="/tests", subject="k1")
        values = [event_json(good[0]), b"{not an event", event_json(poison), event_json(good[1]), event_json(good[2])]
        # One key, so one partition: the poison sits between good messages.
        await publisher.publish([OutgoingMessage(topic, "k1", v) for v in values])

        handled: list[str] = []

        async def handler(event: CloudEvent[Any]) -> None:
            if event.data.account_id == "poison":
                raise ValueError("données incohérentes")
            handled.append(event.data.account_id)

        await subscription.start()
        consumer = EventConsumer(
            group_id="g-poison",
            subscription=subscription,
            handlers={AccountDeleted: handler},
            processed=mongo.MongoProcessedEvents(db),
            dead_letters=publisher,
            is_transient=is_transient,
            backoff_initial_s=0.01,
        )
        deadline = time.monotonic() + 30
        while len(handled) < 3 and time.monotonic() < deadline:
            await consumer.consume_once()
        assert handled == ["ok-0", "ok-1", "ok-2"]

        dead = await read_all(topic + ".dlq")
        assert [d.value for d in dead] == [b"{not an event", event_json(poison)]
        assert all(d.headers["dlq.consumer_group"] == b"g-poison" for d in dead)
        assert b"malformed event" in dead[0].headers["dlq.error"]
        assert b"ValueError" in dead[1].headers["dlq.error"]
        assert dead[1].headers["dlq.original_topic"] == topic.encode()
    finally:
        await subscription.stop()
        await publisher.stop()
        await delete_topics(topic, topic + ".dlq")


async def test_two_relays_running_at_once_never_publish_an_event_twice(db: Any, processes: Processes) -> None:
    topic = await create_test_topic("two-relays")
    try:
        expected = await queue_events(db, topic, aggregates=50, per_aggregate=10)
        relay_args = ("-m", "services.kernel.relay", "--database", db.name, "--collections", "aggs", "--batch-size", "5")
        processes.start(*relay_args)
        processes.start(*relay_args)
        await wait_until(lambda: _fewer_pending(db, 1), 60, "both relays to drain the outbox")
        records = await read_all(topic)
        ids = [r.headers["ce_id"].decode() for r in records]
        assert len(ids) == len(set(ids)) == 500
        assert first_occurrence_order(records) == expected
    finally:
        await delete_topics(topic, topic + ".dlq")


async def _fewer_pending(db: Any, limit: int) -> bool:
    return await pending(db) < limit


async def _effects_reach(db: Any, total: int) -> bool:
    return await effects_total(db) >= total


async def _invocations_of(db: Any, event_id: str, times: int) -> bool:
    return await db["invocations"].count_documents({"event_id": event_id}) >= times
