"""Event backbone benchmark (not a test): raw aiokafka hop versus outbox → relay → consumer base.

Against the running `make up` broker and database. For each path it measures:
- throughput: N events written as fast as possible, events/s until the last is consumed;
- latency: events paced at a fixed rate, p50/p95/p99 from "state change written" (outbox) or
  "send called" (raw) to "handler called".
Prints a table and writes bench/results/event_hop.json. Usage:
    python -m bench.event_hop [--events 2000] [--rate 200] [--latency-events 1000] [--idle-aggregates 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.contracts.identity import AccountDeleted
from services.kernel import mongo
from services.kernel.consumer import EventConsumer
from services.kernel.envelope import CloudEvent, event_json, new_event
from services.kernel.kafka import KafkaAuth, KafkaPublisher, KafkaSubscription, TopicSpec, ensure_topics
from services.kernel.logging import configure_logging
from services.kernel.outbox import new_document_with_events, outbox_entry, with_events
from services.kernel.relay import OutboxRelay
from services.kernel.runtime import is_transient
from tests.integration.kafka_tools import delete_topics
from services.kernel.settings import CommonSettings

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(latencies_s: list[float], events: int, elapsed_s: float | None) -> dict[str, float]:
    ms = [v * 1000 for v in latencies_s]
    result = {
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "events": events,
    }
    if elapsed_s is not None:
        result["events_per_s"] = events / elapsed_s
    return result


async def paced(count: int, rate: float, action: Callable[[int], Awaitable[None]]) -> None:
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await action(i)


def deleted_event(key: str) -> CloudEvent[Any]:
    return new_event(AccountDeleted(account_id=key, deleted_at=datetime.now(UTC)), source="/bench", subject=key)


async def raw_hop(settings: CommonSettings, topic: str, count: int, rate: float | None) -> dict[str, float]:
    """aiokafka producer → aiokafka consumer group, nothing else: the floor for any event hop."""
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    auth = KafkaAuth.of(settings).client_options()
    producer = AIOKafkaProducer(**auth, bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=2)
    consumer = AIOKafkaConsumer(
        topic, **auth, bootstrap_servers=settings.kafka_bootstrap, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()

    async def consume() -> None:
        while len(latencies) < count:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for r in records:
                    latencies.append(now - sent[r.value])
            if batches:
                await consumer.commit()
        done.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(1.0)  # let the group settle before timing
    payloads = [event_json(deleted_event(f"k{i % 64}")) for i in range(count)]

    async def send(i: int) -> None:
        sent[payloads[i]] = time.perf_counter()
        await producer.send(topic, payloads[i], key=f"k{i % 64}".encode())

    start = time.perf_counter()
    if rate:
        await paced(count, rate, send)
    else:
        for i in range(count):
            await send(i)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    task.cancel()
    await producer.stop()
    await consumer.stop()
    return summary(latencies, count, None if rate else elapsed)


async def outbox_hop(
    settings: CommonSettings, topic: str, count: int, rate: float | None, idle_aggregates: int = 0
) -> dict[str, float]:
    """A state change with its event written to the aggregate's outbox → relay → EventConsumer handler.

    ``idle_aggregates`` documents with nothing pending sit in the same collection, as a service's
    past aggregates do (the notifier's deliveries): a claim that scans the collection pays for them.
    """
    client = mongo.connect(settings.mongo_url)
    db = client[f"ecp_bench_{uuid.uuid4().hex[:6]}"]
    aggregates = db["aggs"]
    await aggregates.insert_many([new_document_with_events({"_id": f"k{i}", "n": 0}, []) for i in range(64)])
    if idle_aggregates:
        await aggregates.insert_many([new_document_with_events({"_id": f"idle{i}", "n": 0}, []) for i in range(idle_aggregates)])
    publisher = KafkaPublisher(settings.kafka_bootstrap, "bench-outbox", KafkaAuth.of(settings))
    await publisher.start()
    relay = OutboxRelay([aggregates], publisher, poll_interval_s=settings.outbox_poll_interval_s)
    await relay.ensure_indexes()
    written: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def handler(event: CloudEvent[Any]) -> None:
        latencies.append(time.perf_counter() - written[event.id])
        if len(latencies) >= count:
            done.set()

    group = f"bench-outbox-{uuid.uuid4().hex[:6]}"
    subscription = KafkaSubscription(settings.kafka_bootstrap, group, [topic], "bench", KafkaAuth.of(settings))
    await subscription.start()
    consumer = EventConsumer(
        group_id=group, subscription=subscription, handlers={AccountDeleted: handler},
        processed=mongo.MongoProcessedEvents(db), dead_letters=publisher, is_transient=is_transient,
    )
    tasks = [asyncio.create_task(relay.run_forever()), asyncio.create_task(consumer.run_forever())]
    await asyncio.sleep(1.0)

    async def change_state(i: int) -> None:
        key = f"k{i % 64}"
        event = deleted_event(key)
        written[event.id] = time.perf_counter()
        await aggregates.update_one({"_id": key}, with_events({"$inc": {"n": 1}}, [outbox_entry(event, topic)]))
        relay.notify()

    start = time.perf_counter()
    if rate:
        await paced(count, rate, change_state)
    else:
        # As concurrent request handlers would: many writes in flight at once.
        sem = asyncio.Semaphore(32)

        async def limited(i: int) -> None:
            async with sem:
                await change_state(i)

        await asyncio.gather(*(limited(i) for i in range(count)))
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - start
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await subscription.stop()
    await publisher.stop()
    await client.drop_database(db.name)
    client.close()
    return summary(latencies, count, None if rate else elapsed)


CREATED_TOPICS: list[str] = []


async def fresh_topic(settings: CommonSettings) -> str:
    """Each run reads only its own events; its topics are deleted at the end (left behind, every
    run's partitions would lengthen the broker's recovery after a crash)."""
    topic = f"bench.hop.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings.kafka_bootstrap, [TopicSpec(topic, 3, 1), TopicSpec(topic + ".dlq", 3, 1)], KafkaAuth.of(settings))
    CREATED_TOPICS.extend([topic, topic + ".dlq"])
    return topic


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000, help="events in the throughput runs")
    parser.add_argument("--latency-events", type=int, default=1000, help="events in the paced latency runs")
    parser.add_argument("--rate", type=float, default=200.0, help="events/s in the paced latency runs")
    parser.add_argument("--idle-aggregates", type=int, default=0, help="aggregates with nothing pending beside the 64 written to")
    args = parser.parse_args()
    settings = CommonSettings()
    configure_logging("bench", "WARNING")
    try:
        results = await measure(settings, args)
    finally:
        if CREATED_TOPICS:
            await delete_topics(*CREATED_TOPICS)
    report(args, results)


async def measure(settings: CommonSettings, args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    return {
        "raw aiokafka hop": {
            "throughput": await raw_hop(settings, await fresh_topic(settings), args.events, None),
            "latency": await raw_hop(settings, await fresh_topic(settings), args.latency_events, args.rate),
        },
        "outbox → relay → consumer": {
            "throughput": await outbox_hop(settings, await fresh_topic(settings), args.events, None, args.idle_aggregates),
            "latency": await outbox_hop(settings, await fresh_topic(settings), args.latency_events, args.rate, args.idle_aggregates),
        },
    }


def report(args: argparse.Namespace, results: dict[str, dict[str, dict[str, float]]]) -> None:
    raw, outbox = results["raw aiokafka hop"], results["outbox → relay → consumer"]
    ratios = {
        "throughput_ratio": outbox["throughput"]["events_per_s"] / raw["throughput"]["events_per_s"],
        "p50_ratio": outbox["latency"]["p50_ms"] / raw["latency"]["p50_ms"],
        "p99_ratio": outbox["latency"]["p99_ms"] / raw["latency"]["p99_ms"],
    }
    header = f"| path | events/s (burst of {args.events}) | p50 ms | p95 ms | p99 ms (paced {args.rate:.0f}/s, {args.latency_events} events) |"
    print(header)
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        lat = r["latency"]
        print(f"| {name} | {r['throughput']['events_per_s']:.0f} | {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} | {lat['p99_ms']:.1f} |")
    print(
        f"\noutbox/raw: throughput ×{ratios['throughput_ratio']:.2f}, p50 ×{ratios['p50_ratio']:.1f}, "
        f"p99 ×{ratios['p99_ratio']:.1f}"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "event_hop.json"
    out.write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2, ensure_ascii=False))
    print(f"written {out}")


if __name__ == "__main__":
    asyncio.run(main())
