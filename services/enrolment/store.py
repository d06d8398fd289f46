"""Database access of the enrolment service (motor). Every write that causes events carries them
in the same single-document update (the embedded outbox); no write spans two documents
atomically, so the code runs on a standalone mongod.

Collections of `ecp_enrolment`:
- `enrolments`: the aggregate (embedded outbox); unique `slot` = child:year while not refused.
- `schools`: reference data, with the default capacity per level and per-year overrides; embedded
  outbox (SchoolCapacityChanged of its defaults, written with them; `capacity_announced` once
  its capacities were announced).
- `seats`: one counter per (school, level, year): capacity, count, free. A seat is taken by a
  conditional ``$inc`` on ``free > 0``; that single-document update is the whole race. Embedded
  outbox: a capacity change carries its SchoolCapacityChanged.
- `sector_maps`: one document per imported map version (its segments and validation report);
  `sector_current`: the one document naming the current version (switching maps is one update).
- `dossiers`: projection of household's DossierValidated events.
- `sector_findings`: one document per submitted file (its id): the sector school each child would
  get, from household's HouseholdSubmitted; embedded outbox (its SectorSchoolsFound).
- `counters`: one document per school year numbering its enrolments' short references.

An enrolment's ``reference`` is unique (a sparse unique index: only documents that have one).
Enrolments made before references were counted have ``INS-<year>-<8 hex of the id>``: two of
them may share it (32 bits of a random id), so at start the duplicates are renumbered before the
index is made unique (``EnrolmentService.make_references_unique``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError, OperationFailure

from services.enrolment.domain import Status
from services.kernel.mongo import Database, as_utc, next_number, update_and_read
from services.kernel.outbox import applied_once, new_document_with_events, with_events

ENROLMENTS = "enrolments"
SCHOOLS = "schools"
SEATS = "seats"
MAPS = "sector_maps"
CURRENT = "sector_current"
DOSSIERS = "dossiers"
SECTOR_FINDINGS = "sector_findings"
TRAIL = "trail"
COUNTERS = "counters"
CURRENT_ID = "current"
NO_OUTBOX = {"outbox": 0, "applied_events": 0}
REFERENCE_INDEX = "reference_1"
INDEX_NOT_FOUND = 27  # the server's code when the index to drop is already gone


class AlreadyExists(Exception):
    pass


class ReferenceTaken(Exception):
    """Another enrolment has this reference (a counter set back, by a restore say): take the next."""


class EnrolmentStore:
    def __init__(self, db: Database) -> None:
        self.enrolments = db[ENROLMENTS]
        self.schools = db[SCHOOLS]
        self.seats = db[SEATS]
        self.maps = db[MAPS]
        self.current = db[CURRENT]
        self.dossiers = db[DOSSIERS]
        self.sector_findings = db[SECTOR_FINDINGS]
        self.trail = db[TRAIL]
        self.counters = db[COUNTERS]

    async def ensure_indexes(self) -> None:
        await self.enrolments.create_index("slot", unique=True)
        await self.enrolments.create_index([("account_id", 1), ("school_year", 1)])
        await self.enrolments.create_index([("school_id", 1), ("school_year", 1), ("status", 1)])
        await self.enrolments.create_index([("status", 1), ("certificate_due", 1)])
        # of_school / pending: the out-of-sector side of their two queries.
        await self.enrolments.create_index([("derogation.requested_school_id", 1), ("school_year", 1)])
        await self.enrolments.create_index([("derogation.status", 1), ("created_at", 1)])
        await self.dossiers.create_index([("account_id", 1), ("validated_at", -1)])
        await self.sector_findings.create_index("account_id")
        await self.enrolments.create_index("verification_code")
        await self.trail.create_index([("at", -1), ("_id", -1)])
        await self.trail.create_index([("enrolment_id", 1), ("at", -1)])
        # An agent's search by reference (« Inscriptions à décider », « Journal des décisions »):
        # the unique index on ``reference`` is made by make_reference_index_unique, once any
        # duplicate left by the older references is renumbered; a renumbered one is still found
        # by the reference it had.
        await self.enrolments.create_index("former_reference", sparse=True)
        await self.trail.create_index([("reference", 1), ("at", -1)])

    # ---- dossier projection ----------------------------------------------------------------

    async def project_dossier(self, dossier: dict[str, Any], event_id: str) -> bool:
        """Upserts the dossier's projection once per event id; False when already applied."""
        filter_, update = applied_once({"_id": dossier["_id"]}, {"$set": dossier}, event_id)
        try:
            result = await self.dossiers.update_one(filter_, update, upsert=True)
        except DuplicateKeyError:
            return False  # the document exists and already recorded this event
        return result.modified_count == 1 or result.upserted_id is not None

    async def dossier_of(self, account_id: str) -> dict[str, Any] | None:
        cursor = self.dossiers.find({"account_id": account_id}, {"applied_events": 0}).sort("validated_at", -1).limit(1)
        return next(iter([d async for d in cursor]), None)

    async def delete_dossiers(self, account_id: str) -> None:
        await self.dossiers.delete_many({"account_id": account_id})
        await self.sector_findings.delete_many({"account_id": account_id})

    async def record_sector_findings(self, dossier_id: str, finding: dict[str, Any], events: list[dict[str, Any]],
                                     event_id: str) -> bool:
        """Upserts a file's sector schools with their event, once per event id and never over a
        later submission's; False when nothing was written."""
        filter_, update = applied_once({"_id": dossier_id, "submitted_at": {"$not": {"$gt": finding["submitted_at"]}}},
                                       with_events({"$set": finding}, events), event_id)
        try:
            result = await self.sector_findings.update_one(filter_, update, upsert=True)
        except DuplicateKeyError:
            return False  # this event already recorded, or a later submission's
        return result.modified_count == 1 or result.upserted_id is not None

    # ---- schools and seats -----------------------------------------------------------------

    async def school(self, school_id: str) -> dict[str, Any] | None:
        return await self.schools.find_one({"_id": school_id})

    async def all_schools(self) -> list[dict[str, Any]]:
        return [s async for s in self.schools.find({}).sort("_id", 1)]

    async def put_school(self, school: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Creates or replaces the school's fields with the capacity events they cause, in one
        write ($set, not a replacement: events still waiting in its outbox stay)."""
        fields = {k: v for k, v in school.items() if k != "_id"}
        await self.schools.update_one({"_id": school["_id"]},
                                      with_events({"$set": {**fields, "capacity_announced": True}}, events), upsert=True)

    async def announce_school(self, school_id: str, events: list[dict[str, Any]]) -> bool:
        """Writes the first announcement of a school's capacities, once: conditional on the mark
        set in the same write (a second start, or two at once, announce nothing)."""
        result = await self.schools.update_one({"_id": school_id, "capacity_announced": {"$ne": True}},
                                               with_events({"$set": {"capacity_announced": True}}, events))
        return result.modified_count == 1

    async def set_year_capacity(self, school_id: str, year: int, level: str, capacity: int) -> None:
        """The school's own capacity for a year, used when that year's seat counter is created
        (the counter holds the capacity once it exists, and announces its changes)."""
        await self.schools.update_one({"_id": school_id}, {"$set": {f"capacities.{year}.{level}": capacity}})

    async def insert_school_if_absent(self, school: dict[str, Any]) -> None:
        try:
            await self.schools.update_one({"_id": school["_id"]}, {"$setOnInsert": school}, upsert=True)
        except DuplicateKeyError:
            pass

    async def seat(self, seat_id: str) -> dict[str, Any] | None:
        return await self.seats.find_one({"_id": seat_id}, NO_OUTBOX)

    async def seats_of(self, school_id: str, school_year: int) -> list[dict[str, Any]]:
        return [s async for s in self.seats.find({"school_id": school_id, "school_year": school_year})]

    async def ensure_seat(self, seat_id: str, school_id: str, level: str, school_year: int, capacity: int) -> None:
        try:
            await self.seats.update_one(
                {"_id": seat_id},
                {"$setOnInsert": {"school_id": school_id, "level": level, "school_year": school_year,
                                  "capacity": capacity, "count": 0, "free": capacity}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # created by a concurrent request

    async def take_seat(self, seat_id: str, holder: str, now: datetime) -> bool:
        """The atomic check: one update that matches only while a seat is free. It also records
        which enrolment holds the seat (``holds.<enrolment id>``), in the same write, so a seat
        whose enrolment was never written (a crash in between) can be found and given back."""
        result = await self.seats.update_one(
            {"_id": seat_id, "free": {"$gt": 0}},
            {"$inc": {"free": -1, "count": 1}, "$set": {f"holds.{holder}": {"at": now}}},
        )
        return result.modified_count == 1

    async def release_seat(self, seat_id: str, holder: str) -> bool:
        """Gives back the seat ``holder`` holds; False if it holds none there (already given back)."""
        result = await self.seats.update_one(
            {"_id": seat_id, f"holds.{holder}": {"$exists": True}},
            {"$inc": {"free": 1, "count": -1}, "$unset": {f"holds.{holder}": ""}},
        )
        if result.modified_count == 1:
            return True
        seat = await self.seats.find_one({"_id": seat_id})
        if seat is None or holder in seat.get("holds", {}) or seat["count"] <= len(seat.get("holds", {})):
            return False
        # Taken before holders were recorded: every counted seat beyond the recorded holds is
        # such an older one, and this is compare-and-set on the count.
        result = await self.seats.update_one(
            {"_id": seat_id, "count": seat["count"]}, {"$inc": {"free": 1, "count": -1}}
        )
        return result.modified_count == 1

    async def seats_with_holds(self) -> list[dict[str, Any]]:
        # A few documents per school, level and year: the repair reads them all.
        return [s async for s in self.seats.find({"holds": {"$exists": True}}, {"holds": 1})]

    async def hold_checked(self, seat_id: str, holder: str) -> None:
        await self.seats.update_one(
            {"_id": seat_id, f"holds.{holder}": {"$exists": True}}, {"$set": {f"holds.{holder}.checked": True}}
        )

    async def change_capacity(self, seat_id: str, old: int, new: int, events: list[dict[str, Any]]) -> bool:
        """Sets the capacity if it is still ``old`` and the seats taken fit in ``new``, with the
        events announcing it in the same write."""
        result = await self.seats.update_one(
            {"_id": seat_id, "capacity": old, "free": {"$gte": old - new}},
            with_events({"$set": {"capacity": new}, "$inc": {"free": new - old}}, events),
        )
        return result.modified_count == 1

    # ---- sector map ------------------------------------------------------------------------

    async def current_map_version(self) -> str | None:
        doc = await self.current.find_one({"_id": CURRENT_ID})
        return doc["version"] if doc else None

    async def map_version(self, version: str) -> dict[str, Any] | None:
        return await self.maps.find_one({"_id": version})

    async def insert_map(self, doc: dict[str, Any]) -> None:
        await self.maps.insert_one(doc)

    async def switch_map(self, version: str, now: datetime, *, only_if_none: bool = False) -> bool:
        """The one write that replaces the map: the current pointer names the new version."""
        if only_if_none:
            try:
                await self.current.update_one(
                    {"_id": CURRENT_ID}, {"$setOnInsert": {"version": version, "switched_at": now}}, upsert=True
                )
            except DuplicateKeyError:
                return False
            return await self.current_map_version() == version
        await self.current.update_one({"_id": CURRENT_ID}, {"$set": {"version": version, "switched_at": now}}, upsert=True)
        await self.maps.update_one({"_id": version}, {"$set": {"applied_at": now}})
        return True

    async def map_versions(self, limit: int = 20) -> list[dict[str, Any]]:
        cursor = self.maps.find({}, {"segments": 0}).sort("created_at", -1).limit(limit)
        return [d async for d in cursor]

    # ---- enrolments ------------------------------------------------------------------------

    async def insert_enrolment(self, enrolment: dict[str, Any], events: list[dict[str, Any]]) -> None:
        try:
            await self.enrolments.insert_one(new_document_with_events(enrolment, events))
        except DuplicateKeyError as exc:
            if "reference" in ((exc.details or {}).get("keyPattern") or {}) or REFERENCE_INDEX in str(exc):
                raise ReferenceTaken from exc
            raise AlreadyExists from exc

    async def get(self, enrolment_id: str) -> dict[str, Any] | None:
        return await self.enrolments.find_one({"_id": enrolment_id}, NO_OUTBOX)

    async def next_number(self, name: str) -> int:
        """The next number of a counter (one per school year for references): atomic, never reused."""
        return await next_number(self.counters, name)

    async def with_reference(self, reference: str) -> list[dict[str, Any]]:
        # Two equalities on two indexes, not one $or (the local server scans the collection for it).
        found = [e async for e in self.enrolments.find({"reference": reference}, NO_OUTBOX).limit(10)]
        return found + [e async for e in self.enrolments.find({"former_reference": reference}, NO_OUTBOX).limit(10)]

    # ---- unique references -----------------------------------------------------------------

    async def reference_index_unique(self) -> bool:
        spec = (await self.enrolments.index_information()).get(REFERENCE_INDEX)
        return bool(spec and spec.get("unique"))

    async def duplicate_references(self) -> list[list[dict[str, Any]]]:
        """The enrolments sharing a reference, grouped by reference (``_id``, ``reference``,
        ``school_year``, ``created_at`` each). Reads the whole collection: run only while the
        unique index does not exist yet."""
        pipeline = [
            {"$match": {"reference": {"$type": "string"}}},
            {"$group": {"_id": "$reference", "n": {"$sum": 1}, "enrolments": {"$push": {
                "_id": "$_id", "reference": "$reference", "school_year": "$school_year", "created_at": "$created_at"}}}},
            {"$match": {"n": {"$gt": 1}}},
        ]
        return [group["enrolments"] async for group in self.enrolments.aggregate(pipeline)]

    async def renumber(self, enrolment_id: str, reference: str, new_reference: str, now: datetime) -> bool:
        """Gives the enrolment ``new_reference`` if it still has ``reference``; keeps the old one
        as ``former_reference`` (printed on a certificate already, quoted in an email)."""
        result = await self.enrolments.update_one(
            {"_id": enrolment_id, "reference": reference},
            {"$set": {"reference": new_reference, "former_reference": reference, "reference_changed_at": now}})
        return result.modified_count == 1

    async def make_reference_index_unique(self) -> None:
        """The plain index of the older versions replaced by a unique one, sparse (documents
        without a reference stay out of it; none is written without one). Fails with a duplicate
        key error if two enrolments still share a reference: the caller renumbers them first."""
        spec = (await self.enrolments.index_information()).get(REFERENCE_INDEX)
        if spec and not spec.get("unique"):
            try:
                await self.enrolments.drop_index(REFERENCE_INDEX)
            except OperationFailure as exc:
                if exc.code != INDEX_NOT_FOUND:  # another replica dropped it first
                    raise
        await self.enrolments.create_index("reference", unique=True, sparse=True, name=REFERENCE_INDEX)

    async def update(
        self, enrolment_id: str, expect: dict[str, Any], update: dict[str, Any], events: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Applies ``update`` (with its events) if the enrolment still matches ``expect``."""
        return await update_and_read(self.enrolments, {"_id": enrolment_id, **expect}, with_events(update, events),
                                     projection=NO_OUTBOX)

    async def of_account(self, account_id: str) -> list[dict[str, Any]]:
        cursor = self.enrolments.find({"account_id": account_id}, NO_OUTBOX).sort("created_at", -1)
        return [e async for e in cursor]

    async def of_school(self, school_id: str, school_year: int) -> list[dict[str, Any]]:
        """Enrolments at the school and requests to move there. Two indexed queries merged here:
        a ``$or`` would make the local database server scan every enrolment."""
        found = await self._union(
            {"school_id": school_id, "school_year": school_year},
            {"derogation.requested_school_id": school_id, "school_year": school_year},
        )
        return sorted(found, key=lambda e: (e.get("level") or "", (e.get("child") or {}).get("last_name") or ""))

    async def pending(self, school_id: str | None, school_year: int | None, limit: int = 500) -> list[dict[str, Any]]:
        """Enrolments awaiting an agent's decision or with a pending out-of-sector request, oldest
        first (two indexed queries merged here, not a ``$or``: see ``of_school``)."""
        year = {"school_year": school_year} if school_year is not None else {}
        found = await self._union(  # a school's filter applies after the merge: no early limit then
            {"status": Status.PENDING_AGENT.value, **year}, {"derogation.status": "pending", **year},
            limit=0 if school_id else limit,
        )
        if school_id:
            found = [e for e in found
                     if e.get("school_id") == school_id or (e.get("derogation") or {}).get("requested_school_id") == school_id]
        return sorted(found, key=lambda e: e["created_at"])[:limit]

    async def _union(self, *queries: dict[str, Any], limit: int = 0) -> list[dict[str, Any]]:
        by_id: dict[str, dict[str, Any]] = {}
        for query in queries:
            async for enrolment in self.enrolments.find(query, NO_OUTBOX).sort("created_at", 1).limit(limit):
                by_id.setdefault(enrolment["_id"], enrolment)
        return list(by_id.values())

    async def due_certificates(self, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` confirmations whose certificate is due and not being rendered (no lease,
        or the lease of a process that died or failed has expired), oldest first. One read serves
        a whole batch: the local database server reads every due enrolment to answer it, sorted or
        not (about 130 ms of its CPU when 5,000 are due), so a backlog is not read once per PDF.
        The candidates come from the (status, certificate_due) index; ``lease_certificate`` checks
        the lease again in its conditional update (a ``$or`` on the lease would make the local
        server scan every enrolment)."""
        due = self.enrolments.find(
            {"status": Status.CONFIRMED.value, "certificate_due": True}, {"certificate_lease_until": 1, "confirmed_at": 1}
        ).sort("confirmed_at", 1).limit(limit)
        return [c async for c in due if (lease := c.get("certificate_lease_until")) is None or as_utc(lease) < now]

    async def lease_certificate(self, candidate: dict[str, Any], until: datetime) -> dict[str, Any] | None:
        """Leases a candidate of ``due_certificates`` to the caller until ``until`` if it is still
        due and nobody leased it since it was read: two workers never render the same one at once."""
        lease = candidate.get("certificate_lease_until")
        still = {"certificate_lease_until": {"$exists": False}} if lease is None else {"certificate_lease_until": lease}
        return await update_and_read(
            self.enrolments,
            {"_id": candidate["_id"], "status": Status.CONFIRMED.value, "certificate_due": True, **still},
            {"$set": {"certificate_lease_until": until}},
            projection=NO_OUTBOX,
        )

    async def slot_taken(self, slot: str) -> bool:
        return await self.enrolments.find_one({"slot": slot}, {"_id": 1}) is not None

    async def past_retention(self, before_school_year: int, limit: int = 200) -> list[dict[str, Any]]:
        cursor = self.enrolments.find({"school_year": {"$lt": before_school_year}, "erased_at": {"$exists": False}}, NO_OUTBOX)
        return [e async for e in cursor.limit(limit)]

    async def purge_old(self, *, trail_before: datetime, dossiers_before: datetime) -> dict[str, int]:
        """Retention: the audit trail's old entries; the projection of files validated long ago."""
        trail = await self.trail.delete_many({"at": {"$lt": trail_before}})
        dossiers = await self.dossiers.delete_many({"validated_at": {"$lt": dossiers_before}})
        findings = await self.sector_findings.delete_many({"found_at": {"$lt": dossiers_before}})
        return {"trail_entries": trail.deleted_count, "dossier_projections": dossiers.deleted_count,
                "sector_findings": findings.deleted_count}

    async def anonymise(self, enrolment_id: str, now: datetime, *, has_derogation: bool) -> None:
        """Erasure: no account, child, address or free text left; school, level, year, status stay."""
        unset = {"dossier_id": "", "decision_note": ""}
        if has_derogation:
            unset["derogation.reason_text"] = ""
        await self.enrolments.update_one(
            {"_id": enrolment_id},
            {"$set": {"account_id": None, "erased_at": now, "child": {"child_id": None}, "address": None,
                      "certificate": None, "certificate_due": False, "verification_code": None}, "$unset": unset},
        )

    async def withdraw_erased_derogations(self, now: datetime) -> int:
        """Dérogations of accounts erased before erasure withdrew them (they stayed « pending »
        in the agents' queue): withdrawn now. Idempotent, run at start."""
        result = await self.enrolments.update_many(
            {"derogation.status": "pending", "erased_at": {"$ne": None}},
            {"$set": {"derogation.status": "withdrawn", "derogation.withdrawn_at": now}},
        )
        return result.modified_count

    async def by_verification_code(self, code: str) -> dict[str, Any] | None:
        return await self.enrolments.find_one({"verification_code": code}, NO_OUTBOX)

    # ---- the decision trail (who decided what, when) ----------------------------------------------

    async def record(self, entry: dict[str, Any]) -> None:
        """One line of the trail, written once the decision it tells is stored. Its id comes from
        the decision (an enrolment's version of events, a map version) so a retry writes it once."""
        try:
            await self.trail.insert_one(entry)
        except DuplicateKeyError:
            pass

    async def trail_page(self, *, enrolment_id: str | None, action: str | None, page: int, limit: int,
                         reference: str | None = None) -> tuple[list[dict[str, Any]], int]:
        filter_: dict[str, Any] = {}
        if enrolment_id:
            filter_["enrolment_id"] = enrolment_id
        if reference:
            filter_["reference"] = reference
        if action:
            filter_["action"] = action
        rows = [e async for e in self.trail.find(filter_).sort([("at", -1), ("_id", -1)]).skip((page - 1) * limit).limit(limit)]
        total = len(rows) if page == 1 and len(rows) < limit else await self.trail.count_documents(filter_)
        return rows, total
