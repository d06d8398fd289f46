"""Everything that touches the MongoDB driver (motor): connection, ping, processed-event ids."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ReturnDocument, monitoring
from pymongo.errors import AutoReconnect, BulkWriteError, ConnectionFailure, DuplicateKeyError, NetworkTimeout, ServerSelectionTimeoutError

from services.kernel import telemetry

Database = AsyncIOMotorDatabase

PROCESSED_COLLECTION = "processed_events"


class CommandCounts(monitoring.CommandListener):
    """How many commands this process sent to the database, and how long they took (as seen by
    the driver), by command name and collection.

    The journey benchmark reads them before and after a round (``/internal/db-commands``) to
    tell which service spends how many round trips per journey, on what, and which are slow."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # motor calls listeners from its worker threads
        self._counts: Counter[tuple[str, str]] = Counter()
        self._micros: Counter[tuple[str, str]] = Counter()
        self._pending: dict[int, tuple[str, str]] = {}  # request id (unique in the process) → key

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        key = (event.command_name, _collection(event))
        with self._lock:
            self._counts[key] += 1
            self._pending[event.request_id] = key

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._done(event)

    def _done(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        with self._lock:
            key = self._pending.pop(event.request_id, None)
            if key is not None:
                self._micros[key] += event.duration_micros

    def snapshot(self) -> dict[str, int]:
        """``{"find accounts": 12, "ping": 3, ...}``, since the process started."""
        with self._lock:
            return {f"{name} {collection}".strip(): n for (name, collection), n in sorted(self._counts.items())}

    def durations_ms(self) -> dict[str, float]:
        """``{"find accounts": 14.2, ...}``: milliseconds spent waiting for each, since the start."""
        with self._lock:
            return {f"{name} {collection}".strip(): round(us / 1000, 3) for (name, collection), us in sorted(self._micros.items())}


def _collection(event: monitoring.CommandStartedEvent) -> str:
    target = event.command.get(event.command_name)
    # getMore names its cursor's collection apart; admin commands (ping, endSessions) have none.
    return target if isinstance(target, str) else str(event.command.get("collection", ""))


class CommandSpans(monitoring.CommandListener):
    """A client span per command sent while a request or an event is traced (motor copies the
    caller's context into its worker thread, so the span has the right parent). Named by command
    and collection; never the command's content, nor a failure's message (a duplicate key names
    the value)."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, object], telemetry.Span] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = _collection(event)
        span = telemetry.start_client_span(
            f"{event.command_name} {collection}".strip(),
            {"db.system.name": "mongodb", "db.operation.name": event.command_name,
             "db.collection.name": collection, "db.namespace": event.database_name},
        )
        if span is not None:
            self._open[(event.request_id, event.connection_id)] = span

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self._open.pop((event.request_id, event.connection_id), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self._open.pop((event.request_id, event.connection_id), None)
        if span is not None:
            telemetry.mark_failed(span, str(event.failure.get("codeName", "failed")))
            span.end()


# One per process: every client this process opens counts into it and traces through it.
command_counts = CommandCounts()
command_spans = CommandSpans()


def connect(url: str, timeout_ms: int = 2000) -> AsyncIOMotorClient:
    """Creates a client; motor connects lazily, on the first operation."""
    return AsyncIOMotorClient(
        url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
        event_listeners=[command_counts, command_spans],
    )


def as_utc(moment: datetime) -> datetime:
    """A stored datetime, comparable with ``datetime.now(UTC)`` whatever client read it: one
    that is not tz-aware gives naive UTC datetimes back."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def ping(db: Database, timeout_s: float = 2.0) -> None:
    await asyncio.wait_for(db.command("ping"), timeout_s)


async def update_and_read(
    collection: AsyncIOMotorCollection,
    filter_: Mapping[str, Any],
    update: Mapping[str, Any],
    *,
    projection: Mapping[str, Any] | None = None,
    upsert: bool = False,
) -> dict[str, Any] | None:
    """Applies ``update`` to the document whose ``_id`` ``filter_`` names if it still matches
    ``filter_`` (or inserts it, with ``upsert``), then reads it back; None when it did not match.

    Used instead of ``find_one_and_update`` on collections that grow: the local database server
    (SecantusDB) re-applies a findAndModify's write with ``{_id, $and: [query]}``, a filter its
    planner answers by reading the whole collection (40 ms of its CPU at 5,000 documents, and
    growing), where an update and a read on ``_id`` cost under a millisecond each. The read may
    already see a later write than this one: callers use it for fields they own (a lease they
    set, the values they wrote) or that never change."""
    result = await collection.update_one(filter_, update, upsert=upsert)
    if not result.matched_count and result.upserted_id is None:
        return None
    document_id = result.upserted_id if result.upserted_id is not None else filter_["_id"]
    return await collection.find_one({"_id": document_id}, projection)


async def next_number(counters: AsyncIOMotorCollection, name: str) -> int:
    """The next number of a named counter (one per year for short references). One upserting
    find-and-modify on one document: atomic across processes, a number is never given twice
    (the server retries the upsert itself when two first numbers race on the same name). Not
    ``update_and_read``: the number read must be the one this increment made; the counters
    collection holds a few documents, so the local server's collection read costs nothing."""
    counter = await counters.find_one_and_update(
        {"_id": name}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    return int(counter["n"])


# The database is unreachable or too slow right now: worth retrying, and a 503 for a request.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError)


def is_transient_db_error(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def is_duplicate_key(exc: BaseException) -> bool:
    return isinstance(exc, DuplicateKeyError)


class MongoProcessedEvents:
    """Event ids each consumer group has fully handled, one small document per (group, id)."""

    def __init__(self, db: Database) -> None:
        self._coll = db[PROCESSED_COLLECTION]

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        keys = [f"{group}:{i}" for i in event_ids]
        found = [d["_id"] async for d in self._coll.find({"_id": {"$in": keys}}, {"_id": 1})]
        return {key.split(":", 1)[1] for key in found}

    async def remember(self, group: str, event_ids: Sequence[str]) -> None:
        now = datetime.now(UTC)
        try:
            await self._coll.insert_many([{"_id": f"{group}:{i}", "at": now} for i in event_ids], ordered=False)
        except BulkWriteError as exc:
            # Already remembered (a redelivery raced us) is fine; anything else is not.
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
