"""Database access of the household service (motor). Every write that changes a dossier is one
single-document update guarded by the dossier's ``version`` (compare-and-set) and carries the
events it causes (the embedded outbox).

Collections (database ``ecp_household``):
- ``dossiers``: the aggregate, one per account (unique sparse index on ``account_id``, which
  erasure removes);
- ``accounts``: projection of identity's events, ``{_id: account_id, activated_at, deleted_at}``;
- ``documents``: projection of the documents events, ``{_id: document_id, account_id, kind,
  status}`` (``pending``, ``clean``, ``infected``, ``deleted``);
- ``correction_reasons``: one document (``_id: "preset"``), the back-office's preset correction
  reasons ``[{id, text}]`` in their order, with a ``version`` (compare-and-set) and its
  ``history`` (who changed what, when), pushed in the same update as each change;
- ``processed_events``: the kernel consumer's handled ids.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from services.kernel.mongo import Database, is_duplicate_key, next_number
from services.kernel.outbox import new_document_with_events, with_events

DOSSIERS = "dossiers"
ACCOUNTS = "accounts"
DOCUMENTS = "documents"
COUNTERS = "counters"
CORRECTION_REASONS = "correction_reasons"
PRESET_REASONS_ID = "preset"

HIDDEN = {"outbox": 0, "outbox_lease": 0, "applied_events": 0}
QUEUE_FIELDS = {"_id": 1, "status": 1, "submitted_at": 1, "resubmission": 1, "version": 1, "children_count": 1,
                "first_submitted_at": 1, "guardians.first_name": 1, "guardians.last_name": 1, "reference": 1,
                "assignment": 1}
MAX_PAGE = 100
# A total above this is shown as « plus de 10 000 »: counting further costs time and tells nothing.
MAX_COUNT = 10_000


class DossierExists(Exception):
    pass


class BadCursor(Exception):
    pass


def encode_cursor(submitted_at: datetime, dossier_id: str) -> str:
    raw = json.dumps([submitted_at.isoformat(), dossier_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, dossier_id = json.loads(raw)
        return datetime.fromisoformat(at), str(dossier_id)
    except Exception as exc:
        raise BadCursor from exc


class HouseholdStore:
    def __init__(self, db: Database) -> None:
        self.dossiers = db[DOSSIERS]
        self.accounts = db[ACCOUNTS]
        self.documents = db[DOCUMENTS]
        self.counters = db[COUNTERS]
        self.correction_reasons = db[CORRECTION_REASONS]

    async def ensure_indexes(self) -> None:
        await self.dossiers.create_index("account_id", unique=True, sparse=True)
        # The review queue: by status, oldest submission first, the id breaking ties (keyset pages).
        await self.dossiers.create_index([("status", 1), ("submitted_at", 1), ("_id", 1)])
        await self.documents.create_index("account_id")
        await self.dossiers.create_index("reference", unique=True, sparse=True)
        # Search: each word of the names, the reference and the emails (domain.search_terms),
        # with the status so that a search within a status reads only its own keys.
        await self.dossiers.create_index([("search", 1), ("status", 1), ("submitted_at", 1)])
        # « Assignés à moi » within a status.
        await self.dossiers.create_index([("assignment.agent_id", 1), ("status", 1), ("submitted_at", 1)])

    async def next_number(self, name: str) -> int:
        """The next number of a counter (one per year for references): atomic, never reused."""
        return await next_number(self.counters, name)

    # ---- the preset correction reasons ---------------------------------------------------------

    async def seed_correction_reasons(self, document: dict[str, Any]) -> bool:
        """Writes the first list if there is none yet (True when this call wrote it)."""
        try:
            result = await self.correction_reasons.update_one(
                {"_id": PRESET_REASONS_ID}, {"$setOnInsert": document}, upsert=True)
        except Exception as exc:
            if is_duplicate_key(exc):  # another replica seeded it at the same instant
                return False
            raise
        return result.upserted_id is not None

    async def preset_reasons(self, *, with_history: bool = False) -> dict[str, Any] | None:
        return await self.correction_reasons.find_one({"_id": PRESET_REASONS_ID}, None if with_history else {"history": 0})

    async def replace_preset_reasons(self, version: int, fields: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Compare-and-set, the change and its history entry in one update: False if another
        change came first."""
        result = await self.correction_reasons.update_one(
            {"_id": PRESET_REASONS_ID, "version": version},
            {"$set": fields, "$inc": {"version": 1}, "$push": {"history": entry}})
        return result.modified_count == 1

    # ---- projections ----------------------------------------------------------------------------

    async def account_activated(self, account_id: str, at: datetime, email: str | None = None) -> None:
        # $setOnInsert: an account already erased (tombstone) is never activated again. The email
        # is kept only so that agents can find the family's file by it (erased with the account).
        await self.accounts.update_one({"_id": account_id}, {"$setOnInsert": {"activated_at": at, "email": email}}, upsert=True)

    async def account_email(self, account_id: str) -> str | None:
        account = await self.accounts.find_one({"_id": account_id}, {"email": 1})
        return account.get("email") if account else None

    async def account_deleted(self, account_id: str, at: datetime) -> None:
        await self.accounts.update_one({"_id": account_id}, {"$set": {"deleted_at": at}, "$unset": {"email": ""}}, upsert=True)

    async def is_active(self, account_id: str) -> bool:
        account = await self.accounts.find_one({"_id": account_id})
        return bool(account and account.get("activated_at") and not account.get("deleted_at"))

    async def document_uploaded(self, document_id: str, account_id: str, kind: str) -> None:
        # A later verdict or deletion is never overwritten by an older (replayed) upload event.
        try:
            await self.documents.update_one(
                {"_id": document_id, "status": {"$ne": "deleted"}},
                {"$set": {"account_id": account_id, "kind": kind}, "$setOnInsert": {"status": "pending"}},
                upsert=True,
            )
        except Exception as exc:
            if not is_duplicate_key(exc):  # already deleted: a replayed upload changes nothing
                raise

    async def document_scanned(self, document_id: str, account_id: str, kind: str, result: str) -> None:
        try:
            await self.documents.update_one(
                {"_id": document_id, "status": {"$ne": "deleted"}},
                {"$set": {"account_id": account_id, "kind": kind, "status": result}},
                upsert=True,
            )
        except Exception as exc:
            if not is_duplicate_key(exc):  # already deleted: the verdict no longer matters
                raise

    async def document_deleted(self, document_id: str, account_id: str, kind: str) -> None:
        # The tombstone names no account: a deleted document proves nothing, and the deletions
        # that follow an erasure (documents erases too) must not bring the account id back.
        await self.documents.update_one(
            {"_id": document_id}, {"$set": {"kind": kind, "status": "deleted"}, "$unset": {"account_id": ""}}, upsert=True
        )

    async def known_documents(self, document_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not document_ids:
            return {}
        return {d["_id"]: d async for d in self.documents.find({"_id": {"$in": document_ids}})}

    async def forget_account_documents(self, account_id: str) -> None:
        await self.documents.delete_many({"account_id": account_id})

    # ---- dossiers -------------------------------------------------------------------------------

    async def insert(self, dossier: dict[str, Any]) -> None:
        try:
            await self.dossiers.insert_one(new_document_with_events(dossier, []))
        except Exception as exc:
            if is_duplicate_key(exc):
                raise DossierExists from exc
            raise

    async def of_account(self, account_id: str) -> dict[str, Any] | None:
        return await self.dossiers.find_one({"account_id": account_id}, HIDDEN)

    async def get(self, dossier_id: str) -> dict[str, Any] | None:
        return await self.dossiers.find_one({"_id": dossier_id}, HIDDEN)

    async def replace_if_version(
        self,
        dossier_id: str,
        version: int,
        fields: dict[str, Any],
        events: list[dict[str, Any]],
        *,
        push: dict[str, Any] | None = None,
        unset: list[str] = (),  # type: ignore[assignment]
    ) -> bool:
        """Compare-and-set: writes only if nobody wrote since ``version`` was read."""
        update: dict[str, Any] = {"$set": fields, "$inc": {"version": 1}}
        if push:
            update["$push"] = push
        if unset:
            update["$unset"] = {f: "" for f in unset}
        result = await self.dossiers.update_one({"_id": dossier_id, "version": version}, with_events(update, events))
        return result.modified_count == 1

    async def erase(self, account_id: str, fields: dict[str, Any], unset: list[str]) -> int:
        result = await self.dossiers.update_many(
            {"account_id": account_id}, {"$set": fields, "$unset": {f: "" for f in unset}, "$inc": {"version": 1}}
        )
        return result.modified_count

    async def stale(self, updated_before: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """Files (not yet erased) unchanged since ``updated_before``: past their retention."""
        cursor = self.dossiers.find({"status": {"$ne": "erased"}, "updated_at": {"$lt": updated_before}}, {"outbox": 0})
        return [d async for d in cursor.limit(limit)]

    async def purge_erased(self, erased_before: datetime) -> int:
        """Erased files keep their audit (decisions, dates, agents) this long, then go whole."""
        result = await self.dossiers.delete_many(
            {"status": "erased", "erased_at": {"$lt": erased_before}, "outbox_pending": {"$ne": True}})
        return result.deleted_count

    async def queue(
        self,
        *,
        status: str,
        submitted_from: datetime | None = None,
        submitted_to: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """One page of files with ``status``, oldest submission first, served by the
        (status, submitted_at, _id) index: files of other statuses are never read. (MongoDB also
        stops at ``limit`` in the index; SecantusDB reads every key in range first: bench/queue.py.)"""
        limit = min(max(limit, 1), MAX_PAGE)
        range_: dict[str, Any] = {}
        if submitted_from is not None:
            range_["$gte"] = submitted_from
        if submitted_to is not None:
            range_["$lt"] = submitted_to
        ties: list[dict[str, Any]] = []
        if after is not None:
            # Keyset: the files submitted at the cursor's instant with a greater id, then the later
            # ones. Two simple range queries on the index rather than one $or it cannot use whole.
            at, dossier_id = after
            if (submitted_from is None or at >= submitted_from) and (submitted_to is None or at < submitted_to):
                ties = await self._page({"status": status, "submitted_at": at, "_id": {"$gt": dossier_id}}, limit)
            if submitted_from is None or submitted_from <= at:
                range_.pop("$gte", None)
                range_["$gt"] = at
        filter_: dict[str, Any] = {"status": status}
        if range_:
            filter_["submitted_at"] = range_
        if len(ties) >= limit:
            return ties[:limit]
        return ties + await self._page(filter_, limit - len(ties))

    async def search(
        self,
        *,
        status: str | None,
        terms: list[str] = (),  # type: ignore[assignment]
        assigned_to: str | None = None,
        unassigned_at: datetime | None = None,
        submitted_until: datetime | None = None,
        newest_first: bool = False,
        page: int = 1,
        limit: int = 20,
    ) -> tuple[list[dict[str, Any]], int]:
        """One numbered page of files and the total (capped at ``MAX_COUNT``). Each filter is an
        equality that leads an index: a word searched (``search``), the agent a file is assigned
        to, the status. Unassigned means no lease or an expired one (``unassigned_at`` is now)."""
        limit = min(max(limit, 1), MAX_PAGE)
        filter_: dict[str, Any] = {}
        if terms:
            filter_["search"] = terms[0] if len(terms) == 1 else {"$all": list(terms)}
        if status is not None:
            filter_["status"] = status
        if assigned_to is not None:
            filter_["assignment.agent_id"] = assigned_to
        if unassigned_at is not None:
            # A lease that ended counts as no lease: "until" absent or in the past.
            filter_["assignment.until"] = {"$not": {"$gt": unassigned_at}}
        if submitted_until is not None:  # « en retard »: waiting since that instant or before
            filter_["submitted_at"] = {"$lte": submitted_until}
        direction = -1 if newest_first else 1
        cursor = (self.dossiers.find(filter_, QUEUE_FIELDS)
                  .sort([("submitted_at", direction), ("_id", direction)])
                  .skip((max(page, 1) - 1) * limit).limit(limit))
        rows = [d async for d in cursor]
        if page == 1 and len(rows) < limit:
            return rows, len(rows)  # the whole result is on this page: no count needed
        total = await self.dossiers.count_documents(filter_, limit=MAX_COUNT)
        return rows, total

    async def without_reference(self, limit: int = 10_000) -> list[dict[str, Any]]:
        fields = {"account_id": 1, "created_at": 1, "guardians": 1, "children": 1}
        return [d async for d in self.dossiers.find(
            {"reference": {"$exists": False}, "status": {"$ne": "erased"}}, fields).limit(limit)]

    async def set_reference(self, dossier_id: str, fields: dict[str, Any]) -> int:
        result = await self.dossiers.update_one({"_id": dossier_id, "reference": {"$exists": False}}, {"$set": fields})
        return result.modified_count

    async def for_export(self, status: str | None, limit: int = 50_000) -> list[dict[str, Any]]:
        """Files for the agents' CSV, oldest submission first (no outbox, no contact details)."""
        fields = {"reference": 1, "status": 1, "submitted_at": 1, "first_submitted_at": 1, "decided_at": 1,
                  "guardians.first_name": 1, "guardians.last_name": 1, "children.first_name": 1, "children.last_name": 1,
                  "children.birth_date": 1, "address.postcode": 1, "address.town": 1}
        filter_: dict[str, Any] = {"status": status} if status else {"status": {"$ne": "erased"}}
        return [d async for d in self.dossiers.find(filter_, fields).sort([("submitted_at", 1), ("_id", 1)]).limit(limit)]

    async def take(self, dossier_id: str, agent_id: str, now: datetime, until: datetime) -> bool:
        """The lease, if the file is still submitted and free (no lease, an expired one, or the
        agent's own, which this extends). Does not change ``version``: taking is not a decision."""
        result = await self.dossiers.update_one(
            {"_id": dossier_id, "status": "submitted", "assignment.until": {"$not": {"$gt": now}}},
            {"$set": {"assignment": {"agent_id": agent_id, "until": until, "since": now}}})
        if result.modified_count == 1:
            return True
        result = await self.dossiers.update_one(
            {"_id": dossier_id, "status": "submitted", "assignment.agent_id": agent_id},
            {"$set": {"assignment.until": until}})
        return result.modified_count == 1

    async def release(self, dossier_id: str, agent_id: str | None) -> bool:
        """Drops the lease: the holder's own (``agent_id``), or anyone's (an admin, None)."""
        filter_: dict[str, Any] = {"_id": dossier_id}
        if agent_id is not None:
            filter_["assignment.agent_id"] = agent_id
        result = await self.dossiers.update_one(filter_, {"$unset": {"assignment": ""}})
        return result.modified_count == 1

    async def reassign(self, dossier_id: str, agent_id: str, now: datetime, until: datetime) -> bool:
        result = await self.dossiers.update_one(
            {"_id": dossier_id, "status": "submitted"},
            {"$set": {"assignment": {"agent_id": agent_id, "until": until, "since": now}}})
        return result.matched_count == 1

    async def _page(self, filter_: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        cursor = self.dossiers.find(filter_, QUEUE_FIELDS).sort([("submitted_at", 1), ("_id", 1)]).limit(limit)
        return [d async for d in cursor]
