"""Database access of the documents service (motor). Every write that causes events carries them
in the same single-document update (the embedded outbox)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from services.documents.domain import LIVE_STATUSES, Status
from services.kernel.mongo import Database, as_utc, update_and_read
from services.kernel.outbox import new_document_with_events, with_events

DOCUMENTS = "documents"
# Projection of the household's HouseholdSubmitted events (documents attached to a file under
# review): {_id: document_id, dossier_id, submitted_at}. Filled by consumers.py.
SUBMITTED = "submitted_documents"
# Accounts whose AccountDeleted was handled ({_id: account_id, erased_at}): an upload that was
# already under way when the erasure ran finds its account here and undoes itself.
ERASED_ACCOUNTS = "erased_accounts"

SCAN_LEASE = "scan_lease"
# Due documents looked at per lease attempt: more than the scanners that may hold one at once.
LEASE_CANDIDATES = 50
PERSONAL_FIELDS = ("original_name", "name", "sha256", "received_sha256", "size", "content_type", "reason")


class DocumentsStore:
    def __init__(self, db: Database) -> None:
        self.documents = db[DOCUMENTS]
        self.submitted = db[SUBMITTED]
        self.erased_accounts = db[ERASED_ACCOUNTS]

    async def ensure_indexes(self) -> None:
        await self.documents.create_index([("account_id", 1), ("created_at", -1)])
        await self.documents.create_index([("status", 1), ("next_scan_at", 1)])
        await self.documents.create_index("object_key")
        await self.submitted.create_index("dossier_id")

    # upload: intent, then pending (with DocumentUploaded)

    async def insert_intent(self, document: dict[str, Any]) -> None:
        await self.documents.insert_one(new_document_with_events({**document, "status": Status.UPLOADING}, []))

    async def mark_uploaded(self, document_id: str, fields: dict[str, Any], events: list[dict[str, Any]]) -> bool:
        result = await self.documents.update_one(
            {"_id": document_id, "status": Status.UPLOADING},
            with_events({"$set": {**fields, "status": Status.PENDING}}, events),
        )
        return result.modified_count == 1

    async def remove_intent(self, document_id: str) -> None:
        await self.documents.delete_one({"_id": document_id, "status": Status.UPLOADING})

    # reads

    async def get(self, document_id: str) -> dict[str, Any] | None:
        return await self.documents.find_one({"_id": document_id}, {"outbox": 0, SCAN_LEASE: 0})

    async def of_account(self, account_id: str) -> list[dict[str, Any]]:
        cursor = self.documents.find(
            {"account_id": account_id, "status": {"$nin": [Status.UPLOADING, Status.DELETED]}},
            {"outbox": 0, SCAN_LEASE: 0},
        ).sort("created_at", -1)
        return [d async for d in cursor]

    async def is_submitted(self, document_id: str) -> bool:
        return await self.submitted.find_one({"_id": document_id}, {"_id": 1}) is not None

    # the submitted_documents projection (household's events)

    async def attach_to_dossier(self, dossier_id: str, document_ids: list[str], at: datetime) -> None:
        """The dossier's attached documents are exactly ``document_ids`` (idempotent): one upsert
        per document, in one bulk write, then the rows of documents no longer attached."""
        if document_ids:
            await self.submitted.bulk_write(
                [UpdateOne({"_id": i}, {"$set": {"dossier_id": dossier_id, "submitted_at": at}}, upsert=True) for i in document_ids],
                ordered=False,
            )
        await self.submitted.delete_many({"dossier_id": dossier_id, "_id": {"$nin": list(document_ids)}})

    async def release_dossier(self, dossier_id: str) -> None:
        await self.submitted.delete_many({"dossier_id": dossier_id})

    # scan: lease a pending document like the outbox relay leases aggregates

    async def lease_pending(self, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        """The pending document due soonest that no live scan holds, leased to the caller.

        Candidates come from the (status, next_scan_at) index (an upload always sets
        ``next_scan_at``) and the lease is checked again in the conditional update: a ``$or`` on
        the lease made the local database server scan every document on each poll.
        """
        due = self.documents.find(
            {"status": Status.PENDING, "next_scan_at": {"$lte": now}}, {SCAN_LEASE: 1}
        ).sort("next_scan_at", 1).limit(LEASE_CANDIDATES)
        async for candidate in due:
            held = candidate.get(SCAN_LEASE)
            if held is not None and as_utc(held["until"]) >= now:
                continue  # being scanned elsewhere
            still_free = {SCAN_LEASE: {"$exists": False}} if held is None else {f"{SCAN_LEASE}.token": held["token"]}
            leased = await update_and_read(
                self.documents,
                {"_id": candidate["_id"], "status": Status.PENDING, **still_free},
                {"$set": {SCAN_LEASE: {"token": uuid.uuid4().hex, "until": now + lease}}},
                projection={"outbox": 0},
            )
            if leased is not None:
                return leased
        return None

    async def record_verdict(
        self, document_id: str, token: str, status: Status, fields: dict[str, Any], events: list[dict[str, Any]]
    ) -> bool:
        result = await self.documents.update_one(
            {"_id": document_id, "status": Status.PENDING, f"{SCAN_LEASE}.token": token},
            with_events({"$set": {**fields, "status": status}, "$unset": {SCAN_LEASE: "", "next_scan_at": ""}}, events),
        )
        return result.modified_count == 1

    async def postpone_scan(self, document_id: str, token: str, next_at: datetime, error: str) -> None:
        await self.documents.update_one(
            {"_id": document_id, f"{SCAN_LEASE}.token": token},
            {"$set": {"next_scan_at": next_at, "last_scan_error": error[:300]}, "$inc": {"scan_attempts": 1},
             "$unset": {SCAN_LEASE: ""}},
        )

    # deletion and erasure: the record becomes a tombstone before the object goes

    async def tombstone(
        self, document_id: str, from_statuses: list[str], now: datetime, events: list[dict[str, Any]], *, erase: bool = False
    ) -> bool:
        unset = {f: "" for f in PERSONAL_FIELDS} if erase else {"original_name": "", "name": ""}
        result = await self.documents.update_one(
            {"_id": document_id, "status": {"$in": from_statuses}},
            with_events({"$set": {"status": Status.DELETED, "deleted_at": now}, "$unset": {**unset, SCAN_LEASE: ""}}, events),
        )
        return result.modified_count == 1

    async def anonymise(self, document_id: str, now: datetime) -> None:
        """Erasure: the tombstone keeps no link to the account nor anything about the file."""
        await self.documents.update_one(
            {"_id": document_id},
            {"$set": {"account_id": None, "erased_at": now}, "$unset": {f: "" for f in PERSONAL_FIELDS}},
        )

    async def delete_record(self, document_id: str) -> None:
        await self.documents.delete_one({"_id": document_id})

    # sweeper

    async def stale_intents(self, before: datetime) -> list[dict[str, Any]]:
        cursor = self.documents.find({"status": Status.UPLOADING, "created_at": {"$lt": before}}, {"object_key": 1})
        return [d async for d in cursor]

    async def live_keys(self, keys: list[str]) -> set[str]:
        cursor = self.documents.find(
            {"object_key": {"$in": keys}, "status": {"$in": list(LIVE_STATUSES)}}, {"object_key": 1}
        )
        return {d["object_key"] async for d in cursor}

    async def past_retention(self, before: datetime, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.documents.find(
            {"status": {"$in": [Status.PENDING, Status.CLEAN, Status.INFECTED, Status.QUARANTINED]}, "created_at": {"$lt": before}},
            {"outbox": 0},
        ).limit(limit)
        return [d async for d in cursor]

    async def purge_tombstones(self, before: datetime) -> int:
        result = await self.documents.delete_many(
            {"status": Status.DELETED, "deleted_at": {"$lt": before}, "outbox_pending": {"$ne": True}}
        )
        return result.deleted_count

    async def mark_erased(self, account_id: str, at: datetime) -> None:
        await self.erased_accounts.update_one({"_id": account_id}, {"$setOnInsert": {"erased_at": at}}, upsert=True)

    async def is_erased(self, account_id: str) -> bool:
        return await self.erased_accounts.find_one({"_id": account_id}, {"_id": 1}) is not None

    async def forget_erased(self, before: datetime) -> int:
        result = await self.erased_accounts.delete_many({"erased_at": {"$lt": before}})
        return result.deleted_count

    async def of_account_all(self, account_id: str) -> list[dict[str, Any]]:
        return [d async for d in self.documents.find({"account_id": account_id}, {"outbox": 0})]
