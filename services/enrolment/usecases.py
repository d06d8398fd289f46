"""What each enrolment request, event and background job does: domain rules, then store writes
carrying their events. Failures are ``EnrolmentError`` subclasses with a French message that the
API maps to an HTTP status; none is a 500.

Seats: a seat is taken by one conditional update of the (school, level, year) counter before the
enrolment that holds it is written, and given back if that write does not happen. Certificates:
an enrolment is confirmed with ``certificate_due`` (in the same write), and the request answers
at once. The certificate worker (``run_certificate_worker``, woken by the confirmation) leases a
due enrolment, renders the PDF, puts it in S3, then one conditional update records it together
with EnrolmentConfirmed: exactly once, since only an enrolment still ``certificate_due`` matches.
A crash or a failure leaves ``certificate_due`` and the lease expires, so another pass (this
process after a restart, or another replica) finishes it; EnrolmentConfirmed always means "the
certificate can be downloaded". Until then the certificate answers a French 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

from services.enrolment import domain, events
from services.enrolment.certificate import Certificate, render_pdf
from services.enrolment.domain import Level, PendingReason, SchoolType, SectorIndex, Segment, Status
from services.enrolment.settings import EnrolmentSettings
from services.enrolment.store import AlreadyExists, EnrolmentStore, ReferenceTaken
from services.kernel.envelope import EventData, new_event
from services.kernel.logging import get_logger
from services.kernel.objectstore import ObjectStore
from services.kernel.outbox import outbox_entry

SOURCE = "/services/enrolment"
DATA_DIR = Path(__file__).parent / "data"
log = get_logger(__name__)


class EnrolmentError(Exception):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(EnrolmentError):
    pass


class Forbidden(EnrolmentError):
    pass


class Conflict(EnrolmentError):
    pass


class Invalid(EnrolmentError):
    pass


class Unavailable(EnrolmentError):
    pass


class NotReadyYet(Conflict):
    """Will be there in a few seconds (the certificate being rendered)."""


@dataclass(frozen=True)
class DerogationRequest:
    requested_school_id: str
    reason_category: domain.ReasonCategory
    reason_text: str


@dataclass(frozen=True)
class DownloadLink:
    url: str
    expires_in: int
    filename: str
    content_type: str = "application/pdf"


def _iso(d: date) -> str:
    return d.isoformat()


# A counted reference already taken (the counter set back) is retried with the next numbers.
REFERENCE_TRIES = 5


class EnrolmentService:
    def __init__(
        self,
        store: EnrolmentStore,
        objects: ObjectStore,
        settings: EnrolmentSettings,
        *,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.objects = objects
        self.settings = settings
        self._events_queued = events_queued
        self._now = clock
        self._index_cache: dict[str, SectorIndex] = {}
        self._certificate_wake = asyncio.Event()

    # ---- helpers -------------------------------------------------------------------------------

    def today(self) -> date:
        return self.settings.enrolment_today or self._now().date()

    def open_years(self) -> list[int]:
        """The school years families may enrol for today (the year in progress, the next rentrée)."""
        return domain.open_school_years(self.today(), current_until=self.settings.current_year_until,
                                        next_opens=self.settings.next_year_opens)

    def coming_year(self) -> int:
        """The year shown when none is asked: the next rentrée once its campaign is open."""
        return self.open_years()[-1]

    def _sector_segment(self, index: SectorIndex | None, address: dict[str, Any]) -> tuple[Segment | None, bool]:
        """The map segment of an address and whether the address is in the town at all: the map
        knows street names only, and « rue des Lilas, 75011 Paris » is not Montclair's."""
        inside = domain.in_town(str(address.get("postcode", "")), str(address.get("town", "")),
                                town_name=self.settings.town_name, town_postcodes=self.settings.postcodes)
        if not inside or index is None:
            return None, inside
        return index.lookup(address["street"], address["number"]), inside

    def _out_of_town_message(self, address: dict[str, Any]) -> str:
        return domain.OUT_OF_TOWN.format(postcode=address.get("postcode", ""), town=address.get("town", ""),
                                         town_name=self.settings.town_name)

    def _entries(self, *datas: EventData, subject: str, correlation_id: str | None, causation_id: str | None = None) -> list[dict[str, Any]]:
        return [
            outbox_entry(new_event(d, source=SOURCE, subject=subject, correlation_id=correlation_id, causation_id=causation_id), d.topic)
            for d in datas
        ]

    async def _school(self, school_id: str) -> dict[str, Any]:
        school = await self.store.school(school_id)
        if school is None:
            raise NotFound(domain.SCHOOL_NOT_FOUND)
        return school

    @staticmethod
    def capacity_for(school: dict[str, Any], level: str, year: int) -> int:
        override = school.get("capacities", {}).get(str(year), {})
        return int(override.get(level, school.get("capacity", {}).get(level, 0)))

    async def _take_seat(self, school: dict[str, Any], level: str, year: int, enrolment_id: str) -> str | None:
        seat = domain.seat_id(school["_id"], level, year)
        await self.store.ensure_seat(seat, school["_id"], level, year, self.capacity_for(school, level, year))
        return seat if await self.store.take_seat(seat, enrolment_id, self._now()) else None

    async def repair_seats(self) -> int:
        """Gives back the seats taken for an enrolment that does not hold them: the service died
        between taking the seat and writing the enrolment (or its new school). Only holds older
        than ``seat_hold_grace_s`` are looked at: a request in flight has not written yet. A
        hold whose enrolment has it is marked checked and not looked at again."""
        cutoff = self._now() - timedelta(seconds=self.settings.seat_hold_grace_s)
        repaired = 0
        for seat in await self.store.seats_with_holds():
            for enrolment_id, hold in seat["holds"].items():
                if hold.get("checked") or _aware(hold["at"]) > cutoff:
                    continue
                enrolment = await self.store.get(enrolment_id)
                if enrolment is not None and enrolment.get("seat_id") == seat["_id"]:
                    await self.store.hold_checked(seat["_id"], enrolment_id)
                elif await self.store.release_seat(seat["_id"], enrolment_id):
                    repaired += 1
                    log.warning("seat given back: its enrolment was never written", seat_id=seat["_id"], enrolment_id=enrolment_id)
        return repaired

    async def run_seat_repair(self) -> None:
        while True:
            await asyncio.sleep(self.settings.seat_repair_interval_s)
            try:
                await self.repair_seats()
            except Exception as exc:
                log.warning("seat repair pass failed, will retry", error=repr(exc))

    # ---- reference data ------------------------------------------------------------------------

    async def load_sample_data(self) -> None:
        """Idempotent: schools are inserted when absent; the sample map only when no map exists."""
        for s in json.loads((DATA_DIR / "schools.json").read_text(encoding="utf-8")):
            await self.store.insert_school_if_absent(self._school_doc(s["id"], s))
        if await self.store.current_map_version() is not None:
            return
        raw = (DATA_DIR / "sector_map.csv").read_bytes()
        version = f"sample-{sha256(raw).hexdigest()[:12]}"
        if await self.store.map_version(version) is None:
            report = domain.parse_sector_csv(domain.decode_csv(raw), await self._school_levels())
            with contextlib.suppress(Exception):  # a concurrent start inserted it
                await self.store.insert_map(self._map_doc(version, report, "sector_map.csv (exemple)", "system"))
        if await self.store.switch_map(version, self._now(), only_if_none=True):
            log.info("sample sector map loaded", version=version)

    def _school_doc(self, school_id: str, s: dict[str, Any]) -> dict[str, Any]:
        kind = SchoolType(s["type"])
        allowed = domain.TYPE_LEVELS[kind]
        levels = [Level(level).value for level in s["levels"]]
        bad = [level for level in levels if Level(level) not in allowed]
        if bad or not levels:
            raise Invalid(f"Une école {kind.value} ne peut pas accueillir les niveaux : {', '.join(bad) or 'aucun'}.")
        capacity = {Level(k).value: int(v) for k, v in s.get("capacity", {}).items()}
        if any(k not in levels for k in capacity) or any(v < 0 for v in capacity.values()):
            raise Invalid("Les capacités doivent porter sur des niveaux accueillis par l'école et être positives.")
        return {"_id": school_id, "name": s["name"], "address": s["address"], "type": kind.value, "levels": levels,
                "capacity": capacity, "capacities": s.get("capacities", {})}

    async def _school_levels(self) -> dict[str, list[str]]:
        return {s["_id"]: s["levels"] for s in await self.store.all_schools()}

    async def schools(self) -> list[dict[str, Any]]:
        return await self.store.all_schools()

    async def school(self, school_id: str) -> dict[str, Any]:
        return await self._school(school_id)

    async def put_school(self, school_id: str, body: dict[str, Any], *, by: str = "") -> dict[str, Any]:
        existing = await self.store.school(school_id)
        doc = self._school_doc(school_id, {**body, "capacities": existing.get("capacities", {}) if existing else {}})
        # A school not announced yet announces all its capacities; else only those that changed.
        announced = existing if existing and existing.get("capacity_announced") else None
        await self.store.put_school(doc, self._capacity_entries(doc, domain.capacity_changes(announced, doc), by=by))
        self._events_queued()
        return doc

    async def announce_capacities(self) -> int:
        """Announces the capacities of every school not announced yet (the town's initial data, a
        database from before the event existed): once per school, however often it runs."""
        announced = 0
        for school in await self.store.all_schools():
            if not school.get("capacity_announced"):
                entries = self._capacity_entries(school, domain.capacity_changes(None, school))
                announced += await self.store.announce_school(school["_id"], entries)
        if announced:
            self._events_queued()
        return announced

    def _capacity_entries(self, school: dict[str, Any], changes: list[domain.CapacityChange], *, by: str = "") -> list[dict[str, Any]]:
        now = self._now()
        return self._entries(*(events.SchoolCapacityChanged(
            school_id=school["_id"], school_name=school["name"], level=c.level,
            school_year=None if c.school_year is None else domain.school_year_label(c.school_year),
            capacity=c.capacity, previous_capacity=c.previous, changed_at=now, changed_by=by or None) for c in changes),
            subject=school["_id"], correlation_id=None)

    async def set_capacity(self, school_id: str, year: int, level: Level, capacity: int, *, by: str = "") -> dict[str, Any]:
        school = await self._school(school_id)
        before = self.capacity_for(school, level.value, year)
        if level.value not in school["levels"]:
            raise Invalid(domain.LEVEL_NOT_OFFERED.format(school=school["name"], level=domain.level_label(level)))
        seat_id = domain.seat_id(school_id, level, year)
        # The counter starts at the capacity in force, so the change is one write that announces it.
        await self.store.ensure_seat(seat_id, school_id, level.value, year, before)
        for _ in range(10):
            seat = await self.store.seat(seat_id)
            assert seat is not None
            if seat["capacity"] == capacity:
                break
            change = domain.CapacityChange(level.value, year, capacity, seat["capacity"])
            if await self.store.change_capacity(seat_id, seat["capacity"], capacity,
                                                self._capacity_entries(school, [change], by=by)):
                self._events_queued()
                break
            seat = await self.store.seat(seat_id)
            if seat is not None and seat["count"] > capacity:
                raise Conflict(domain.CAPACITY_BELOW.format(
                    count=seat["count"], level=domain.level_label(level), label=domain.school_year_label(year)))
        else:
            raise Unavailable(domain.UNAVAILABLE)
        await self.store.set_year_capacity(school_id, year, level.value, capacity)
        if by and before != capacity:
            now = self._now()
            await self._record("capacity_changed", by, now, f"capacity:{school_id}:{year}:{level.value}:{now.isoformat()}", None,
                               school_id=school_id, level=level.value, school_year=year,
                               details={"from": before, "to": capacity})
        return await self.store.seat(seat_id) or {}

    # ---- sector map ----------------------------------------------------------------------------

    async def sector_index(self) -> SectorIndex | None:
        version = await self.store.current_map_version()
        if version is None:
            return None
        index = self._index_cache.get(version)
        if index is None:
            doc = await self.store.map_version(version)
            if doc is None:
                return None
            index = SectorIndex(Segment.of(s) for s in doc["segments"])
            self._index_cache = {version: index}
        return index

    async def validate_map(self, raw: bytes) -> domain.ImportReport:
        return domain.parse_sector_csv(domain.decode_csv(raw), await self._school_levels())

    def _map_doc(self, version: str, report: domain.ImportReport, source: str, by: str) -> dict[str, Any]:
        return {"_id": version, "created_at": self._now(), "created_by": by, "source_name": source,
                "segments": [s.as_dict() for s in report.segments], "report": report.as_dict(), "applied_at": None}

    async def import_map(self, raw: bytes, source: str, by: str) -> dict[str, Any]:
        """Stores the file as a new version with its report; nothing changes until it is applied."""
        report = await self.validate_map(raw)
        version = f"map-{self._now():%Y%m%d%H%M%S}-{sha256(raw).hexdigest()[:8]}"
        if await self.store.map_version(version) is None:
            await self.store.insert_map(self._map_doc(version, report, source, by))
            await self._record("sector_map_imported", by, self._now(), f"{version}:import", None, details={
                "version": version, "source_name": source, "segments": len(report.segments),
                "can_apply": report.as_dict().get("can_apply")})
        return {"import_id": version, **report.as_dict()}

    async def apply_map(self, version: str, *, by: str = "") -> dict[str, Any]:
        doc = await self.store.map_version(version)
        if doc is None:
            raise NotFound(domain.IMPORT_NOT_FOUND)
        if not doc["report"]["can_apply"]:
            raise Conflict(domain.IMPORT_HAS_ERRORS, {"report": doc["report"]})
        now = self._now()
        await self.store.switch_map(version, now)
        log.info("sector map switched", version=version, segments=len(doc["segments"]))
        if by:
            await self._record("sector_map_applied", by, now, f"{version}:apply:{now.isoformat()}", None,
                               details={"version": version, "source_name": doc.get("source_name"), "segments": len(doc["segments"])})
        return {"version": version, "segments": len(doc["segments"]), "applied": True}

    async def current_map(self) -> dict[str, Any]:
        version = await self.store.current_map_version()
        doc = await self.store.map_version(version) if version else None
        if doc is None:
            raise NotFound(domain.NO_MAP)
        return doc

    async def map_versions(self) -> list[dict[str, Any]]:
        return await self.store.map_versions()

    async def lookup(self, street: str, number: str, postcode: str | None = None, town: str | None = None) -> dict[str, Any]:
        """The sector of an address; given a postcode and a town, an address outside the town has none."""
        index = await self.sector_index()
        if postcode is None and town is None:
            segment, inside = (index.lookup(street, number) if index else None), True
        else:
            segment, inside = self._sector_segment(index, {"street": street, "number": number, "postcode": postcode or "", "town": town or ""})
        return {
            "street": street, "number": number, "postcode": postcode, "town": town, "in_town": inside,
            "found": segment is not None, "segment": segment.as_dict() if segment else None,
            "street_known": bool(inside and index and index.knows_street(street)),
        }

    # ---- the household projection (unlock) -----------------------------------------------------

    async def dossier_validated(self, data: Any, event_id: str) -> None:
        doc = {
            "_id": data.dossier_id,
            "account_id": data.account_id,
            "address": data.address.model_dump(),
            "children": [{**c.model_dump(), "birth_date": _iso(c.birth_date)} for c in data.children],
            "validated_at": data.validated_at,
            # The file's short reference, so the family's enrolment pages show it without asking household.
            "reference": data.reference,
            "projected_at": self._now(),
        }
        applied = await self.store.project_dossier(doc, event_id)
        log.info("dossier projected" if applied else "dossier event already applied", dossier_id=data.dossier_id)

    async def household_submitted(self, data: Any, event_id: str, *, correlation_id: str | None = None) -> None:
        """HouseholdSubmitted: the sector school each child would get for the coming rentrée (what
        the back-office queue files a submitted file under before any enrolment exists), recorded
        once per event with its SectorSchoolsFound in one single-document write; an older
        submission replayed late changes nothing."""
        if data.address is None or data.children is None:
            return  # published before submissions carried them: nothing to look up
        year = self.coming_year()
        segment, _ = self._sector_segment(await self.sector_index(), data.address.model_dump())
        children = []
        for child in data.children:
            placement, sector = await self._placement(child.birth_date, year, segment, None)
            # As a request would: a school the map names without the child's level is an agent's choice.
            known = sector is not None and placement.level is not None and placement.level.value in sector["levels"]
            children.append(events.ChildSectorSchool(child_id=child.child_id, school_id=sector["_id"] if known else None))  # type: ignore[index]
        now = self._now()
        found = events.SectorSchoolsFound(
            dossier_id=data.dossier_id, account_id=data.account_id, school_year=domain.school_year_label(year),
            children=children, on_map=segment is not None, submitted_at=data.submitted_at, found_at=now,
        )
        doc = {"account_id": data.account_id, "school_year": found.school_year, "on_map": found.on_map,
               "children": [c.model_dump() for c in children], "submitted_at": data.submitted_at, "found_at": now}
        entries = self._entries(found, subject=data.dossier_id, correlation_id=correlation_id, causation_id=event_id)
        if await self.store.record_sector_findings(data.dossier_id, doc, entries, event_id):
            self._events_queued()
            log.info("sector schools found", dossier_id=data.dossier_id, on_map=found.on_map)

    async def _dossier(self, account_id: str) -> dict[str, Any]:
        dossier = await self.store.dossier_of(account_id)
        if dossier is None:
            raise Forbidden(domain.NOT_UNLOCKED)
        return dossier

    # ---- what a family can do ------------------------------------------------------------------

    async def _placement(self, birth: date, year: int, segment: Segment | None, requested: dict[str, Any] | None
                         ) -> tuple[domain.Placement, dict[str, Any] | None]:
        """The level and the sector school (document) of a child for a year."""
        sector_id = domain.sector_school_by_age(segment, birth, year)
        sector = await self.store.school(sector_id) if sector_id else None
        target = requested or sector
        if target is not None:
            tps = Level.TPS.value in target["levels"]
        else:
            tps = any(Level.TPS.value in s["levels"] for s in await self.store.all_schools())
        return domain.level_for(birth, year, tps_offered=tps), sector

    def _year_choices(self) -> list[dict[str, Any]]:
        today, running = self.today(), domain.school_year_in_progress(self.today())
        return [{"school_year": domain.school_year_label(y), "school_year_start": y, "in_progress": y == running,
                 "title": domain.school_year_title(y, today)} for y in self.open_years()]

    def _open_year(self, asked: str | int | None) -> int:
        """The year asked for, if enrolments are open for it (the default one when none is asked)."""
        opened = self.open_years()
        if asked is None or not str(asked).strip():
            return opened[-1]
        year = domain.parse_school_year(asked)
        if year is None:
            raise Invalid(domain.BAD_YEAR.format(year=opened[-1], next=opened[-1] + 1))
        if year not in opened:
            titles = " et ".join(domain.school_year_title(y, self.today()) for y in opened)
            raise Invalid(domain.YEAR_CLOSED.format(years=titles))
        return year

    async def eligible(self, account_id: str, school_year: str | int | None = None) -> dict[str, Any]:
        """Each child's level and sector school for the year asked (the next rentrée by default),
        with the years open today to choose from."""
        year = self._open_year(school_year)
        dossier = await self.store.dossier_of(account_id)
        base = {"school_year": domain.school_year_label(year), "school_year_start": year,
                "school_year_title": domain.school_year_title(year, self.today()), "school_years": self._year_choices(),
                "dossier_reference": (dossier or {}).get("reference")}
        if dossier is None:
            return {**base, "unlocked": False, "message": domain.NOT_UNLOCKED, "children": [],
                    "address_in_town": None, "address_message": None}
        index = await self.sector_index()
        address = dossier["address"]
        segment, inside = self._sector_segment(index, address)
        running, opened = domain.school_year_in_progress(self.today()), self.open_years()
        existing = {e["child"]["child_id"]: e for e in await self.store.of_account(account_id)
                    if e["school_year"] == year and e["status"] in (Status.CONFIRMED, Status.PENDING_AGENT)}
        children = []
        for child in dossier["children"]:
            birth = date.fromisoformat(child["birth_date"])
            placement, sector = await self._placement(birth, year, segment, None)
            if not placement.ok and running in opened and year != running and domain.level_for(birth, running, tps_offered=False).ok:
                # Too old for the next rentrée, still of school age this year (a CM2 pupil moving in).
                placement = domain.Placement(None, f"{placement.message} {domain.ENROL_THIS_YEAR.format(label=domain.school_year_label(running))}")
            enrolment = existing.get(child["child_id"])
            children.append({
                "child_id": child["child_id"], "first_name": child["first_name"], "last_name": child["last_name"],
                "birth_date": child["birth_date"],
                "eligible": placement.ok, "message": placement.message,
                "level": placement.level.value if placement.level else None,
                "level_label": domain.level_label(placement.level) if placement.level else None,
                "sector_school": ({"id": sector["_id"], "name": sector["name"], "address": sector["address"]}
                                  if sector and placement.ok else None),
                "address_on_map": segment is not None,
                "enrolment": {"id": enrolment["_id"], "status": enrolment["status"]} if enrolment else None,
                "can_enrol": placement.ok and enrolment is None,
            })
        return {**base, "unlocked": True, "message": None, "children": children, "address_in_town": inside,
                "address_message": None if inside else self._out_of_town_message(address)}

    async def request(
        self, account_id: str, child_id: str, school_year: str | int, derogation: DerogationRequest | None,
        *, correlation_id: str | None = None,
    ) -> dict[str, Any]:
        if school_year is None or not str(school_year).strip():
            raise Invalid(domain.BAD_YEAR.format(year=self.coming_year(), next=self.coming_year() + 1))
        year = self._open_year(school_year)
        dossier = await self._dossier(account_id)
        child = next((c for c in dossier["children"] if c["child_id"] == child_id), None)
        if child is None:
            raise NotFound(domain.UNKNOWN_CHILD)
        slot = domain.slot(child_id, year)
        index = await self.sector_index()
        address = dossier["address"]
        segment, inside = self._sector_segment(index, address)
        requested = await self._school(derogation.requested_school_id) if derogation else None
        placement, sector = await self._placement(date.fromisoformat(child["birth_date"]), year, segment, requested)
        if not placement.ok:
            raise Invalid(placement.message or "")
        level = placement.level
        assert level is not None
        if derogation is not None:
            assert requested is not None
            self._check_derogation(derogation, requested, sector, level)
        if sector is not None and level.value not in sector["levels"] and derogation is None:
            sector = None  # the map names a school without that level: an agent decides
        label = domain.school_year_label(year)
        if await self.store.slot_taken(slot):
            raise Conflict(domain.ALREADY.format(label=label))

        enrolment_id = domain.new_enrolment_id()
        now = self._now()
        seat: str | None = None
        if derogation is not None:
            status, reason = Status.PENDING_AGENT, PendingReason.DEROGATION
        elif sector is None:
            status, reason = Status.PENDING_AGENT, PendingReason.ADDRESS
        else:
            seat = await self._take_seat(sector, level.value, year, enrolment_id)
            status, reason = (Status.CONFIRMED, None) if seat else (Status.PENDING_AGENT, PendingReason.NO_SEAT)
        school_id = requested["_id"] if requested else sector["_id"] if sector else None
        doc: dict[str, Any] = {
            "_id": enrolment_id, "reference": await self._new_reference(year), "slot": slot,
            "account_id": account_id, "dossier_id": dossier["_id"],
            "child": {k: child[k] for k in ("child_id", "first_name", "last_name", "birth_date")},
            "address": address, "school_year": year, "level": level.value,
            "sector_school_id": sector["_id"] if sector else None, "school_id": school_id, "seat_id": seat,
            "status": status.value, "pending_reason": reason.value if reason else None,
            "derogation": self._derogation_doc(derogation, now) if derogation else None,
            "created_at": now, "updated_at": now,
            "confirmed_at": now if status is Status.CONFIRMED else None, "certificate_due": status is Status.CONFIRMED,
            "certificate": None, "certificate_correlation_id": correlation_id,
            # Which year the family enrols for, as the agent reads it: mid-year (a family moving
            # in) or the next rentrée; and an address outside the town, which has no sector school.
            "mid_year": year == domain.school_year_in_progress(self.today()), "outside_town": not inside,
        }
        if status is Status.CONFIRMED:
            doc["verification_code"] = domain.new_verification_code()
        data = events.EnrolmentRequested(
            enrolment_id=enrolment_id, account_id=account_id, child_id=child_id, school_year=label, level=level.value,
            sector_school_id=doc["sector_school_id"], requested_school_id=requested["_id"] if requested else None,
            reason_category=derogation.reason_category.value if derogation else None,
            status=status.value, pending_reason=doc["pending_reason"], requested_at=now,
            mid_year=doc["mid_year"], outside_town=doc["outside_town"] or None,
        )
        try:
            for _ in range(REFERENCE_TRIES):
                try:
                    await self.store.insert_enrolment(doc, self._entries(data, subject=enrolment_id, correlation_id=correlation_id))
                    break
                except ReferenceTaken:  # the counter was set back (a restore): its next number is free
                    doc["reference"] = await self._new_reference(year)
            else:
                raise RuntimeError(f"no free enrolment reference after {REFERENCE_TRIES} numbers")
        except AlreadyExists:
            if seat:
                await self.store.release_seat(seat, enrolment_id)
            raise Conflict(domain.ALREADY.format(label=label)) from None
        except Exception:
            if seat:
                with contextlib.suppress(Exception):  # else the repair gives it back later
                    await self.store.release_seat(seat, enrolment_id)
            raise
        self._events_queued()
        log.info("enrolment requested", enrolment_id=enrolment_id, status=status.value, pending_reason=doc["pending_reason"])
        if status is Status.CONFIRMED:
            self.certificates_due()
        return doc

    @staticmethod
    def _derogation_doc(d: DerogationRequest, now: datetime) -> dict[str, Any]:
        return {"requested_school_id": d.requested_school_id, "reason_category": d.reason_category.value,
                "reason_text": d.reason_text, "status": "pending", "requested_at": now}

    @staticmethod
    def _check_derogation(d: DerogationRequest, requested: dict[str, Any], sector: dict[str, Any] | None, level: Level) -> None:
        if not d.reason_text:
            raise Invalid(domain.DEROGATION_TEXT_REQUIRED)
        if level.value not in requested["levels"]:
            raise Invalid(domain.LEVEL_NOT_OFFERED.format(school=requested["name"], level=domain.level_label(level)))
        if sector is not None and sector["_id"] == requested["_id"]:
            raise Invalid(domain.SAME_SCHOOL)

    async def _owned(self, enrolment_id: str, account_id: str, role: str) -> dict[str, Any]:
        enrolment = await self.store.get(enrolment_id)
        if enrolment is None or (role == "family" and enrolment.get("account_id") != account_id):
            raise NotFound(domain.NOT_FOUND)
        return enrolment

    async def get(self, enrolment_id: str, account_id: str, role: str) -> dict[str, Any]:
        return await self._owned(enrolment_id, account_id, role)

    async def mine(self, account_id: str) -> list[dict[str, Any]]:
        return await self.store.of_account(account_id)

    async def ask_derogation(self, enrolment_id: str, account_id: str, d: DerogationRequest) -> dict[str, Any]:
        enrolment = await self._owned(enrolment_id, account_id, "family")
        if enrolment["status"] == Status.REFUSED:
            raise Conflict(domain.CLOSED)
        if (enrolment.get("derogation") or {}).get("status") == "pending":
            raise Conflict(domain.DEROGATION_PENDING)
        requested = await self._school(d.requested_school_id)
        if enrolment.get("school_id") == requested["_id"] and enrolment["status"] == Status.CONFIRMED:
            raise Invalid(domain.SAME_SCHOOL)
        sector = await self.store.school(enrolment["sector_school_id"]) if enrolment.get("sector_school_id") else None
        self._check_derogation(d, requested, sector, Level(enrolment["level"]))
        updated = await self.store.update(
            enrolment_id, {"status": enrolment["status"], "derogation.status": {"$ne": "pending"}},
            {"$set": {"derogation": self._derogation_doc(d, self._now()), "updated_at": self._now()}}, [],
        )
        if updated is None:
            raise Conflict(domain.DEROGATION_PENDING)
        return updated

    async def certificate_link(self, enrolment_id: str, account_id: str, role: str) -> DownloadLink:
        enrolment = await self._owned(enrolment_id, account_id, role)
        if enrolment["status"] != Status.CONFIRMED:
            raise Conflict(domain.CERTIFICATE_NONE)
        if not enrolment.get("certificate"):
            raise NotReadyYet(domain.CERTIFICATE_NOT_READY)
        ttl = min(self.settings.download_link_ttl_s, 300)
        filename = f"certificat-inscription-{enrolment['reference']}.pdf"
        url = await self.objects.download_url(
            enrolment["certificate"]["key"], timedelta(seconds=ttl), f'attachment; filename="{filename}"', "application/pdf"
        )
        return DownloadLink(url=url, expires_in=ttl, filename=filename)

    # ---- agents --------------------------------------------------------------------------------

    async def school_overview(self, school_id: str, year: int) -> dict[str, Any]:
        school = await self._school(school_id)
        seats = {s["level"]: s for s in await self.store.seats_of(school_id, year)}
        enrolments = await self.store.of_school(school_id, year)
        levels = []
        for level in school["levels"]:
            seat = seats.get(level)
            capacity = seat["capacity"] if seat else self.capacity_for(school, level, year)
            confirmed = sum(1 for e in enrolments if e["school_id"] == school_id and e["level"] == level and e["status"] == Status.CONFIRMED)
            pending = sum(1 for e in enrolments if e["level"] == level and (
                (e["status"] == Status.PENDING_AGENT and e["school_id"] == school_id)
                or (e.get("derogation") or {}).get("status") == "pending" and e["derogation"]["requested_school_id"] == school_id))
            taken = seat["count"] if seat else 0
            levels.append({"level": level, "label": domain.level_label(level), "capacity": capacity, "seats_taken": taken,
                           "confirmed": confirmed, "pending": pending, "free": capacity - taken})
        return {"school": school, "school_year": domain.school_year_label(year), "levels": levels, "enrolments": enrolments}

    async def pending(self, school_id: str | None, year: int | None) -> list[dict[str, Any]]:
        return await self.store.pending(school_id, year)

    @staticmethod
    def _not_withdrawn(enrolment: dict[str, Any]) -> None:
        """A request of a deleted account is withdrawn: nobody is left to decide for (and its
        events would name no account). A 409 saying so, whatever the request was."""
        if (enrolment["status"] == Status.WITHDRAWN or enrolment.get("erased_at") or not enrolment.get("account_id")
                or (enrolment.get("derogation") or {}).get("status") == "withdrawn"):
            raise Conflict(domain.WITHDRAWN)

    async def decide(
        self, enrolment_id: str, decision: str, reason: str, school_id: str | None, agent_id: str, *, correlation_id: str | None = None
    ) -> dict[str, Any]:
        enrolment = await self._owned(enrolment_id, agent_id, "agent")
        self._not_withdrawn(enrolment)
        if enrolment["status"] != Status.PENDING_AGENT or enrolment.get("pending_reason") == PendingReason.DEROGATION:
            raise Conflict(domain.NOT_PENDING)
        now = self._now()
        label = domain.school_year_label(enrolment["school_year"])
        if decision == "refuse":
            if not reason:
                raise Invalid(domain.REASON_REQUIRED)
            data = events.EnrolmentRefused(enrolment_id=enrolment_id, account_id=enrolment["account_id"],
                                           child_id=enrolment["child"]["child_id"], school_year=label, reason=reason, refused_at=now,
                                           decided_by=agent_id, reference=enrolment.get("reference"))
            updated = await self.store.update(
                enrolment_id, {"status": Status.PENDING_AGENT.value},
                {"$set": {"status": Status.REFUSED.value, "refusal_reason": reason, "decided_by": agent_id, "decided_at": now,
                          "updated_at": now, "slot": f"{enrolment['slot']}:refused:{enrolment_id}"}},
                self._entries(data, subject=enrolment_id, correlation_id=correlation_id),
            )
            if updated is None:
                raise Conflict(domain.NOT_PENDING)
            self._events_queued()
            await self._record("enrolment_refused", agent_id, now, f"{enrolment_id}:decision", updated, reason=reason)
            return updated
        target_id = school_id or enrolment.get("school_id")
        if not target_id:
            raise Invalid(domain.SCHOOL_REQUIRED)
        school = await self._school(target_id)
        level = enrolment["level"]
        if level not in school["levels"]:
            raise Invalid(domain.LEVEL_NOT_OFFERED.format(school=school["name"], level=domain.level_label(level)))
        seat = await self._take_seat(school, level, enrolment["school_year"], enrolment_id)
        if seat is None:
            raise Conflict(domain.NO_SEAT.format(level=domain.level_label(level), school=school["name"], label=label))
        updated = await self.store.update(
            enrolment_id, {"status": Status.PENDING_AGENT.value},
            {"$set": {"status": Status.CONFIRMED.value, "school_id": target_id, "seat_id": seat, "pending_reason": None,
                      "decided_by": agent_id, "decided_at": now, "confirmed_at": now, "updated_at": now,
                      "decision_note": reason or None, **self._certificate_due_fields(correlation_id)}},
            [],
        )
        if updated is None:
            await self.store.release_seat(seat, enrolment_id)
            raise Conflict(domain.NOT_PENDING)
        self.certificates_due()
        chosen = enrolment.get("pending_reason") == PendingReason.ADDRESS or enrolment.get("outside_town")
        await self._record("school_chosen" if chosen else "enrolment_confirmed", agent_id, now, f"{enrolment_id}:decision",
                           updated, reason=reason or None, school_id=target_id)
        return updated

    async def decide_derogation(
        self, enrolment_id: str, accepted: bool, reason: str, agent_id: str, *, correlation_id: str | None = None
    ) -> dict[str, Any]:
        enrolment = await self._owned(enrolment_id, agent_id, "agent")
        self._not_withdrawn(enrolment)
        derogation = enrolment.get("derogation") or {}
        if derogation.get("status") != "pending" or enrolment["status"] == Status.REFUSED:
            raise Conflict(domain.DEROGATION_NONE)
        if not accepted and not reason:
            raise Invalid(domain.REASON_REQUIRED)
        now = self._now()
        year, level = enrolment["school_year"], enrolment["level"]
        label = domain.school_year_label(year)
        decided = events.DerogationDecided(
            enrolment_id=enrolment_id, account_id=enrolment["account_id"], child_id=enrolment["child"]["child_id"],
            requested_school_id=derogation["requested_school_id"], decision="accepted" if accepted else "refused",
            reason=reason or None, decided_at=now, decided_by=agent_id, reference=enrolment.get("reference"),
        )
        decision_fields = {"derogation.status": "accepted" if accepted else "refused", "derogation.decision_reason": reason or None,
                           "derogation.decided_at": now, "derogation.decided_by": agent_id, "updated_at": now}
        expect = {"derogation.status": "pending", "status": enrolment["status"], "seat_id": enrolment.get("seat_id")}
        old_seat = enrolment.get("seat_id")
        if accepted:
            school = await self._school(derogation["requested_school_id"])
            seat = await self._take_seat(school, level, year, enrolment_id)
            if seat is None:
                raise Conflict(domain.NO_SEAT.format(level=domain.level_label(level), school=school["name"], label=label))
            fields = {**decision_fields, "status": Status.CONFIRMED.value, "school_id": school["_id"], "seat_id": seat,
                      "pending_reason": None, "confirmed_at": now, **self._certificate_due_fields(correlation_id)}
        else:
            seat = None
            fields = dict(decision_fields)
            if enrolment["status"] == Status.PENDING_AGENT and enrolment.get("pending_reason") == PendingReason.DEROGATION:
                # The child keeps the sector school: a seat there if one is free, else an agent decides.
                sector = await self.store.school(enrolment["sector_school_id"]) if enrolment.get("sector_school_id") else None
                seat = await self._take_seat(sector, level, year, enrolment_id) if sector and level in sector["levels"] else None
                if seat:
                    fields.update({"status": Status.CONFIRMED.value, "school_id": sector["_id"], "seat_id": seat,  # type: ignore[index]
                                   "pending_reason": None, "confirmed_at": now, **self._certificate_due_fields(correlation_id)})
                else:
                    fields.update({"school_id": sector["_id"] if sector else None,
                                   "pending_reason": (PendingReason.NO_SEAT if sector else PendingReason.ADDRESS).value})
        updated = await self.store.update(enrolment_id, expect, {"$set": fields},
                                          self._entries(decided, subject=enrolment_id, correlation_id=correlation_id))
        if updated is None:
            if seat:
                await self.store.release_seat(seat, enrolment_id)
            raise Conflict(domain.DEROGATION_NONE)
        self._events_queued()
        await self._record("derogation_accepted" if accepted else "derogation_refused", agent_id, now,
                           f"{enrolment_id}:derogation", updated, reason=reason or None,
                           school_id=derogation["requested_school_id"])
        if accepted and old_seat and old_seat != seat:
            await self.store.release_seat(old_seat, enrolment_id)
        if updated.get("certificate_due"):
            self.certificates_due()
        return updated

    async def _record(self, action: str, agent_id: str, at: datetime, entry_id: str, enrolment: dict[str, Any] | None, *,
                      reason: str | None = None, school_id: str | None = None, level: str | None = None,
                      school_year: int | None = None, details: dict[str, Any] | None = None) -> None:
        """The decision trail: who did what and when. Written after the decision itself (which
        also keeps ``decided_by``/``decided_at`` in the same write as its state), under an id
        derived from the decision, so that a retried request records it once."""
        entry: dict[str, Any] = {"_id": entry_id, "at": at, "agent_id": agent_id, "action": action, "reason": reason,
                                 "school_id": school_id, "level": level, "school_year": school_year, "details": details or {}}
        if enrolment is not None:
            entry.update(enrolment_id=enrolment["_id"], reference=enrolment.get("reference"),
                         level=enrolment.get("level"), school_year=enrolment.get("school_year"))
            entry["school_id"] = school_id or enrolment.get("school_id")
        await self.store.record(entry)

    async def _new_reference(self, year: int) -> str:
        number = await self.store.next_number(domain.REFERENCE_COUNTER.format(school_year=year))
        return domain.reference(year, number)

    async def make_references_unique(self) -> int:
        """At start: the unique index on references, once enrolments sharing an older reference
        (``INS-2027-3F2B8C1D``, eight characters of a random id) are told apart: the oldest keeps
        it, each other gets a counted one and keeps the old as ``former_reference`` (agents still
        find it by either). Nothing to do once the index is unique. Retried until done (a
        duplicate written meanwhile fails the index build, the next try renumbers it)."""
        if await self.store.reference_index_unique():
            return 0
        renumbered = 0
        for sharing in await self.store.duplicate_references():
            for enrolment in domain.references_to_renumber(sharing):
                new = await self._new_reference(int(enrolment["school_year"]))
                if await self.store.renumber(enrolment["_id"], enrolment["reference"], new, self._now()):
                    renumbered += 1
                    log.warning("enrolment sharing its reference renumbered", enrolment_id=enrolment["_id"],
                                former_reference=enrolment["reference"], reference=new)
        await self.store.make_reference_index_unique()
        return renumbered

    async def trail(self, *, enrolment_id: str | None, action: str | None, page: int, limit: int,
                    reference: str | None = None) -> tuple[list[dict[str, Any]], int]:
        return await self.store.trail_page(enrolment_id=enrolment_id, action=action, page=page, limit=limit,
                                           reference=reference)

    async def to_decide(self, *, school_id: str | None, year: int | None, level: str | None, kind: str | None,
                        page: int, limit: int, reference: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """« Inscriptions à décider »: what waits for an agent, oldest first, filtered, one page.
        A reference is one indexed look-up, then the same filters."""
        candidates = ([e for e in await self.store.with_reference(reference) if domain.awaits_decision(e)
                       and (not school_id or school_id in (e.get("school_id"), (e.get("derogation") or {}).get("requested_school_id")))
                       and (year is None or e.get("school_year") == year)]
                      if reference else await self.store.pending(school_id, year, limit=10_000))
        found = [e for e in candidates
                 if (not level or e.get("level") == level) and (not kind or domain.pending_kind(e) == kind)]
        return found[(page - 1) * limit: page * limit], len(found)

    async def export_csv(self, school_id: str, year: int) -> tuple[str, bytes]:
        await self._school(school_id)  # 404 for an unknown school
        rows = [e for e in await self.store.of_school(school_id, year) if e.get("school_id") == school_id
                and e["status"] in (Status.CONFIRMED, Status.PENDING_AGENT)]
        status_fr = {Status.CONFIRMED: "confirmée", Status.PENDING_AGENT: "en attente", Status.REFUSED: "refusée"}
        lines = [["Référence", "Nom", "Prénom", "Date de naissance", "Niveau", "Statut", "Affectation",
                  "Adresse", "Date de la demande", "Date de confirmation"]]
        for e in sorted(rows, key=lambda e: (domain.LEVEL_AGE[Level(e["level"])], (e["child"].get("last_name") or ""))):
            child, address = e["child"], e.get("address") or {}
            birth = date.fromisoformat(child["birth_date"]).strftime("%d/%m/%Y") if child.get("birth_date") else ""
            on_derogation = (e.get("derogation") or {}).get("status") == "accepted"
            lines.append([
                e["reference"], child.get("last_name") or "(effacé)", child.get("first_name") or "", birth,
                domain.level_label(e["level"]), status_fr[Status(e["status"])],
                "dérogation" if on_derogation else "secteur",
                f"{address.get('number', '')} {address.get('street', '')}, {address.get('postcode', '')} {address.get('town', '')}".strip(" ,") if address else "",
                e["created_at"].strftime("%d/%m/%Y"), e["confirmed_at"].strftime("%d/%m/%Y") if e.get("confirmed_at") else "",
            ])
        text = "\r\n".join(";".join(_csv_cell(v) for v in line) for line in lines) + "\r\n"
        filename = f"inscriptions-{school_id}-{domain.school_year_label(year)}.csv"
        return filename, "\ufeff".encode() + text.encode("utf-8")

    # ---- certificates --------------------------------------------------------------------------

    @staticmethod
    def _certificate_due_fields(correlation_id: str | None) -> dict[str, Any]:
        """Set with a confirmation: a certificate to (re)issue. A previous certificate (another
        school before an accepted dérogation) is no longer served meanwhile, and its verification
        code no longer verifies. The new code is chosen here, not at render time, so that every
        render of this certificate (a retry, another replica's) prints the same one."""
        return {"certificate_due": True, "certificate": None, "certificate_correlation_id": correlation_id,
                "verification_code": domain.new_verification_code()}

    def certificates_due(self) -> None:
        """A confirmation was written: render its certificate now rather than at the next poll."""
        self._certificate_wake.set()

    async def run_certificate_worker(self) -> None:
        """Issues the certificates confirmations left due, one at a time (each render is a second
        of CPU in the rendering process): woken by a confirmation of this process, and every
        ``certificate_retry_interval_s`` for the others (another replica, a crash before or
        during a render, a failed attempt whose lease expired)."""
        while True:
            self._certificate_wake.clear()  # before the pass: a confirmation during it wakes the next
            try:
                await self.issue_due_certificates()
            except Exception as exc:
                log.warning("certificate pass failed, will retry", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._certificate_wake.wait(), self.settings.certificate_retry_interval_s)

    async def issue_due_certificates(self) -> int:
        """Issues the due certificates, oldest first, one at a time, reading the queue once per
        batch rather than once per PDF; returns how many it leased. Ends when none is due, or when
        a batch gave it nothing to lease (another worker took them all)."""
        leased = 0
        while candidates := await self.store.due_certificates(self._now()):
            batch = 0
            for candidate in candidates:
                until = self._now() + timedelta(seconds=self.settings.certificate_lease_s)
                enrolment = await self.store.lease_certificate(candidate, until)
                if enrolment is not None:
                    batch += 1
                    await self.issue_certificate(enrolment)
            if not batch:
                break
            leased += batch
        return leased

    async def issue_certificate(self, enrolment: dict[str, Any]) -> dict[str, Any]:
        """Renders and stores the PDF, then records it with EnrolmentConfirmed in one update, if
        the enrolment is still due (a second render, by a replica whose lease expired, puts the
        same PDF under the same key and records nothing). On failure the enrolment stays
        ``certificate_due`` and is tried again once its lease is over."""
        try:
            school = await self._school(enrolment["school_id"])
            child = enrolment["child"]
            year = enrolment["school_year"]
            now = self._now()
            certificate = Certificate(
                town=self.settings.town_name, town_postcode=self.settings.town_postcode,
                signatory_name=self.settings.certificate_signatory_name, signatory_title=self.settings.certificate_signatory_title,
                child_first_name=child["first_name"], child_last_name=child["last_name"],
                child_birth_date=domain.french_date(date.fromisoformat(child["birth_date"])),
                level_label=domain.level_label(enrolment["level"]), school_name=school["name"], school_address=school["address"],
                school_year=domain.school_year_label(year), reference=enrolment["reference"],
                issued_on=domain.french_date(self.today()),
                derogation=(enrolment.get("derogation") or {}).get("status") == "accepted",
                verification_code=enrolment.get("verification_code") or "",
                verification_url=self.settings.verification_url(enrolment.get("verification_code") or ""),
            )
            pdf = await render_pdf(certificate)
            key = domain.certificate_key(enrolment["_id"])
            await self._put(key, pdf, {"enrolment-id": enrolment["_id"], "reference": enrolment["reference"]})
            data = events.EnrolmentConfirmed(
                enrolment_id=enrolment["_id"], account_id=enrolment["account_id"], child_id=child["child_id"],
                school_id=school["_id"], school_name=school["name"], level=enrolment["level"],
                school_year=domain.school_year_label(year), reference=enrolment["reference"], certificate_available=True,
                confirmed_at=enrolment.get("confirmed_at") or now,
            )
            updated = await self.store.update(
                enrolment["_id"], {"status": Status.CONFIRMED.value, "certificate_due": True, "school_id": school["_id"]},
                {"$set": {"certificate_due": False, "certificate": {"key": key, "issued_at": now, "size": len(pdf)}},
                 "$unset": {"certificate_lease_until": ""}},
                self._entries(data, subject=enrolment["_id"], correlation_id=enrolment.get("certificate_correlation_id")),
            )
        except Exception as exc:
            log.warning("certificate not issued yet, will retry", enrolment_id=enrolment["_id"], error=repr(exc))
            return enrolment
        if updated is None:
            current = await self.store.get(enrolment["_id"])
            if current is None or not current.get("certificate"):
                # Erased or sent back meanwhile: the PDF just stored names a child nobody may
                # download any more.
                with contextlib.suppress(Exception):
                    await self.objects.remove(key)
            log.info("certificate no longer due, not recorded", enrolment_id=enrolment["_id"])
            return current or enrolment
        self._events_queued()
        log.info("certificate issued", enrolment_id=enrolment["_id"])
        return updated

    async def verify(self, code_text: str) -> dict[str, Any]:
        """The public check of a printed certificate: school, level, year and the child's
        initials, nothing else; only while that certificate is the enrolment's current one."""
        code = domain.normalise_verification_code(code_text)
        enrolment = await self.store.by_verification_code(code) if code else None
        if enrolment is None or enrolment["status"] != Status.CONFIRMED or not enrolment.get("certificate"):
            raise NotFound(domain.VERIFICATION_UNKNOWN)
        school = await self.store.school(enrolment["school_id"]) or {}
        child = enrolment.get("child") or {}
        year = enrolment["school_year"]
        return {
            "code": code, "valid": True, "school_name": school.get("name", ""),
            "level": enrolment["level"], "level_label": domain.level_label(enrolment["level"]),
            "school_year": domain.school_year_label(year), "child_initials": domain.initials(child.get("first_name"), child.get("last_name")),
        }

    async def _put(self, key: str, data: bytes, metadata: dict[str, str]) -> None:
        fd, path = tempfile.mkstemp(suffix=".pdf")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            await self.objects.put_file(key, path, len(data), "application/pdf", metadata)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # ---- erasure -------------------------------------------------------------------------------

    async def withdraw_erased_derogations(self) -> None:
        withdrawn = await self.store.withdraw_erased_derogations(self._now())
        if withdrawn:
            log.info("dérogations of erased accounts withdrawn", count=withdrawn)

    async def erase_account(self, account_id: str) -> int:
        """AccountDeleted: certificates deleted from S3, then each enrolment anonymised (school,
        level, year and status stay for the counts: a confirmed child keeps the seat). Pending
        requests are withdrawn. The dossier projection is deleted. A redelivery finds nothing."""
        now = self._now()
        enrolments = await self.store.of_account(account_id)
        for e in enrolments:
            await self.objects.remove(domain.certificate_key(e["_id"]))  # raises while S3 is down: retried
            # Withdrawn, not refused: nobody decided, and the agents' queue and counts drop them.
            if e["status"] == Status.PENDING_AGENT:
                await self.store.update(e["_id"], {"status": Status.PENDING_AGENT.value},
                                        {"$set": {"status": Status.WITHDRAWN.value, "withdrawn_at": now,
                                                  "slot": f"{e['slot']}:erased:{e['_id']}"}}, [])
            if (e.get("derogation") or {}).get("status") == "pending":
                await self.store.update(e["_id"], {"derogation.status": "pending"},
                                        {"$set": {"derogation.status": "withdrawn", "derogation.withdrawn_at": now}}, [])
            await self.store.anonymise(e["_id"], now, has_derogation=bool(e.get("derogation")))
            # A certificate being rendered meanwhile may have been stored after the removal
            # above (the worker deletes its own once it sees the enrolment erased).
            with contextlib.suppress(Exception):
                await self.objects.remove(domain.certificate_key(e["_id"]))
        await self.store.delete_dossiers(account_id)
        log.info("account erased", enrolments=len(enrolments))
        return len(enrolments)


    async def purge(self) -> dict[str, int]:
        """Retention (docs/rgpd.md): enrolments of school years ended long enough ago lose their
        certificate and personal data (school, level, year and status stay for the figures); the
        audit trail and the files' projection go after their own periods. Idempotent."""
        now, s = self._now(), self.settings
        enrolments = await self.store.past_retention(domain.first_school_year_kept(now.date(), s.enrolment_retention_years))
        for e in enrolments:
            await self.objects.remove(domain.certificate_key(e["_id"]))
            await self.store.anonymise(e["_id"], now, has_derogation=bool(e.get("derogation")))
        counts = {"enrolments_anonymised": len(enrolments), **await self.store.purge_old(
            trail_before=now - timedelta(days=s.audit_retention_days),
            dossiers_before=now - timedelta(days=s.dossier_projection_days),
        )}
        return {k: v for k, v in counts.items() if v}


def _aware(moment: datetime) -> datetime:
    # A database client that is not tz-aware gives naive UTC datetimes back.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _csv_cell(value: Any) -> str:
    text = str(value)
    if text[:1] in ("=", "+", "-", "@"):
        text = "'" + text  # no formula injection when a spreadsheet opens it
    if any(c in text for c in ';"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text
