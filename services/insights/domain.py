"""The campaign's rules: how each event changes the per-aggregate records the tables keep, and
the figures derived from them. No I/O: records are plain JSON-ready dicts (faust stores them in
its tables and their changelog topics), the calendar is given.

Every record keeps the ids of the events already applied to it: an event delivered twice (the
at-least-once path, a replay after a crash) finds its id there and changes nothing. Records are
keyed by the aggregate id of their source topic, so each one is only written while handling its
own partition: its changelog entries land in the matching changelog partition, whichever worker
holds it. Counts across aggregates are computed from the records when asked, never kept as
counters a crash could leave half-applied.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Record = dict[str, Any]
Data = Mapping[str, Any]

# The statuses of a file once submitted (a draft emits nothing, so is not seen here).
STATUSES = ("submitted", "corrections_requested", "validated", "rejected")
# Who the file waits for, in each status still open.
WAITING_FOR = {"submitted": "agent", "corrections_requested": "family"}
FUNNEL_STEPS = ("registered", "activated", "file_started", "submitted", "validated", "enrolled")
SMALL_COUNT = "<5"
# Ids of the DossierOverdue events: derived from file, spell and threshold, so an event sent
# again after a crash carries the same id and every idempotent reader drops it.
_OVERDUE_NAMESPACE = uuid.UUID("5b7e1f0a-2c3d-4e5f-8a9b-0c1d2e3f4a5b")


def _seen(record: Record | None, event_id: str) -> bool:
    return record is not None and event_id in record.get("seen", ())


def _with_seen(record: Record, event_id: str) -> Record:
    record["seen"] = [*record.get("seen", ()), event_id]
    return record


def _iso(value: Any) -> str:
    """Timestamps are stored as ISO strings in UTC (they sort as they compare)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return _iso(datetime.fromisoformat(str(value)))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _first(current: str | None, candidate: str) -> str:
    return candidate if current is None or candidate < current else current


# ---------------------------------------------------------------- applying events to records


def apply_account(record: Record | None, name: str, event_id: str, data: Data) -> Record | None:
    """The account's record after the event; None when nothing changes (duplicate, other type)."""
    if _seen(record, event_id) or name not in ("AccountRegistered", "AccountActivated", "AccountDeleted"):
        return None
    new: Record = dict(record or {"account_id": data["account_id"]})
    if name == "AccountRegistered":
        new["registered_at"] = _first(new.get("registered_at"), _iso(data["registered_at"]))
    elif name == "AccountActivated":
        new["activated_at"] = _first(new.get("activated_at"), _iso(data["activated_at"]))
        new["role"] = data.get("role", "family")
    else:
        new["deleted_at"] = _iso(data["deleted_at"])
    return _with_seen(new, event_id)


def apply_document(record: Record | None, name: str, event_id: str, data: Data) -> Record | None:
    if _seen(record, event_id) or name != "DocumentUploaded":
        return None
    new: Record = dict(record or {"document_id": data["document_id"]})
    new.update(account_id=data["account_id"], kind=data["kind"], uploaded_at=_iso(data["uploaded_at"]))
    return _with_seen(new, event_id)


def apply_dossier(record: Record | None, name: str, event_id: str, data: Data) -> Record | None:
    if _seen(record, event_id):
        return None
    new: Record = dict(record or {"dossier_id": data["dossier_id"], "submissions": [], "decisions": [],
                                  "corrections": [], "overdue": []})
    new["account_id"] = data.get("account_id", new.get("account_id"))
    if name == "HouseholdSubmitted":
        at = _iso(data["submitted_at"])
        new["status"], new["waiting_since"] = "submitted", at
        new["submissions"] = [*new["submissions"], at]
    elif name in ("CorrectionRequested", "DossierValidated", "DossierRejected"):
        at = _iso(data.get("requested_at") or data.get("validated_at") or data.get("rejected_at"))
        new["status"] = {"CorrectionRequested": "corrections_requested", "DossierValidated": "validated",
                         "DossierRejected": "rejected"}[name]
        new["waiting_since"] = at
        new["decisions"] = [*new["decisions"], {"at": at, "status": new["status"]}]
        if name == "CorrectionRequested":
            new["corrections"] = [*new["corrections"], *(c["item"] for c in data["corrections"])]
        if name == "DossierValidated":
            new["validated_at"] = _first(new.get("validated_at"), at)
    elif name == "DossierOverdue":
        new["overdue"] = [*new["overdue"], overdue_mark(_iso(data["waiting_since"]), data["threshold_working_days"])]
    else:
        return None
    return _with_seen(new, event_id)


def apply_enrolment(record: Record | None, name: str, event_id: str, data: Data) -> Record | None:
    if _seen(record, event_id) or name not in ("EnrolmentRequested", "EnrolmentConfirmed", "EnrolmentRefused",
                                               "DerogationDecided"):
        return None
    new: Record = dict(record or {"enrolment_id": data["enrolment_id"]})
    new["account_id"] = data["account_id"]
    if name == "EnrolmentRequested":
        new.update(school_year=data["school_year"], level=data["level"], sector_school_id=data.get("sector_school_id"),
                   requested_school_id=data.get("requested_school_id"), requested_at=_iso(data["requested_at"]))
        # "confirmed" at once still waits for its EnrolmentConfirmed (the certificate) to count.
        new.setdefault("status", "requested" if data["status"] == "confirmed" else "pending_agent")
        if data.get("requested_school_id"):
            new.setdefault("derogation", "asked")
    elif name == "EnrolmentConfirmed":
        new.update(status="confirmed", school_id=data["school_id"], level=data["level"],
                   school_year=data["school_year"], confirmed_at=_iso(data["confirmed_at"]))
    elif name == "EnrolmentRefused":
        new.update(status="refused", school_year=data["school_year"])
    else:
        new["derogation"] = data["decision"]
        new.setdefault("requested_school_id", data["requested_school_id"])
        if data["decision"] == "refused" and new.get("status") == "pending_agent":
            # Refused dérogation: the enrolment goes on in the sector school (its confirmation follows).
            new["status"] = "requested"
    return _with_seen(new, event_id)


def apply_school(record: Record | None, name: str, event_id: str, data: Data) -> Record | None:
    """A school's capacities per level: its defaults and its own per school year. The school's
    defaults and each year's counter are written (and relayed) separately by enrolment, so each
    capacity keeps the time of its change and an older one arriving later is not applied."""
    if _seen(record, event_id) or name != "SchoolCapacityChanged":
        return None
    new: Record = dict(record or {"school_id": data["school_id"], "defaults": {}, "years": {}})
    new["school_name"] = data["school_name"]
    at = _iso(data["changed_at"])
    year = data.get("school_year")
    scope = dict(new["defaults"] if year is None else new["years"].get(year, {}))
    current = scope.get(data["level"])
    if current is None or current["at"] <= at:
        scope[data["level"]] = {"capacity": data["capacity"], "at": at}
    if year is None:
        new["defaults"] = scope
    else:
        new["years"] = {**new["years"], year: scope}
    return _with_seen(new, event_id)


def capacity(school: Record | None, school_year: str, level: str) -> int | None:
    """The seats of a level in a school year: the year's own capacity, else the school's default."""
    if school is None:
        return None
    own = school["years"].get(school_year, {}).get(level) or school["defaults"].get(level)
    return None if own is None else int(own["capacity"])


# ---------------------------------------------------------------- working days and overdue files


@dataclass(frozen=True)
class WorkCalendar:
    """Working days in the town's time zone; ``is_holiday`` comes from the holidays library."""

    zone: ZoneInfo
    is_holiday: Callable[[date], bool]

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after the start's day, up to and including the end's day (Paris dates):
        submitted on a Monday, it has waited 5 working days on the next Monday (no holiday between)."""
        first, last = self.local_day(start) + timedelta(days=1), self.local_day(end)
        days = 0
        while first <= last:
            days += self.is_working_day(first)
            first += timedelta(days=1)
        return days


def overdue_mark(waiting_since: str, threshold: int) -> str:
    return f"{waiting_since}|{threshold}"


def overdue_event_id(dossier_id: str, waiting_since: str, threshold: int) -> str:
    return str(uuid.uuid5(_OVERDUE_NAMESPACE, f"{dossier_id}|{overdue_mark(waiting_since, threshold)}"))


@dataclass(frozen=True)
class Overdue:
    dossier_id: str
    waiting_since: datetime
    working_days_waiting: int
    threshold_working_days: int

    @property
    def event_id(self) -> str:
        return overdue_event_id(self.dossier_id, _iso(self.waiting_since), self.threshold_working_days)


def waiting_overdue(dossier: Record, now: datetime, threshold: int, calendar: WorkCalendar) -> Overdue | None:
    """The file's overdue state when it waits for an agent longer than ``threshold`` working days."""
    if dossier.get("status") != "submitted":
        return None
    since = parse_time(dossier["waiting_since"])
    waited = calendar.working_days_between(since, now)
    return Overdue(dossier["dossier_id"], since, waited, threshold) if waited > threshold else None


def overdue_to_announce(dossier: Record, now: datetime, threshold: int, calendar: WorkCalendar) -> Overdue | None:
    """Overdue and not announced yet for this waiting spell and threshold."""
    overdue = waiting_overdue(dossier, now, threshold, calendar)
    if overdue is None or overdue_mark(dossier["waiting_since"], threshold) in dossier.get("overdue", ()):
        return None
    return overdue


# ---------------------------------------------------------------- figures derived from the records


def files_by_status(dossiers: Iterable[Record]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for d in dossiers:
        if d.get("status") in counts:
            counts[d["status"]] += 1
    return counts


DAY_COUNTS = ("submitted", "decided")
DECISIONS = {"CorrectionRequested": "requested_at", "DossierValidated": "validated_at", "DossierRejected": "rejected_at"}


def day_count(name: str, data: Data) -> tuple[str, datetime] | None:
    """Which per-day count a file event adds one to, and when: a submission (resubmissions
    included) or a decision (corrections asked, validated, rejected); None for any other event."""
    if name == "HouseholdSubmitted":
        return "submitted", parse_time(_iso(data["submitted_at"]))
    if name in DECISIONS:
        return "decided", parse_time(_iso(data[DECISIONS[name]]))
    return None


def window_timestamp(moment: datetime, zone: ZoneInfo) -> float:
    """The time faust's tumbling windows are given: the town's wall-clock time read as if it were
    UTC. Faust cuts one-day windows at UTC midnights (epoch multiples of 86,400 s), so they are
    then the town's days, daylight saving changes included (a 23- or 25-hour day is one window)."""
    return moment.astimezone(zone).replace(tzinfo=UTC).timestamp()


def window_day(start: float) -> str:
    """The town's day of a one-day window, from its start (a window_timestamp)."""
    return datetime.fromtimestamp(start, UTC).date().isoformat()


def per_day(windows: Iterable[tuple[tuple[str, tuple[float, float]], int]]) -> list[dict[str, Any]]:
    """The per-day counts from the windowed table's entries ((``<count>:<partition>``, window), n),
    summed over the source partitions, by day."""
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for (key, (start, _end)), n in windows:
        days[window_day(start)][key.split(":", 1)[0]] += int(n)
    return [{"day": day, **{k: c[k] for k in DAY_COUNTS}} for day, c in sorted(days.items())]


def _percentile(values: list[float], share: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def decision_delays(dossiers: Iterable[Record], calendar: WorkCalendar) -> list[dict[str, Any]]:
    """Hours from the first submission to the first decision, p50 and p90 per ISO week (Paris) of the decision."""
    weeks: dict[str, list[float]] = defaultdict(list)
    for d in dossiers:
        if not d.get("submissions") or not d.get("decisions"):
            continue
        submitted, decided = parse_time(d["submissions"][0]), parse_time(d["decisions"][0]["at"])
        year, week, _ = calendar.local_day(decided).isocalendar()
        weeks[f"{year}-W{week:02d}"].append((decided - submitted).total_seconds() / 3600)
    return [{"week": week, "files": len(hours), "p50_hours": round(_percentile(sorted(hours), 0.5), 2),
             "p90_hours": round(_percentile(sorted(hours), 0.9), 2)} for week, hours in sorted(weeks.items())]


def backlog(dossiers: Iterable[Record], now: datetime) -> list[dict[str, Any]]:
    """Files still open per status, who they wait for and the age of the oldest (hours)."""
    oldest: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for d in dossiers:
        status = d.get("status")
        if status in WAITING_FOR:
            counts[status] += 1
            oldest[status] = min(oldest.get(status, d["waiting_since"]), d["waiting_since"])
    return [{"status": s, "waiting_for": WAITING_FOR[s], "files": counts[s],
             "oldest_waiting_since": oldest.get(s),
             "oldest_age_hours": round((now - parse_time(oldest[s])).total_seconds() / 3600, 1) if s in oldest else None}
            for s in WAITING_FOR]


def correction_item_label(item: str, document_kinds: Mapping[str, str]) -> str:
    """A correction names a document id or a field path; documents are grouped by their kind."""
    kind = document_kinds.get(item)
    return f"document:{kind}" if kind else item


def corrections(dossiers: Iterable[Record], document_kinds: Mapping[str, str], top: int = 10) -> dict[str, Any]:
    submitted = sent_back = 0
    items: Counter[str] = Counter()
    for d in dossiers:
        if not d.get("submissions"):
            continue
        submitted += 1
        if d.get("corrections"):
            sent_back += 1
            items.update(correction_item_label(item, document_kinds) for item in d["corrections"])
    return {"files_submitted": submitted, "files_sent_back": sent_back,
            "share_sent_back": round(sent_back / submitted, 4) if submitted else 0.0,
            "top_items": [{"item": item, "count": n} for item, n in items.most_common(top)]}


def deleted_accounts(accounts: Iterable[Record]) -> set[str]:
    return {a["account_id"] for a in accounts if a.get("deleted_at")}


def schools(enrolments: Iterable[Record], deleted: Collection[str] = frozenset(),
            capacities: Iterable[Record] = ()) -> list[dict[str, Any]]:
    """Per school year, school and level: requested, confirmed, waiting, dérogations asked and granted,
    against the capacity (enrolment's SchoolCapacityChanged; None when not announced). Every level
    of every school with a capacity is listed for each school year seen (in an enrolment or a
    year's own capacity), so a school nobody asked for shows its free seats too.
    An erased account's enrolments still waiting are withdrawn by enrolment without an event of their
    own: they are left out here as there (``deleted``: the accounts with an AccountDeleted)."""
    rows: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for e in enrolments:
        if "level" not in e or "school_year" not in e:
            continue
        if e.get("account_id") in deleted and e.get("status") in ("pending_agent", "requested"):
            continue
        asked_for = e.get("requested_school_id") or e.get("sector_school_id")
        if asked_for:
            rows[(e["school_year"], asked_for, e["level"])]["requested"] += 1
            if e.get("status") == "pending_agent":
                rows[(e["school_year"], asked_for, e["level"])]["waiting"] += 1
            if e.get("derogation"):
                rows[(e["school_year"], asked_for, e["level"])]["derogations_asked"] += 1
            if e.get("derogation") == "accepted":
                rows[(e["school_year"], asked_for, e["level"])]["derogations_granted"] += 1
        if e.get("status") == "confirmed":
            rows[(e["school_year"], e["school_id"], e["level"])]["confirmed"] += 1
    by_school = {c["school_id"]: c for c in capacities}
    years = {year for year, _, _ in rows} | {year for c in by_school.values() for year in c["years"]}
    for school_id, c in by_school.items():
        for year in years:
            for level in {*c["defaults"], *c["years"].get(year, {})}:
                rows[(year, school_id, level)].update()
    keys = ("requested", "confirmed", "waiting", "derogations_asked", "derogations_granted")
    return [{"school_year": year, "school_id": school, "level": level,
             "school_name": by_school[school]["school_name"] if school in by_school else None,
             "capacity": capacity(by_school.get(school), year, level), **{k: c[k] for k in keys}}
            for (year, school, level), c in sorted(rows.items())]


def family_steps(accounts: Iterable[Record], documents: Iterable[Record], dossiers: Iterable[Record],
                 enrolments: Iterable[Record]) -> dict[str, dict[str, str]]:
    """For each family account: when it first reached each step of the funnel (ISO time)."""
    steps: dict[str, dict[str, str]] = {}
    staff: set[str] = set()
    for a in accounts:
        if a.get("role", "family") != "family":
            staff.add(a["account_id"])
            continue
        reached = steps.setdefault(a["account_id"], {})
        for step, key in (("registered", "registered_at"), ("activated", "activated_at")):
            if a.get(key):
                reached[step] = a[key]

    def reach(account_id: str | None, step: str, at: str | None) -> None:
        if account_id and at and account_id not in staff:
            reached = steps.setdefault(account_id, {})
            reached[step] = _first(reached.get(step), at)

    for doc in documents:
        reach(doc.get("account_id"), "file_started", doc.get("uploaded_at"))
    for d in dossiers:
        reach(d.get("account_id"), "submitted", (d.get("submissions") or [None])[0])
        reach(d.get("account_id"), "validated", d.get("validated_at"))
    for e in enrolments:
        reach(e.get("account_id"), "enrolled", e.get("confirmed_at"))
    return steps


def funnel(steps: Mapping[str, Mapping[str, str]], calendar: WorkCalendar) -> dict[str, Any]:
    """Families per step (reached it), per day and step, and the furthest step of each family."""
    stopped: Counter[str] = Counter()
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for family in steps.values():
        furthest = None
        for step in FUNNEL_STEPS:
            if step in family:
                furthest = step
                days[calendar.local_day(parse_time(family[step])).isoformat()][step] += 1
        if furthest:
            stopped[furthest] += 1
    # A family that went further passed every step before (a step may have left no event: a file
    # submitted before the topic's retention, a family registered by an agent).
    reached = {step: sum(stopped[s] for s in FUNNEL_STEPS[i:]) for i, step in enumerate(FUNNEL_STEPS)}
    return {"reached": reached,
            "stopped_at": {s: stopped[s] for s in FUNNEL_STEPS},
            "per_day": [{"day": day, **{s: c[s] for s in FUNNEL_STEPS}} for day, c in sorted(days.items())]}


def masked(count: int) -> int | str:
    """What the open figures publish: the count from 5 up, "<5" below (no small group singled out)."""
    return count if count >= 5 else SMALL_COUNT


def campaign_figures(campaign: str, now: datetime, status_counts: Mapping[str, int], overdue_files: int,
                     reached: Mapping[str, int], school_rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The data of a CampaignFigures event: counts only, masked."""
    keys = ("requested", "confirmed", "waiting", "derogations_asked", "derogations_granted")
    return {
        "campaign": campaign,
        "generated_at": now,
        "files_by_status": {s: masked(status_counts.get(s, 0)) for s in STATUSES},
        "overdue_files": masked(overdue_files),
        "funnel": {s: masked(reached.get(s, 0)) for s in FUNNEL_STEPS},
        "schools": [{"school_id": r["school_id"], "level": r["level"], "school_year": r["school_year"],
                     **{k: masked(r[k]) for k in keys}, "capacity": r.get("capacity")} for r in school_rows],
    }
