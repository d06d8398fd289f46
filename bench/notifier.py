"""Notifier benchmark (not a test): emails/s through the running notifier versus raw aiosmtplib
sends to the same mail catcher, in one run; plus the crash window's length.

Against the running `make up` (Kafka, database, Mailpit, the notifier service):
- notifier: N ActivationLinkIssued events produced to identity.mail.v1 at once; emails/s from
  the first produce to the last delivery recorded ``sent`` (consume, dedup, claim, render, SMTP,
  record + outbox event);
- raw: the same N emails (same size, rendered by the same templates) sent over one aiosmtplib
  connection, one after the other;
- window: in a throwaway database, the latency of the write that records ``sent`` (the only
  moment a kill -9 can cause a duplicate) against the whole per-email cycle.

Usage: python -m bench.notifier [--emails 300]
Cleans up after itself: the bench's deliveries, processed ids and Mailpit messages.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiosmtplib
import httpx
from aiokafka import AIOKafkaProducer

from schemas.contracts.identity import ActivationLinkIssued
from services.kernel import mongo
from services.kernel.envelope import event_json, new_event
from services.kernel.kafka import KafkaAuth
from services.kernel.logging import configure_logging
from services.notifier import domain
from services.notifier.render import Renderer, build_message
from services.notifier.settings import NotifierSettings
from services.notifier.store import NotifierStore

MAILPIT = "http://127.0.0.1:8025/api/v1"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench_events(run: str, count: int) -> list:
    now = datetime.now(UTC)
    return [
        new_event(
            ActivationLinkIssued(
                account_id=f"bench-{run}-{i}", email=f"bench.{run}.{i}@example.org", display_name=f"Banc d'essai {i}",
                link=f"http://127.0.0.1:8080/activation?jeton=bench{run}{i}", expires_at=now + timedelta(hours=48),
            ),
            source="/bench/notifier", subject=f"bench-{run}-{i}",
        )
        for i in range(count)
    ]


async def through_notifier(settings: NotifierSettings, events: list, db) -> float:
    # By _id (the unique delivery key, computable here): a scan of the whole collection on every
    # poll would load the database server and slow the very thing being measured.
    ids = [domain.delivery_id(e.id, e.data.email) for e in events]
    producer = AIOKafkaProducer(**KafkaAuth.of(settings).client_options(), bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        start = time.perf_counter()
        acks = [await producer.send(ActivationLinkIssued.topic, event_json(e), key=e.subject.encode()) for e in events]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    while await db.deliveries.count_documents({"_id": {"$in": ids}, "status": "sent"}) < len(ids):
        if time.perf_counter() - start > 600:
            raise TimeoutError("the notifier did not deliver the batch within 10 minutes")
        await asyncio.sleep(0.2)
    return time.perf_counter() - start


async def raw_smtp(settings: NotifierSettings, events: list) -> tuple[float, list[float]]:
    renderer = Renderer(settings)
    mail = domain.MAILS[0]
    messages = [
        (e.data.email, build_message(
            renderer.render(mail, e.data.model_dump(), e.time), sender=settings.sender, recipient=e.data.email,
            display_name=e.data.display_name, event_id=f"raw-{e.id}", date=e.time,
        ))
        for e in events
    ]
    client = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port, timeout=10)
    per_email: list[float] = []
    start = time.perf_counter()
    await client.connect()
    try:
        for recipient, message in messages:
            t = time.perf_counter()
            await client.send_message(message, recipients=[recipient])
            per_email.append(time.perf_counter() - t)
    finally:
        await client.quit()
    return time.perf_counter() - start, per_email


async def window(settings: NotifierSettings, count: int) -> dict[str, float]:
    """Claim ("sending") and finish ("sent" + outbox event) latencies on a throwaway database."""
    client = mongo.connect(settings.mongo_url)
    name = f"ecp_bench_notifier_{uuid.uuid4().hex[:8]}"
    store = NotifierStore(client[name])
    claims: list[float] = []
    finishes: list[float] = []
    try:
        await store.ensure_indexes()
        for i in range(count):
            did = f"evt-{i}.abc"
            t = time.perf_counter()
            await store.claim({"_id": did, "account_id": f"a{i}", "subject": "s"}, owner="bench", now=datetime.now(UTC), lease=timedelta(seconds=15))
            claims.append(time.perf_counter() - t)
            t = time.perf_counter()
            await store.finish(
                did, status=domain.DeliveryStatus.SENT, fields={"sent_at": datetime.now(UTC)},
                events=[{"id": f"e{i}", "topic": "notifier.delivery.v1", "key": f"a{i}", "type": "NotificationSent", "value": b"{}" * 200}],
            )
            finishes.append(time.perf_counter() - t)
    finally:
        await client.drop_database(name)
        client.close()
    return {
        "claim_p50_ms": percentile(claims, 50) * 1000,
        "finish_p50_ms": percentile(finishes, 50) * 1000,
        "finish_p99_ms": percentile(finishes, 99) * 1000,
    }


async def cleanup(settings: NotifierSettings, run: str, events: list) -> None:
    client = mongo.connect(settings.mongo_url)
    try:
        db = client[settings.database_name]
        ids = [e.id for e in events]
        await db.deliveries.delete_many({"event_id": {"$in": ids}})
        await db.recipients.delete_many({"_id": {"$regex": f"^bench-{run}-"}})
    finally:
        client.close()
    async with httpx.AsyncClient(timeout=30) as http:
        await http.request("DELETE", f"{MAILPIT}/search", params={"query": f"to:bench.{run}."})


async def main(count: int) -> None:
    configure_logging("bench", "WARNING")
    settings = NotifierSettings()
    run = uuid.uuid4().hex[:8]
    notifier_events = bench_events(run, count)
    raw_events = bench_events(run, count)
    client = mongo.connect(settings.mongo_url)
    try:
        notifier_s = await through_notifier(settings, notifier_events, client[settings.database_name])
    finally:
        client.close()
    raw_s, raw_each = await raw_smtp(settings, raw_events)
    w = await window(settings, min(count, 200))
    await cleanup(settings, run, notifier_events + raw_events)

    notifier_rate, raw_rate = count / notifier_s, count / raw_s
    per_email_ms = 1000 / notifier_rate
    print(f"\n{count} emails, one run, same Mailpit\n")
    print(f"{'path':<38}{'emails/s':>10}{'ms/email':>10}")
    print(f"{'raw aiosmtplib (one connection)':<38}{raw_rate:>10.1f}{1000 / raw_rate:>10.2f}")
    print(f"{'notifier (Kafka → dedup → SMTP → log)':<38}{notifier_rate:>10.1f}{per_email_ms:>10.2f}")
    print(f"\nratio notifier / raw: {notifier_rate / raw_rate:.2f}  (raw SMTP p50 {statistics.median(raw_each) * 1000:.2f} ms)")
    print(
        f"crash window (SMTP accepted → 'sent' recorded): p50 {w['finish_p50_ms']:.2f} ms, p99 {w['finish_p99_ms']:.2f} ms "
        f"= {w['finish_p50_ms'] / per_email_ms:.0%} of the notifier's per-email time "
        f"(claim before sending: p50 {w['claim_p50_ms']:.2f} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=300)
    asyncio.run(main(parser.parse_args().emails))
