"""Database access of the notifier (motor): the recipients projection and the deliveries.

``recipients``: the notifier's own view of identity's accounts (account id → email, name),
built from AccountRegistered / AccountActivated; AccountDeleted leaves a tombstone without them.

``deliveries``: one document per (event, recipient), ``_id`` = that unique key. It is written
*before* the SMTP transaction (status ``sending``, leased to one process) and updated after it
(``sent`` or ``failed``) together with its NotificationSent / NotificationFailed event in the
embedded outbox: the outcome and its event are one single-document write.

The first insert of a claim and the recording of an outcome go through a group commit
(``batching.BulkBatcher``): the emails a batch sends concurrently are claimed in one
``insert_many`` and recorded in one ``bulk_write``, each still a single-document write with its
own condition; the recipient look-ups of those emails are one ``find`` with ``$in``. The rare
paths (a claim that finds its key taken, a retry) stay one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.kernel.mongo import Database, is_duplicate_key, update_and_read
from services.kernel.outbox import new_document_with_events, with_events
from services.notifier.batching import BulkBatcher
from services.notifier.domain import DeliveryStatus

RECIPIENTS = "recipients"
DELIVERIES = "deliveries"
# Fields of a delivery that identify a person; erasure removes them.
PERSONAL_FIELDS = ("to", "to_masked", "display_name")


class ClaimState(StrEnum):
    NEW = "new"  # first attempt: send
    RESUMED = "resumed"  # a previous attempt did not finish (crash or SMTP down): send again
    DONE = "done"  # already sent or failed: nothing to do
    BUSY = "busy"  # another live process holds it: try later


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    attempts: int = 0
    created_at: datetime | None = None


class AlreadyClaimed(Exception):
    """The delivery's key is taken: a redelivered event, or a resumed attempt."""


class NotifierStore:
    def __init__(self, db: Database) -> None:
        self.recipients = db[RECIPIENTS]
        self.deliveries = db[DELIVERIES]
        self._inserts: BulkBatcher[dict[str, Any], None] = BulkBatcher(self._insert_deliveries)
        self._finishes: BulkBatcher[UpdateOne, None] = BulkBatcher(self._update_deliveries)
        self._recipient_reads: BulkBatcher[str, dict[str, Any] | None] = BulkBatcher(self._read_recipients)

    async def _read_recipients(self, account_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        found = {d["_id"]: d async for d in self.recipients.find({"_id": {"$in": list(set(account_ids))}})}
        return [found.get(account_id) for account_id in account_ids]

    async def _insert_deliveries(self, documents: Sequence[dict[str, Any]]) -> list[None | Exception]:
        outcomes: list[None | Exception] = [None] * len(documents)
        try:
            await self.deliveries.insert_many(list(documents), ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                duplicate = error.get("code") == 11000
                outcomes[error["index"]] = AlreadyClaimed() if duplicate else RuntimeError(error.get("errmsg", "insert failed"))
        return outcomes

    async def _update_deliveries(self, updates: Sequence[UpdateOne]) -> list[None | Exception]:
        # Each update carries its own condition (still ``sending``); which ones matched is not
        # needed: a delivery finished elsewhere already queued its event, and ours is dropped.
        await self.deliveries.bulk_write(list(updates), ordered=False)
        return [None] * len(updates)

    async def ensure_indexes(self) -> None:
        # The delivery log query; the unique (event, recipient) key is the _id itself.
        await self.deliveries.create_index([("account_id", 1), ("created_at", -1)])
        await self.deliveries.create_index("created_at")  # the retention purge

    # the recipients projection

    async def remember_recipient(
        self, account_id: str, email: str, display_name: str, *, registered_at: datetime | None = None
    ) -> dict[str, Any] | None:
        """Upserts the address; returns the projection, or None when the account was erased.
        Idempotent by nature ($set of the event's values), and an account's events arrive in
        order (one partition per key), so no applied-events guard is needed."""
        fields: dict[str, Any] = {"email": email, "display_name": display_name}
        update: dict[str, Any] = {"$set": fields}
        if registered_at is not None:
            update["$min"] = {"registered_at": registered_at}
        try:
            return await update_and_read(self.recipients, {"_id": account_id, "deleted": {"$ne": True}}, update, upsert=True)
        except Exception as exc:
            if is_duplicate_key(exc):  # the tombstone of an erased account: never resurrect it
                return None
            raise

    async def remember_children(self, account_id: str, first_names: dict[str, str]) -> None:
        """The children of the account's validated file, child id → first name: all the enrolment
        emails need (enrolment events carry no name). Erased with the account."""
        if not first_names:
            return
        try:
            await self.recipients.update_one(
                {"_id": account_id, "deleted": {"$ne": True}},
                {"$set": {f"children.{child_id}": name for child_id, name in first_names.items()}}, upsert=True,
            )
        except Exception as exc:
            if not is_duplicate_key(exc):  # the tombstone of an erased account: nothing to keep
                raise

    async def recipient(self, account_id: str) -> dict[str, Any] | None:
        known = await self._recipient_reads.submit(account_id)
        return None if known is None or known.get("deleted") else known

    async def is_forgotten(self, account_id: str) -> bool:
        known = await self._recipient_reads.submit(account_id)
        return known is not None and known.get("deleted") is True

    async def forget(self, account_id: str, now: datetime) -> int:
        """Erasure: the projection keeps a tombstone (id only, so a late mail event is not sent),
        and the delivery log keeps what happened but not to whom. Returns deliveries anonymised."""
        await self.recipients.update_one(
            {"_id": account_id},
            {"$set": {"deleted": True, "deleted_at": now},
             "$unset": {"email": "", "display_name": "", "registered_at": "", "children": ""}},
            upsert=True,
        )
        result = await self.deliveries.update_many(
            {"account_id": account_id, "anonymised_at": {"$exists": False}},
            {"$unset": {f: "" for f in PERSONAL_FIELDS}, "$set": {"anonymised_at": now}},
        )
        return result.modified_count

    async def purge(self, *, deliveries_before: datetime, tombstones_before: datetime) -> dict[str, int]:
        """Retention (docs/rgpd.md): the delivery log goes after its period (once its events are
        published); an erased recipient's tombstone, once no late event can still name it."""
        log = await self.deliveries.delete_many({"created_at": {"$lt": deliveries_before}, "outbox_pending": {"$ne": True}})
        tombstones = await self.recipients.delete_many({"deleted": True, "deleted_at": {"$lt": tombstones_before}})
        return {k: v for k, v in (("deliveries", log.deleted_count), ("recipient_tombstones", tombstones.deleted_count)) if v}

    # deliveries

    async def claim(self, document: dict[str, Any], *, owner: str, now: datetime, lease: timedelta) -> Claim:
        """Records the delivery as ``sending`` before any SMTP traffic, or takes over one that a
        previous attempt left in ``sending`` (this process's own earlier try, or an expired lease
        of a process that died). ``document`` holds ``_id`` and the delivery's fields."""
        fresh = {
            **document,
            "status": DeliveryStatus.SENDING,
            "owner": owner,
            "lease_until": now + lease,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._inserts.submit(new_document_with_events(fresh, []))
            return Claim(ClaimState.NEW, 1, now)
        except AlreadyClaimed:
            pass
        # Ours already, or abandoned: two conditional updates, as a $or would make the local
        # database server read every delivery (see kernel.mongo.update_and_read).
        resume = {"$set": {"owner": owner, "lease_until": now + lease, "updated_at": now}, "$inc": {"attempts": 1}}
        taken = None
        for still_resumable in ({"owner": owner}, {"lease_until": {"$lt": now}}):
            taken = await update_and_read(
                self.deliveries, {"_id": document["_id"], "status": DeliveryStatus.SENDING, **still_resumable}, resume)
            if taken is not None:
                break
        if taken is not None:
            return Claim(ClaimState.RESUMED, int(taken["attempts"]), taken["created_at"])
        existing = await self.deliveries.find_one({"_id": document["_id"]}, {"status": 1})
        if existing is None or existing["status"] == DeliveryStatus.SENDING:
            return Claim(ClaimState.BUSY)
        return Claim(ClaimState.DONE)

    async def retry_noted(
        self, delivery_id: str, *, owner: str, error: str, now: datetime, lease: timedelta, next_attempt: bool = True
    ) -> int:
        """A transient failure: keep the lease, show the error in the log and, when another
        attempt follows at once, count it. Returns the attempts so far (0 if the lease was lost)."""
        doc = await update_and_read(
            self.deliveries,
            {"_id": delivery_id, "status": DeliveryStatus.SENDING, "owner": owner},
            {
                "$set": {"last_error": error, "lease_until": now + lease, "updated_at": now},
                "$inc": {"attempts": 1 if next_attempt else 0},
            },
            projection={"attempts": 1},
        )
        return int(doc["attempts"]) if doc else 0

    async def finish(
        self, delivery_id: str, *, status: DeliveryStatus, fields: dict[str, Any], events: list[dict[str, Any]]
    ) -> None:
        """``sending`` → ``sent`` / ``failed`` with its event, in one single-document write (group
        committed with the other deliveries finishing now). A no-op if another process finished
        it first: its event was already queued, and ours is dropped with the update."""
        await self._finishes.submit(UpdateOne(
            {"_id": delivery_id, "status": DeliveryStatus.SENDING},
            with_events({"$set": {"status": status, **fields}, "$unset": {"owner": "", "lease_until": ""}}, events),
        ))

    async def record_failed(self, document: dict[str, Any], events: list[dict[str, Any]]) -> bool:
        """A delivery that fails before any SMTP traffic (no address, stale event): one insert
        with its event. False if it was already recorded (a redelivered event)."""
        try:
            await self.deliveries.insert_one(new_document_with_events({**document, "status": DeliveryStatus.FAILED}, events))
            return True
        except Exception as exc:
            if is_duplicate_key(exc):
                return False
            raise

    async def log_for(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        projection = {"outbox": 0, "outbox_pending": 0, "outbox_lease": 0, "to": 0, "owner": 0, "lease_until": 0}
        cursor = self.deliveries.find({"account_id": account_id}, projection).sort("created_at", -1).limit(limit)
        return [d async for d in cursor]


class OverdueDigestStore:
    """The overdue files the insights service announced, and the day's digest claims.

    ``overdue_files``: one document per DossierOverdue (its event id is the id, so a redelivery
    is one file), with the digest that listed it. ``overdue_digests``: one document per Paris day
    (``overdue-<day>``), inserted before talking SMTP so two replicas or a restart never send twice.
    """

    def __init__(self, db: Database) -> None:
        self.files = db["overdue_files"]
        self.digests = db["overdue_digests"]

    async def ensure_indexes(self) -> None:
        await self.files.create_index([("digest", 1), ("waiting_since", 1)])

    async def record_overdue(self, event_id: str, file: dict[str, Any]) -> None:
        await self.files.update_one({"_id": event_id}, {"$setOnInsert": {**file, "digest": None}}, upsert=True)

    async def claim_digest(self, digest_id: str, *, now: datetime, lease: timedelta) -> bool:
        """True when this process may send the day's digest: it is new, or a send was abandoned
        (its lease expired); False when it was sent or is being sent by another process."""
        try:
            await self.digests.insert_one({"_id": digest_id, "status": "sending", "leased_until": now + lease})
            return True
        except DuplicateKeyError:
            pass
        taken = await self.digests.update_one(
            {"_id": digest_id, "status": "sending", "leased_until": {"$lt": now}},
            {"$set": {"leased_until": now + lease}})
        return taken.matched_count == 1

    async def files_for_digest(self, digest_id: str) -> list[dict[str, Any]]:
        """The files no digest listed yet (or this one, resumed), oldest wait first; marks them as its."""
        files = await self.files.find({"digest": {"$in": [None, digest_id]}}).sort("waiting_since", 1).to_list(None)
        if files:
            await self.files.update_many({"_id": {"$in": [f["_id"] for f in files]}}, {"$set": {"digest": digest_id}})
        return files

    async def digest_sent(self, digest_id: str, *, now: datetime, files: int) -> None:
        await self.digests.update_one({"_id": digest_id}, {"$set": {"status": "sent", "sent_at": now, "files": files}})

    async def purge(self, *, before: datetime) -> dict[str, int]:
        """Forgets digests sent before ``before`` and the files they listed (the delivery log's
        retention: the digest is an email the Service received)."""
        old = await self.digests.find({"status": "sent", "sent_at": {"$lt": before}}, {"_id": 1}).to_list(None)
        ids = [d["_id"] for d in old]
        if not ids:
            return {"overdue_files": 0, "overdue_digests": 0}
        files = await self.files.delete_many({"digest": {"$in": ids}})
        digests = await self.digests.delete_many({"_id": {"$in": ids}})
        return {"overdue_files": files.deleted_count, "overdue_digests": digests.deleted_count}
