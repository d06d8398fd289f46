"""Outbox relay: publishes the events pending in aggregate documents, in order, then pulls them.

Claiming an aggregate takes a lease on its document, so two relays never publish the same
aggregate's events at once. A relay killed after publishing but before pulling leaves the events
in place; they are published again after the lease expires, and consumers drop the duplicate by
event id. Nothing is ever lost and, per aggregate, nothing is reordered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo import UpdateOne

from services.kernel import telemetry
from services.kernel.envelope import CONTENT_TYPE
from services.kernel.kafka import OutgoingMessage
from services.kernel.logging import get_logger
from services.kernel.mongo import as_utc
from services.kernel.outbox import LEASE_FIELD, OUTBOX_FIELD, PENDING_FIELD

log = get_logger(__name__)


class Publisher(Protocol):
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None: ...


@dataclass
class RelayStats:
    published: int = 0
    failures: int = 0


class OutboxRelay:
    def __init__(
        self,
        collections: Sequence[Any],
        publisher: Publisher,
        *,
        owner: str | None = None,
        lease_s: float = 30.0,
        batch_size: int = 100,
        poll_interval_s: float = 0.5,
    ) -> None:
        self._collections = list(collections)
        self._publisher = publisher
        self.owner = owner or f"relay-{uuid.uuid4()}"
        self._lease = timedelta(seconds=lease_s)
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        # The pull still running for a collection (by its position), from the last pass.
        self._pulls: dict[int, asyncio.Task[None]] = {}
        self.stats = RelayStats()

    async def ensure_indexes(self) -> None:
        for coll in self._collections:
            await coll.create_index(PENDING_FIELD, sparse=True)
            await coll.create_index(f"{LEASE_FIELD}.token", sparse=True)

    async def backlog(self) -> list[tuple[str, int, float]]:
        """Per collection: (name, events waiting, age in seconds of the oldest), from the
        ``outbox_pending`` index; counts stop at a few batches (enough to say it is backing up)."""
        now = datetime.now(UTC)
        result = []
        for coll in self._collections:
            waiting = [
                as_utc(e["created_at"])
                async for d in coll.find({PENDING_FIELD: True}, {f"{OUTBOX_FIELD}.created_at": 1}).limit(self._batch_size * 10)
                for e in d.get(OUTBOX_FIELD, [])
                if "created_at" in e
            ]
            oldest = (now - min(waiting)).total_seconds() if waiting else 0.0
            result.append((coll.name, len(waiting), max(0.0, oldest)))
        return result

    def notify(self) -> None:
        """Called after a local write that queued events: relay now instead of at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        backoff = self._poll_interval_s
        try:
            while True:
                # Cleared before the pass, so a write committed during it wakes the next one.
                self._wake.clear()
                try:
                    # Each pass's pulls run on while the next pass claims and publishes: events
                    # written meanwhile to other aggregates do not wait for them.
                    published = await self._relay_pass()
                    self._reap_finished_pulls()
                    backoff = self._poll_interval_s
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.stats.failures += 1
                    telemetry.OUTBOX_RELAY_FAILURES.inc()
                    log.warning("outbox relay pass failed; will retry", exc_info=True, retry_in_s=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                if published == 0:
                    await self._idle()
        finally:
            for pull in self._pulls.values():
                pull.cancel()  # its leases expire; the events are published again, consumers drop them

    async def _idle(self) -> None:
        """Until a local write, a pull in flight ends (what it held may have more events) or the poll interval."""
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({woken, *self._pulls.values()}, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()

    def _reap_finished_pulls(self) -> None:
        """Forgets the pulls that ended; one that failed raises here, failing the pass."""
        for index, pull in list(self._pulls.items()):
            if pull.done():
                del self._pulls[index]
                pull.result()

    async def relay_once(self) -> int:
        """One pass over every collection, pulls included; returns how many events were published."""
        published = await self._relay_pass()
        await self._finish_pulls()
        return published

    async def _relay_pass(self) -> int:
        """Claims and publishes; each collection's pull is left running (one at a time per collection)."""
        total = 0
        for index, coll in enumerate(self._collections):
            claimed = await self._claim(coll)
            if not claimed:
                continue
            entries = [e for doc in claimed for e in doc.get(OUTBOX_FIELD, [])]
            spans = [self._producer_span(e) for e in entries]
            try:
                messages = [self._message(e, span.traceparent) for e, span in zip(entries, spans)]
                if messages:
                    await self._publisher.publish(messages)
            except BaseException as exc:
                for span in spans:
                    span.end(exc)
                await self._release(coll, claimed)
                raise
            for entry, span in zip(entries, spans):
                span.end()
                telemetry.OUTBOX_PUBLISHED.inc(topic=entry["topic"])
            previous = self._pulls.pop(index, None)
            if previous is not None:
                await previous
            self._pulls[index] = asyncio.create_task(self._pull_published(coll, claimed))
            total += len(messages)
        self.stats.published += total
        return total

    async def _finish_pulls(self) -> None:
        pulls, self._pulls = self._pulls, {}
        for pull in pulls.values():
            await pull

    async def _claim(self, coll: Any) -> list[dict[str, Any]]:
        """Leases up to a batch of aggregates with pending events: two round trips as a rule.

        The candidates and their events are read from the ``outbox_pending`` index, then leased
        in one bulk write, each with its own condition: still no lease (or still the expired
        one that was read), and still the same first event. Events are only ever pulled from the
        front of an outbox, so an aggregate leased under that condition still holds every event
        read (perhaps more behind them, for the next pass). When every lease is taken, what was
        read is what was claimed; otherwise (another relay, a pull in between) the claimed
        aggregates are read back by the lease's token.

        No ``$or``: the local database server scans the whole collection for one (on 3,800
        deliveries, 230 ms for the find and 810 ms for the update, while every other write
        waited).
        """
        now = datetime.now(UTC)
        # A few more than a batch: some may be leased by another relay right now.
        pending = coll.find({PENDING_FIELD: True}, {LEASE_FIELD: 1, OUTBOX_FIELD: 1}).limit(self._batch_size * 4)
        candidates = [
            d async for d in pending if LEASE_FIELD not in d or as_utc(d[LEASE_FIELD]["until"]) < now
        ][: self._batch_size]
        if not candidates:
            return []
        # The token tells this pass's claims apart from any other relay's (or an earlier pass's).
        lease = {"owner": self.owner, "token": uuid.uuid4().hex, "until": now + self._lease}
        leases = []
        for doc in candidates:
            seen = doc.get(OUTBOX_FIELD) or []
            unchanged: dict[str, Any] = {f"{OUTBOX_FIELD}.0.id": seen[0]["id"]} if seen else {OUTBOX_FIELD: {"$size": 0}}
            still_free = (
                {LEASE_FIELD: {"$exists": False}} if LEASE_FIELD not in doc else {f"{LEASE_FIELD}.token": doc[LEASE_FIELD]["token"]}
            )
            leases.append(UpdateOne({"_id": doc["_id"], PENDING_FIELD: True, **still_free, **unchanged}, {"$set": {LEASE_FIELD: lease}}))
        result = await coll.bulk_write(leases, ordered=False)
        if result.modified_count == len(candidates):
            return [{"_id": d["_id"], OUTBOX_FIELD: d.get(OUTBOX_FIELD) or [], LEASE_FIELD: lease} for d in candidates]
        return [d async for d in coll.find({f"{LEASE_FIELD}.token": lease["token"]}, {OUTBOX_FIELD: 1, LEASE_FIELD: 1})]

    @staticmethod
    def _producer_span(entry: dict[str, Any]) -> telemetry.ProducerSpan:
        return telemetry.start_producer_span(
            topic=entry["topic"],
            event_id=entry["id"],
            event_type=entry["type"],
            traceparent=entry.get("traceparent"),
            queued_at=entry.get("created_at"),
        )

    @staticmethod
    def _message(entry: dict[str, Any], traceparent: str | None = None) -> OutgoingMessage:
        headers: tuple[tuple[str, bytes], ...] = (
            ("content-type", CONTENT_TYPE.encode()),
            ("ce_id", entry["id"].encode()),
            ("ce_type", entry["type"].encode()),
        )
        if traceparent:
            # The W3C header Kafka tooling and instrumented consumers read: the publication's span.
            headers += (("traceparent", traceparent.encode()),)
        return OutgoingMessage(topic=entry["topic"], key=entry["key"], value=bytes(entry["value"]), headers=headers)

    async def _pull_published(self, coll: Any, claimed: list[dict[str, Any]]) -> None:
        """Drops the published events and the lease in one bulk write (one round trip).

        Per aggregate, two conditional updates in order: while the lease holds, an outbox of
        exactly the published length holds nothing else (events are only added behind them), so
        it is emptied and the aggregate leaves the pending index in the same write; otherwise
        (events queued meanwhile) the published ones are pulled and it stays pending. The first
        update drops the lease, so at most one of the two applies."""
        token = claimed[0][LEASE_FIELD]["token"]
        pulls = []
        for doc in claimed:
            published = [e["id"] for e in doc.get(OUTBOX_FIELD, [])]
            held = {"_id": doc["_id"], f"{LEASE_FIELD}.token": token}
            pulls.append(UpdateOne({**held, OUTBOX_FIELD: {"$size": len(published)}},
                                   {"$set": {OUTBOX_FIELD: []}, "$unset": {LEASE_FIELD: "", PENDING_FIELD: ""}}))
            pulls.append(UpdateOne(held, {"$pull": {OUTBOX_FIELD: {"id": {"$in": published}}}, "$unset": {LEASE_FIELD: ""}}))
        result = await coll.bulk_write(pulls, ordered=True)
        if result.matched_count < len(claimed):
            log.warning(
                "outbox lease lost before pull; some events may be published twice",
                lost=len(claimed) - result.matched_count,
            )

    async def _release(self, coll: Any, claimed: list[dict[str, Any]]) -> None:
        try:
            await coll.update_many({f"{LEASE_FIELD}.token": claimed[0][LEASE_FIELD]["token"]}, {"$unset": {LEASE_FIELD: ""}})
        except Exception:
            log.warning("could not release outbox leases; they will expire", aggregates=len(claimed))


async def _run_standalone(argv: Sequence[str] | None = None) -> None:
    """A relay as its own process, for scaling it apart from a service's API."""
    import argparse

    from services.kernel import mongo
    from services.kernel.kafka import KafkaAuth, KafkaPublisher
    from services.kernel.logging import configure_logging
    from services.kernel.settings import CommonSettings

    parser = argparse.ArgumentParser(prog="python -m services.kernel.relay")
    parser.add_argument("--database", required=True)
    parser.add_argument("--collections", required=True, help="comma-separated aggregate collections")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    settings = CommonSettings(service_name="relay")
    configure_logging("outbox-relay", settings.log_level)
    client = mongo.connect(settings.mongo_url, settings.mongo_timeout_ms)
    publisher = KafkaPublisher(settings.kafka_bootstrap, client_id="outbox-relay", auth=KafkaAuth.of(settings))
    await publisher.start()
    relay = OutboxRelay(
        [client[args.database][name] for name in args.collections.split(",")],
        publisher,
        lease_s=settings.outbox_lease_s,
        batch_size=args.batch_size or settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
    )
    try:
        await relay.ensure_indexes()
        await relay.run_forever()
    finally:
        await publisher.stop()
        client.close()


if __name__ == "__main__":
    asyncio.run(_run_standalone())
