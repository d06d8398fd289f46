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
- ``enrolments``: projection of enrolment's events, ``{_id: enrolment_id, account_id, child_id,
  school_id, sector_school_id, state, rank}``: which school each child of a file is enrolled in
  or asked for; the file carries the set as ``schools`` (the queue's « école » filter). Before any
  enrolment (a file waiting for review), ``{_id: "sector:<child_id>", state: "sector", rank: 0,
  school_id, submitted_at}`` from enrolment's SectorSchoolsFound: the sector school the child
  would get, which a real enrolment of that child overrides (``domain.file_schools``);
- ``queue_counts`` and ``queue_totals``: the queue's totals, kept as the files change (below);
- ``processed_events``: the kernel consumer's handled ids.

Totals without counting. The local database server reads every key of a range before applying
``limit`` and counts key by key, so a page or a total over 10,000 waiting files costs seconds.
Hence: (1) pages walk the ``(status, submitted_at, _id)`` index in time windows that double from
the end the page starts at, until the page is full; (2) totals come from a ledger of
``COUNT_SHARDS`` documents, each holding, for the files whose id hashes to it, every file's
counted state ``members.<id> = {s: status, k: schools, v: count_seq}`` and the counts
``counts.<status>`` and ``counts.<status>:<school>``, plus ``floors.<status>``, the earliest
submission ever counted there (only ever lowered: a safe start for oldest-first pages). Each
write that may change a file's status or schools increments its ``count_seq`` and sets
``count_pending`` in the same single-document update; ``settle`` then moves the file's entry to
its current state and adjusts the counts in one update of its shard, conditional on the entry it
read (compare-and-set): replayed, concurrent or late settles cannot count twice or go backwards.
Then the shard's counts and floors are copied, as absolute values under the shard's own version,
to its small twin in ``queue_totals``, which is what a page reads (64 small documents rather than
every file's entry), and only then is ``count_pending`` removed: a file whose settle was
interrupted keeps it, and the periodic ``settle_pending`` finishes the settle and the copy.
Single-document atomicity only: the same code runs on a standalone mongod.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.household.domain import SECTOR_RANK, file_schools
from services.kernel.mongo import Database, is_duplicate_key, next_number
from services.kernel.outbox import new_document_with_events, with_events

DOSSIERS = "dossiers"
ACCOUNTS = "accounts"
DOCUMENTS = "documents"
COUNTERS = "counters"
ENROLMENTS = "enrolments"
QUEUE_COUNTS = "queue_counts"
QUEUE_TOTALS = "queue_totals"
COUNT_SHARDS = 64
# Statuses the queue lists and counts (a draft or an erased file is no agent's business); « all »
# in the queue means these four.
REVIEWED = ("submitted", "validated", "rejected", "corrections_requested")
# Every write that may change what the queue counts for a file (its status, its schools).
COUNT_MARK_INC = {"count_seq": 1}
COUNT_MARK_SET = {"count_pending": True}
# The first time window of a listing holds about this many pages' worth of files by the average
# density of submissions; then each window doubles.
FIRST_WINDOW_PAGES = 2
MIN_WINDOW = timedelta(minutes=10)
MAX_FIRST_WINDOW = timedelta(days=30)
DEFAULT_WINDOW = timedelta(days=1)
CORRECTION_REASONS = "correction_reasons"
PRESET_REASONS_ID = "preset"

HIDDEN = {"outbox": 0, "outbox_lease": 0, "applied_events": 0}
QUEUE_FIELDS = {"_id": 1, "status": 1, "submitted_at": 1, "resubmission": 1, "version": 1, "children_count": 1,
                "first_submitted_at": 1, "guardians.first_name": 1, "guardians.last_name": 1, "reference": 1,
                "assignment": 1, "schools": 1}
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


def is_free(row: dict[str, Any], at: datetime) -> bool:
    """No lease in force at ``at`` (none, or one that ended): as ``{"assignment.until": {"$not": {"$gt": at}}}``."""
    until = (row.get("assignment") or {}).get("until")
    return until is None or until <= at


def count_shard(dossier_id: str) -> str:
    return f"shard-{zlib.crc32(dossier_id.encode()) % COUNT_SHARDS:02d}"


def count_keys(status: str, schools: Iterable[str]) -> list[str]:
    """The ledger counts a file under: its status, and its status at each of its schools."""
    if status not in REVIEWED:
        return []
    return [status, *(f"{status}:{school}" for school in sorted(set(schools)))]


def count_delta(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, int]:
    """What moving a file's ledger entry from ``old`` to ``new`` adds to each count (no zeros)."""
    delta: dict[str, int] = {}
    if old is not None:
        for key in count_keys(old["s"], old.get("k") or []):
            delta[key] = delta.get(key, 0) - 1
    for key in count_keys(new["s"], new.get("k") or []):
        delta[key] = delta.get(key, 0) + 1
    return {f"counts.{k}": n for k, n in delta.items() if n}


def first_window(count: int, floor: datetime | None, now: datetime, needed: int) -> timedelta:
    """A first window expected to hold ``FIRST_WINDOW_PAGES`` times what the page needs, from the
    average density of the files counted since ``floor``."""
    if floor is None or count <= 0 or now <= floor:
        return DEFAULT_WINDOW
    span = (now - floor) * (FIRST_WINDOW_PAGES * needed / count)
    return min(max(span, MIN_WINDOW), MAX_FIRST_WINDOW)


def windows(*, lower: datetime | None, upper: datetime | None, floor: datetime | None, now: datetime,
            first: timedelta, newest_first: bool) -> Iterable[tuple[datetime | None, datetime | None]]:
    """The ``submitted_at`` ranges ``[start, end)`` (None: open) a listing reads in turn, each twice
    as long as the one before, from the end the page starts at. Together they cover ``[lower,
    upper)`` exactly once, in order, whatever ``floor`` says: a floor that errs low only adds empty
    windows, one that errs high only makes the last window larger."""
    span = first
    if newest_first:
        edge = upper
        while True:
            start = (edge or now) - span
            if floor is None or start <= floor or (lower is not None and start <= lower):
                yield lower, edge  # the rest, down to the bottom
                return
            yield start, edge
            edge, span = start, span * 2
    else:
        edge = lower
        while True:
            base = edge or floor
            end = None if base is None else base + span
            if end is None or (upper is not None and end >= upper) or (upper is None and end > now):
                yield edge, upper  # the rest, up to the top
                return
            yield edge, end
            edge, span = end, span * 2


# Submissions are never before this: a lower bound that keeps a range on dates only.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def date_range(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    range_: dict[str, Any] = {"$gte": start or EPOCH}
    if end is not None:
        range_["$lt"] = end
    return range_


def just_after(moment: datetime) -> datetime:
    """The exclusive bound equal to « at or before ``moment`` » for stored instants (milliseconds)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000) + timedelta(milliseconds=1)


class HouseholdStore:
    def __init__(self, db: Database) -> None:
        self.dossiers = db[DOSSIERS]
        self.accounts = db[ACCOUNTS]
        self.documents = db[DOCUMENTS]
        self.counters = db[COUNTERS]
        self.enrolments = db[ENROLMENTS]
        self.counts = db[QUEUE_COUNTS]
        self.totals = db[QUEUE_TOTALS]
        self._older_files_marked = False
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
        # « École »: the schools of the file's children (enrolment's events) within a status.
        await self.dossiers.create_index([("schools", 1), ("status", 1), ("submitted_at", 1), ("_id", 1)])
        # The leases in force, counted to take them off a total (« libres »).
        await self.dossiers.create_index([("status", 1), ("assignment.until", 1)])
        await self.dossiers.create_index("count_pending", sparse=True)
        await self.enrolments.create_index("account_id")

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

    # ---- enrolments (the « école » filter) -------------------------------------------------------

    async def enrolment_seen(self, enrolment_id: str, account_id: str, child_id: str, *, rank: int, state: str,
                             school_id: str | None = None, sector_school_id: str | None = None) -> None:
        """An enrolment's latest known state. ``rank`` orders its events (requested 1, dérogation
        decided 2, confirmed or refused 3): a replayed or late older event never undoes a later one."""
        fields: dict[str, Any] = {"account_id": account_id, "child_id": child_id, "state": state, "rank": rank,
                                  "school_id": school_id}
        if sector_school_id is not None:
            fields["sector_school_id"] = sector_school_id
        try:
            await self.enrolments.update_one({"_id": enrolment_id, "rank": {"$not": {"$gt": rank}}}, {"$set": fields}, upsert=True)
        except Exception as exc:
            if not is_duplicate_key(exc):  # a later event is already there: nothing to do
                raise
        await self.refresh_schools(account_id)

    async def derogation_refused(self, enrolment_id: str, account_id: str, child_id: str) -> None:
        """The enrolment goes on in the sector school the request named."""
        enrolment = await self.enrolments.find_one({"_id": enrolment_id}, {"sector_school_id": 1})
        sector = (enrolment or {}).get("sector_school_id")
        await self.enrolment_seen(enrolment_id, account_id, child_id, rank=2, state="requested", school_id=sector)

    async def sector_schools_found(self, account_id: str, children: list[tuple[str, str | None]], submitted_at: datetime) -> None:
        """The sector school each child of a submitted file would get, as that child's rank-0
        state; a later submission's replaces it (a child removed from the file loses it), an
        older one replayed late changes nothing."""
        for child_id, school_id in children:
            fields = {"account_id": account_id, "child_id": child_id, "state": "sector", "rank": SECTOR_RANK,
                      "school_id": school_id, "submitted_at": submitted_at}
            try:
                await self.enrolments.update_one({"_id": f"sector:{child_id}", "submitted_at": {"$not": {"$gt": submitted_at}}},
                                                 {"$set": fields}, upsert=True)
            except Exception as exc:
                if not is_duplicate_key(exc):  # a later submission's is already there
                    raise
        # A child no longer in the file keeps a state with no school, so that the older submission
        # replayed late cannot bring its sector school back.
        await self.enrolments.update_many({"account_id": account_id, "rank": SECTOR_RANK, "submitted_at": {"$lt": submitted_at},
                                           "child_id": {"$nin": [child_id for child_id, _ in children]}},
                                          {"$set": {"school_id": None, "submitted_at": submitted_at}})
        await self.refresh_schools(account_id)

    async def refresh_schools(self, account_id: str) -> None:
        """The file's ``schools`` (``domain.file_schools``): every school one of its children is
        enrolled in or asked for, or else would get as sector school. Written only when it
        changes, marked for the counts, and conditional on the file's ``count_seq`` read before
        the enrolments: two children's events handled at once (different partitions) cannot leave
        the set one of them computed alone."""
        for _ in range(20):
            dossier = await self.dossiers.find_one({"account_id": account_id}, {"schools": 1, "count_seq": 1})
            if dossier is None:
                return
            schools = file_schools([e async for e in self.enrolments.find(
                {"account_id": account_id}, {"school_id": 1, "child_id": 1, "state": 1, "rank": 1})])
            if sorted(dossier.get("schools") or []) == schools:
                return
            result = await self.dossiers.update_one(
                {"_id": dossier["_id"], "account_id": account_id, "count_seq": dossier.get("count_seq")},
                {"$set": {"schools": schools, **COUNT_MARK_SET}, "$inc": COUNT_MARK_INC})
            if result.modified_count:
                await self.settle(dossier["_id"])
                return

    # ---- the queue's totals ----------------------------------------------------------------------

    async def settle(self, dossier_id: str) -> None:
        """Moves the file's ledger entry to its current status and schools, adjusting the counts in
        the same single-document update, guarded by the entry it read (see the module's doc)."""
        dossier = await self.dossiers.find_one({"_id": dossier_id}, {"status": 1, "schools": 1, "count_seq": 1, "submitted_at": 1})
        if dossier is None or "count_seq" not in dossier:
            return
        seq, shard, path = dossier["count_seq"], count_shard(dossier_id), f"members.{dossier_id}"
        new = {"s": dossier["status"], "k": sorted(dossier.get("schools") or []), "v": seq}
        for _ in range(50):
            ledger = await self.counts.find_one({"_id": shard}, {path: 1})
            old = ((ledger or {}).get("members") or {}).get(dossier_id)
            if old is not None and old["v"] >= seq:
                break  # already counted, or a later state is
            update: dict[str, Any] = {"$set": {path: new}, "$inc": {"v": 1}}
            update["$inc"].update(count_delta(old, new))
            if dossier.get("submitted_at") is not None and count_keys(new["s"], []):
                update["$min"] = {f"floors.{new['s']}": dossier["submitted_at"]}
            guard = {"_id": shard, f"{path}.v": old["v"] if old is not None else {"$exists": False}}
            try:
                result = await self.counts.update_one(guard, update, upsert=ledger is None)
            except Exception as exc:
                if is_duplicate_key(exc):
                    continue  # another settle created the shard first: read it again
                raise
            if result.matched_count or result.upserted_id is not None:
                break
        await self.mirror(shard)
        await self.dossiers.update_one({"_id": dossier_id, "count_seq": seq}, {"$unset": {"count_pending": ""}})

    async def mirror(self, shard: str) -> None:
        """Copies a shard's counts and floors to its small twin in ``queue_totals`` (what a page
        reads: the shard itself carries every file's entry). Absolute values, newer shard version
        only: idempotent, and never goes back."""
        ledger = await self.counts.find_one({"_id": shard}, {"counts": 1, "floors": 1, "v": 1})
        if ledger is None:
            return
        copy = {"counts": ledger.get("counts") or {}, "floors": ledger.get("floors") or {}, "v": ledger.get("v", 0)}
        try:
            await self.totals.update_one({"_id": shard, "v": {"$not": {"$gte": copy["v"]}}}, {"$set": copy}, upsert=True)
        except Exception as exc:
            if not is_duplicate_key(exc):  # a newer copy is there already
                raise

    async def settle_pending(self, limit: int = 500) -> int:
        """Finishes the settles a stopped process left; its first run also marks the files written
        before the ledger existed (a scan) and refreshes every shard's copy, once per process."""
        if not self._older_files_marked:
            await self.dossiers.update_many({"count_seq": {"$exists": False}}, {"$set": {"count_seq": 1, **COUNT_MARK_SET}})
            await self.mirror_all()  # shards written before their copy existed (or by an older version)
            self._older_files_marked = True
        ids = [d["_id"] async for d in self.dossiers.find({"count_pending": True}, {"_id": 1}).limit(limit)]
        for dossier_id in ids:
            await self.settle(dossier_id)
        return len(ids)

    async def mirror_all(self) -> None:
        """Every shard's copy brought up to date (once per process: a settle copies its own shard)."""
        async for shard in self.counts.find({}, {"_id": 1}):
            await self.mirror(shard["_id"])

    async def rebuild_counts(self) -> None:
        """The ledger recomputed from the files in one scan: only while nothing writes (a benchmark's
        synthetic files, a restored database); settles running meanwhile could be overwritten."""
        shards: dict[str, dict[str, Any]] = {}
        async for d in self.dossiers.find({}, {"status": 1, "schools": 1, "count_seq": 1, "submitted_at": 1}):
            shard = shards.setdefault(count_shard(d["_id"]), {"members": {}, "counts": {}, "floors": {}})
            # A file without count_seq (written before the ledger) is counted as of version 0: the
            # service's first settle_pending marks it and moves it to 1 without changing a count.
            entry = {"s": d["status"], "k": sorted(d.get("schools") or []), "v": d.get("count_seq", 0)}
            shard["members"][d["_id"]] = entry
            for key, n in count_delta(None, entry).items():
                name = key.removeprefix("counts.")
                shard["counts"][name] = shard["counts"].get(name, 0) + n
            if d.get("submitted_at") is not None and count_keys(d["status"], []):
                floor = shard["floors"].get(d["status"])
                shard["floors"][d["status"]] = min(floor, d["submitted_at"]) if floor else d["submitted_at"]
        await self.counts.delete_many({})
        await self.totals.delete_many({})
        for shard_id, shard in shards.items():
            await self.counts.insert_one({"_id": shard_id, **shard, "v": 1})
            await self.totals.insert_one({"_id": shard_id, "counts": shard["counts"], "floors": shard["floors"], "v": 1})
        await self.dossiers.update_many({"count_pending": True}, {"$unset": {"count_pending": ""}})

    async def tallies(self) -> tuple[dict[str, int], dict[str, datetime]]:
        """The ledger's counts (summed over its shards) and each status's floor."""
        counts: dict[str, int] = {}
        floors: dict[str, datetime] = {}
        async for shard in self.totals.find({}, {"counts": 1, "floors": 1}):
            for key, n in (shard.get("counts") or {}).items():
                counts[key] = counts.get(key, 0) + n
            for key, at in (shard.get("floors") or {}).items():
                floors[key] = min(at, floors.get(key, at))
        return counts, floors

    async def real_counts(self) -> dict[str, int]:
        """What the ledger should say, counted file by file (tests and checks: slow by design)."""
        counts: dict[str, int] = {}
        async for d in self.dossiers.find({"status": {"$in": list(REVIEWED)}}, {"status": 1, "schools": 1}):
            for key in count_keys(d["status"], d.get("schools") or []):
                counts[key] = counts.get(key, 0) + 1
        return counts

    # ---- dossiers -------------------------------------------------------------------------------

    async def insert(self, dossier: dict[str, Any]) -> None:
        # A new file (a draft) counts nowhere: no settle, six database commands saved per file.
        counted = bool(count_keys(dossier.get("status", ""), dossier.get("schools") or []))
        try:
            await self.dossiers.insert_one(new_document_with_events(
                {**dossier, **COUNT_MARK_INC, **(COUNT_MARK_SET if counted else {})}, []))
        except Exception as exc:
            if is_duplicate_key(exc):
                raise DossierExists from exc
            raise
        if counted:
            await self.settle(dossier["_id"])

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
        was: str | None = None,
    ) -> bool:
        """Compare-and-set: writes only if nobody wrote since ``version`` was read. ``was``: the
        status read with ``version``; a write that leaves the file outside the statuses the queue
        counts, from outside them, moves no count and skips the settle (a draft's edits)."""
        status = fields.get("status")
        counted = "schools" in fields or (status is not None and (status in REVIEWED or was is None or was in REVIEWED))
        update: dict[str, Any] = {"$set": {**fields, **(COUNT_MARK_SET if counted else {})},
                                  "$inc": {"version": 1, **(COUNT_MARK_INC if counted else {})}}
        if push:
            update["$push"] = push
        if unset:
            update["$unset"] = {f: "" for f in unset}
        result = await self.dossiers.update_one({"_id": dossier_id, "version": version}, with_events(update, events))
        if result.modified_count != 1:
            return False
        if counted:
            await self.settle(dossier_id)
        return True

    async def erase(self, account_id: str, fields: dict[str, Any], unset: list[str]) -> int:
        ids = [d["_id"] async for d in self.dossiers.find({"account_id": account_id}, {"_id": 1})]
        result = await self.dossiers.update_many(
            {"account_id": account_id},
            {"$set": {**fields, **COUNT_MARK_SET}, "$unset": {f: "" for f in [*unset, "schools"]},
             "$inc": {"version": 1, **COUNT_MARK_INC}}
        )
        for dossier_id in ids:
            await self.settle(dossier_id)
        await self.enrolments.delete_many({"account_id": account_id})
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
        """One keyset page of files with ``status``, oldest submission first: the files submitted at
        the cursor's instant with a greater id, then the later ones, read window by window on the
        (status, submitted_at, _id) index (see the module's doc)."""
        limit = min(max(limit, 1), MAX_PAGE)
        lower = submitted_from
        ties: list[dict[str, Any]] = []
        if after is not None:
            at, dossier_id = after
            if (submitted_from is None or at >= submitted_from) and (submitted_to is None or at < submitted_to):
                ties = await self._page({"status": status, "submitted_at": at, "_id": {"$gt": dossier_id}}, limit)
            if submitted_from is None or submitted_from <= at:
                lower = just_after(at)
        if len(ties) >= limit:
            return ties[:limit]
        counts, floors = await self.tallies()
        return ties + await self._walk([{"status": status}], limit - len(ties), lower=lower, upper=submitted_to,
                                       count=counts.get(status, 0), floor=floors.get(status))

    async def search(
        self,
        *,
        status: str | None,
        terms: list[str] = (),  # type: ignore[assignment]
        assigned_to: str | None = None,
        unassigned_at: datetime | None = None,
        submitted_until: datetime | None = None,
        school: str | None = None,
        newest_first: bool = False,
        page: int = 1,
        limit: int = 20,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """One numbered page of files, the total and whether it is capped at ``MAX_COUNT``.

        A search (words, « assigned to me ») is an equality on an indexed value: its page and its
        count read only its own keys. A listing (a status, all four, a school; free or overdue)
        reads its page window by window and takes its total from the ledger, less the leases in
        force (« libres ») and the files submitted after the bound (« en retard »), both counted on
        their own narrow ranges. ``school``: a school one of the file's children is enrolled in or
        asked for. Unassigned means no lease or an expired one (``unassigned_at`` is now)."""
        limit = min(max(limit, 1), MAX_PAGE)
        filter_: dict[str, Any] = {}
        if terms:
            filter_["search"] = terms[0] if len(terms) == 1 else {"$all": list(terms)}
        if status is not None:
            filter_["status"] = status
        elif not terms:
            filter_["status"] = {"$in": list(REVIEWED)}
        if school is not None:
            filter_["schools"] = school
        if assigned_to is not None:
            filter_["assignment.agent_id"] = assigned_to
        if unassigned_at is not None:
            # A lease that ended counts as no lease: "until" absent or in the past.
            filter_["assignment.until"] = {"$not": {"$gt": unassigned_at}}
        skip = (max(page, 1) - 1) * limit
        if terms or assigned_to is not None:
            if submitted_until is not None:
                filter_["submitted_at"] = {"$lte": submitted_until}
            direction = -1 if newest_first else 1
            cursor = (self.dossiers.find(filter_, QUEUE_FIELDS)
                      .sort([("submitted_at", direction), ("_id", direction)]).skip(skip).limit(limit))
            rows = [d async for d in cursor]
            if page == 1 and len(rows) < limit:
                return rows, len(rows), False  # the whole result is on this page: no count needed
            total = await self.dossiers.count_documents(filter_, limit=MAX_COUNT)
            return rows, total, total >= MAX_COUNT
        statuses = [status] if status is not None else list(REVIEWED)
        counts, floors = await self.tallies()
        counted = sum(counts.get(s if school is None else f"{s}:{school}", 0) for s in statuses)
        known = [floors[s] for s in statuses if s in floors]
        upper = just_after(submitted_until) if submitted_until is not None else None
        # One walk per status, merged (an $in or a lease condition would have the local server
        # read a whole status); « libres » is checked on the rows read (a lease is rare).
        listing = [{**{k: v for k, v in filter_.items() if k != "assignment.until"}, "status": s} for s in statuses]
        keep = (lambda row: is_free(row, unassigned_at)) if unassigned_at is not None else None
        rows = (await self._walk(listing, skip + limit, upper=upper, newest_first=newest_first, keep=keep,
                                 count=counted, floor=min(known) if known else None))[skip:]
        if page == 1 and len(rows) < limit:
            return rows, len(rows), False
        return rows, await self._listing_total(statuses, school, counted, unassigned_at, upper), False

    async def _listing_total(self, statuses: list[str], school: str | None, counted: int,
                             unassigned_at: datetime | None, upper: datetime | None) -> int:
        """The ledger's count less what the filters leave out: the files submitted at or after
        ``upper`` (not yet overdue), counted on their own range, and the files under a lease in
        force (few), read through ``(status, assignment.until)`` and checked here, so that the
        local server is never asked a condition no index serves whole."""
        total = counted
        for status in statuses:
            if upper is not None:
                recent = {"status": status, "submitted_at": {"$gte": upper}, **({"schools": school} if school else {})}
                total -= await self.dossiers.count_documents(recent)
            if unassigned_at is not None:
                async for row in self.dossiers.find({"status": status, "assignment.until": {"$gt": unassigned_at}},
                                                    {"schools": 1, "submitted_at": 1}):
                    at = row.get("submitted_at")
                    if (school is None or school in (row.get("schools") or [])) and at is not None and (upper is None or at < upper):
                        total -= 1
        return max(total, 0)

    async def _walk(self, filters: list[dict[str, Any]], needed: int, *, lower: datetime | None = None,
                    upper: datetime | None = None, newest_first: bool = False, count: int, floor: datetime | None,
                    keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The first ``needed`` files matching one of ``filters`` (and ``keep``) in ``[lower, upper)``
        by submission time, read in windows that double (``windows``) until enough are found."""
        now = datetime.now(UTC)
        direction = -1 if newest_first else 1
        rows: list[dict[str, Any]] = []
        for start, end in windows(lower=lower, upper=upper, floor=floor, now=now, newest_first=newest_first,
                                  first=first_window(count, floor, now, needed)):
            found: list[dict[str, Any]] = []
            for filter_ in filters:
                found += await self._window(filter_, start, end, direction, needed - len(rows), keep)
            found.sort(key=lambda row: (row["submitted_at"], row["_id"]), reverse=newest_first)
            rows += found[:needed - len(rows)]
            if len(rows) >= needed:
                break
        return rows

    async def _window(self, filter_: dict[str, Any], start: datetime | None, end: datetime | None, direction: int,
                      wanted: int, keep: Callable[[dict[str, Any]], bool] | None) -> list[dict[str, Any]]:
        """The first ``wanted`` files of one window that ``keep`` keeps (asking for more rows when
        it dropped some and the window has more)."""
        limit = wanted
        while True:
            cursor = (self.dossiers.find({**filter_, "submitted_at": date_range(start, end)}, QUEUE_FIELDS)
                      .sort([("submitted_at", direction), ("_id", direction)]).limit(limit))
            batch = [d async for d in cursor]
            kept = batch if keep is None else [d for d in batch if keep(d)]
            if len(batch) < limit or len(kept) >= wanted:
                return kept[:wanted]
            limit *= 4

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
