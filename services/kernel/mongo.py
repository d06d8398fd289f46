"""Everything that touches the MongoDB driver (motor): connection, ping, processed-event ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, DuplicateKeyError, NetworkTimeout, ServerSelectionTimeoutError

Database = AsyncIOMotorDatabase

PROCESSED_COLLECTION = "processed_events"


def connect(url: str, timeout_ms: int = 2000) -> AsyncIOMotorClient:
    """Creates a client; motor connects lazily, on the first operation."""
    return AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)


async def ping(db: Database, timeout_s: float = 2.0) -> None:
    await asyncio.wait_for(db.command("ping"), timeout_s)


def is_transient_db_error(exc: BaseException) -> bool:
    return isinstance(exc, AutoReconnect | ConnectionFailure | NetworkTimeout | ServerSelectionTimeoutError)


def is_duplicate_key(exc: BaseException) -> bool:
    return isinstance(exc, DuplicateKeyError)


class MongoProcessedEvents:
    """Event ids each consumer group has fully handled, one small document per (group, id)."""

    def __init__(self, db: Database) -> None:
        self._coll = db[PROCESSED_COLLECTION]

    async def seen(self, group: str, event_id: str) -> bool:
        return await self._coll.find_one({"_id": f"{group}:{event_id}"}, {"_id": 1}) is not None

    async def remember(self, group: str, event_id: str) -> None:
        try:
            await self._coll.insert_one({"_id": f"{group}:{event_id}", "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass
