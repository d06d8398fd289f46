"""Rules of the enrolment service, without I/O: levels from the birth year, school years, the
sector map (parsing, validation, look-ups), enrolment statuses and the French messages.

The law (../shared/DESIGN.md, "Domain rules (France)"): the level comes from the birth YEAR. For
the school year starting in September of year Y: toute petite section (TPS) = born in Y-2, only
where a school offers it, within places; petite section Y-3, moyenne Y-4, grande Y-5, CP Y-6,
CE1 Y-7, CE2 Y-8, CM1 Y-9, CM2 Y-10.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

# ---- levels ------------------------------------------------------------------------------------


class Level(StrEnum):
    TPS = "TPS"
    PS = "PS"
    MS = "MS"
    GS = "GS"
    CP = "CP"
    CE1 = "CE1"
    CE2 = "CE2"
    CM1 = "CM1"
    CM2 = "CM2"


# Y - birth year for each level.
LEVEL_AGE: dict[Level, int] = {
    Level.TPS: 2, Level.PS: 3, Level.MS: 4, Level.GS: 5,
    Level.CP: 6, Level.CE1: 7, Level.CE2: 8, Level.CM1: 9, Level.CM2: 10,
}
AGE_LEVEL = {age: level for level, age in LEVEL_AGE.items()}
LEVEL_LABELS: dict[Level, str] = {
    Level.TPS: "toute petite section", Level.PS: "petite section", Level.MS: "moyenne section",
    Level.GS: "grande section", Level.CP: "CP", Level.CE1: "CE1", Level.CE2: "CE2", Level.CM1: "CM1", Level.CM2: "CM2",
}
MATERNELLE_LEVELS = (Level.TPS, Level.PS, Level.MS, Level.GS)
ELEMENTAIRE_LEVELS = (Level.CP, Level.CE1, Level.CE2, Level.CM1, Level.CM2)


def level_label(level: Level | str) -> str:
    return LEVEL_LABELS[Level(level)]


def is_maternelle(level: Level | str) -> bool:
    return Level(level) in MATERNELLE_LEVELS


class SchoolType(StrEnum):
    MATERNELLE = "maternelle"
    ELEMENTAIRE = "elementaire"
    PRIMAIRE = "primaire"


TYPE_LEVELS: dict[SchoolType, tuple[Level, ...]] = {
    SchoolType.MATERNELLE: MATERNELLE_LEVELS,
    SchoolType.ELEMENTAIRE: ELEMENTAIRE_LEVELS,
    SchoolType.PRIMAIRE: MATERNELLE_LEVELS + ELEMENTAIRE_LEVELS,
}


@dataclass(frozen=True)
class Placement:
    """The level a child would enter for a school year, or why the child cannot be enrolled."""

    level: Level | None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.level is not None


def school_year_label(year: int) -> str:
    return f"{year}-{year + 1}"


def level_for(birth_date: date, school_year: int, *, tps_offered: bool) -> Placement:
    """The level from the birth year alone (31 December and 1 January of the same year are
    the same level; 31 December and the next 1 January are not)."""
    age = school_year - birth_date.year
    born = birth_date.year
    if age == 2:
        if tps_offered:
            return Placement(Level.TPS)
        return Placement(None, (
            f"Votre enfant, né·e en {born}, pourra être inscrit·e en petite section à la rentrée {born + 3}. "
            f"Son école de secteur n'accueille pas d'enfants en toute petite section."
        ))
    if age < 2:
        return Placement(None, f"Votre enfant, né·e en {born}, pourra être inscrit·e en petite section à la rentrée {born + 3}.")
    if age > 10:
        return Placement(None, (
            f"Votre enfant, né en {born}, n'entre plus à l'école maternelle ou élémentaire à la rentrée {school_year} : "
            f"l'inscription en école concerne les enfants nés de {school_year - 10} à {school_year - 2}. "
            f"Pour le collège, adressez-vous au collège de secteur."
        ))
    return Placement(AGE_LEVEL[age])


def school_year_in_progress(today: date) -> int:
    """The school year running on ``today``: it starts in September (in July and August, the one
    that just ended)."""
    return today.year if today.month >= 9 else today.year - 1


def first_school_year_kept(today: date, keep_years: int) -> int:
    """Retention: an enrolment is kept ``keep_years`` full years after its school year ended
    (31 August); those of school years before the one returned are past it."""
    return school_year_in_progress(today) - keep_years


def _day_of(school_year: int, month_day: tuple[int, int]) -> date:
    """A "MM-DD" of a school year: September to December fall in its first calendar year."""
    month, day = month_day
    return date(school_year if month >= 9 else school_year + 1, month, day)


def open_school_years(today: date, *, current_until: tuple[int, int], next_opens: tuple[int, int]) -> list[int]:
    """The school years families may enrol for on ``today``, oldest first: the year in progress
    (a family moving in mid-year) until ``current_until`` (inclusive), and the next rentrée once
    its campaign opened on ``next_opens``. Never none: between the two, the next rentrée."""
    running = school_year_in_progress(today)
    years = [running] if today <= _day_of(running, current_until) else []
    if today >= _day_of(running, next_opens) or not years:
        years.append(running + 1)
    return years


def year_title(year: int, *, in_progress: bool) -> str:
    """How a family and an agent read the year enrolled for: « année scolaire en cours
    2026-2027 » (a family moving in mid-year) or « rentrée 2027 (année scolaire 2027-2028) »."""
    if in_progress:
        return f"année scolaire en cours {school_year_label(year)}"
    return f"rentrée {year} (année scolaire {school_year_label(year)})"


def school_year_title(year: int, today: date) -> str:
    return year_title(year, in_progress=year <= school_year_in_progress(today))


def parse_school_year(value: str | int) -> int | None:
    """2027, "2027" or "2027-2028" → 2027; anything else → None."""
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})(?:\s*[-/]\s*(\d{4}))?", text)
    if not m:
        return None
    start = int(m.group(1))
    if m.group(2) and int(m.group(2)) != start + 1:
        return None
    return start if 2000 <= start <= 2100 else None


# ---- addresses and the sector map --------------------------------------------------------------


class Side(StrEnum):
    ODD = "odd"
    EVEN = "even"
    BOTH = "both"


_SIDE_WORDS = {
    "odd": Side.ODD, "impair": Side.ODD, "impairs": Side.ODD, "i": Side.ODD,
    "even": Side.EVEN, "pair": Side.EVEN, "pairs": Side.EVEN, "p": Side.EVEN,
    "both": Side.BOTH, "tous": Side.BOTH, "les deux": Side.BOTH, "deux": Side.BOTH, "t": Side.BOTH,
}
_ABBREVIATIONS = {"av": "avenue", "bd": "boulevard", "bld": "boulevard", "pl": "place", "r": "rue",
                  "ch": "chemin", "imp": "impasse", "all": "allee", "rte": "route", "sq": "square", "st": "saint",
                  "ste": "sainte"}


def street_key(street: str) -> str:
    """Comparable form of a street name: no accents, case, punctuation or abbreviations
    ("Av. de l'Église" and "avenue de l eglise" are the same street)."""
    text = unicodedata.normalize("NFKD", street)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


_NUMBER = re.compile(r"^\s*(\d{1,5})\s*(?:(bis|ter|quater|quinquies|[a-z])\b\.?)?\s*$", re.IGNORECASE)


def house_number(text: str) -> int | None:
    """The integer part of a street number: "12" → 12, "12 bis" / "12bis" / "12 B" → 12;
    "", "12-14", "sans numéro" → None (an agent checks the address)."""
    m = _NUMBER.match(text or "")
    if not m:
        return None
    n = int(m.group(1))
    return n if n > 0 else None


@dataclass(frozen=True)
class Segment:
    street: str
    number_from: int
    number_to: int
    side: Side
    maternelle_id: str
    elementaire_id: str

    def covers(self, number: int) -> bool:
        if not self.number_from <= number <= self.number_to:
            return False
        return self.side is Side.BOTH or (number % 2 == 1) == (self.side is Side.ODD)

    def parities(self) -> set[int]:
        return {1, 0} if self.side is Side.BOTH else {1} if self.side is Side.ODD else {0}

    def as_dict(self) -> dict[str, object]:
        return {"street": self.street, "number_from": self.number_from, "number_to": self.number_to,
                "side": self.side.value, "maternelle_id": self.maternelle_id, "elementaire_id": self.elementaire_id}

    @classmethod
    def of(cls, d: dict[str, object]) -> Segment:
        return cls(str(d["street"]), int(d["number_from"]), int(d["number_to"]), Side(str(d["side"])),  # type: ignore[call-overload]
                   str(d["maternelle_id"]), str(d["elementaire_id"]))


def sector_school_by_age(segment: Segment | None, birth_date: date, school_year: int) -> str | None:
    """The school the map names for a child's age that year: the maternelle up to grande section
    (born Y-2 to Y-5), the élémentaire from CP to CM2 (Y-6 to Y-10); none off the map or out of
    school age."""
    age = school_year - birth_date.year
    if segment is None or not 2 <= age <= 10:
        return None
    return segment.maternelle_id if age <= 5 else segment.elementaire_id


class SectorIndex:
    """Street key → its segments; a look-up is a dict access plus a scan of a few ranges."""

    def __init__(self, segments: Iterable[Segment]) -> None:
        self._by_street: dict[str, list[Segment]] = defaultdict(list)
        for s in segments:
            self._by_street[street_key(s.street)].append(s)
        for segs in self._by_street.values():
            segs.sort(key=lambda s: s.number_from)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_street.values())

    def knows_street(self, street: str) -> bool:
        return street_key(street) in self._by_street

    def lookup(self, street: str, number_text: str) -> Segment | None:
        number = house_number(number_text)
        if number is None:
            return None
        for segment in self._by_street.get(street_key(street), ()):
            if segment.number_from > number:
                break
            if segment.covers(number):
                return segment
        return None


def place_key(name: str) -> str:
    """Comparable form of a town name ("MONTCLAIR SUR LOIRE" = "Montclair-sur-Loire")."""
    return street_key(name)


def in_town(postcode: str, town: str, *, town_name: str, town_postcodes: Sequence[str]) -> bool:
    """Whether an address is in the town whose sector map this is: its postcode is one of the
    town's AND its town name is the town's (several communes share a postcode)."""
    return re.sub(r"\s+", "", postcode or "") in town_postcodes and place_key(town or "") == place_key(town_name)


def sector_school_id(segment: Segment, level: Level | str) -> str:
    return segment.maternelle_id if is_maternelle(level) else segment.elementaire_id


# ---- CSV import and its validation report ------------------------------------------------------

CSV_COLUMNS = ("street", "number_from", "number_to", "side", "maternelle", "elementaire")
_COLUMN_ALIASES = {
    "street": "street", "rue": "street", "voie": "street",
    "number_from": "number_from", "from": "number_from", "de": "number_from", "numero_debut": "number_from",
    "number_to": "number_to", "to": "number_to", "a": "number_to", "numero_fin": "number_to",
    "side": "side", "cote": "side", "parite": "side",
    "maternelle": "maternelle", "maternelle_id": "maternelle", "maternelle_school_id": "maternelle",
    "ecole_maternelle": "maternelle",
    "elementaire": "elementaire", "elementaire_id": "elementaire", "elementaire_school_id": "elementaire",
    "ecole_elementaire": "elementaire",
}
MAX_NUMBER = 99999


@dataclass(frozen=True)
class Problem:
    kind: str  # malformed | unknown_school | wrong_school_type | overlap | gap
    line: int | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "line": self.line, "message": self.message}


@dataclass
class ImportReport:
    segments: list[Segment] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    rows: int = 0

    @property
    def can_apply(self) -> bool:
        return not self.errors and bool(self.segments)

    def as_dict(self) -> dict[str, object]:
        streets = {street_key(s.street) for s in self.segments}
        return {
            "rows": self.rows, "segments": len(self.segments), "streets": len(streets),
            "can_apply": self.can_apply,
            "errors": [p.as_dict() for p in self.errors], "warnings": [p.as_dict() for p in self.warnings],
        }


def _column(name: str) -> str | None:
    return _COLUMN_ALIASES.get(street_key(name).replace(" ", "_"))


def decode_csv(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 (what French Excel writes)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_sector_csv(text: str, schools: dict[str, Sequence[str]]) -> ImportReport:
    """Parses a sector map CSV (comma or semicolon separated, header row first) and reports every
    problem: malformed rows, unknown schools or schools without the levels they are assigned,
    overlapping ranges on the same street and side (errors, the map cannot be applied) and gaps
    between ranges (warnings: an address in a gap goes to an agent).

    ``schools`` maps each known school id to the levels it offers.
    """
    report = ImportReport()
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        report.errors.append(Problem("malformed", None, "Le fichier est vide."))
        return report
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader)
    columns = [_column(h) for h in header]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        report.errors.append(Problem("malformed", 1, (
            f"Colonnes manquantes : {', '.join(missing)}. L'en-tête attendu est : {delimiter.join(CSV_COLUMNS)}."
        )))
        return report
    index = {c: columns.index(c) for c in CSV_COLUMNS}
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        segment = _row(row, index, line_no, schools, report)
        if segment is not None:
            report.segments.append(segment)
    _overlaps_and_gaps(report)
    return report


def _row(row: list[str], index: dict[str, int], line: int, schools: dict[str, Sequence[str]], report: ImportReport) -> Segment | None:
    if len(row) < len(index) or max(index.values()) >= len(row):
        report.errors.append(Problem("malformed", line, f"Ligne {line} : {len(row)} colonnes au lieu de {len(CSV_COLUMNS)}."))
        return None
    cell = {c: row[i].strip() for c, i in index.items()}
    problems: list[str] = []
    if not cell["street"]:
        problems.append("le nom de la voie est vide")
    numbers: list[int] = []
    for name in ("number_from", "number_to"):
        if not re.fullmatch(r"\d{1,5}", cell[name]) or int(cell[name]) < 1:
            problems.append(f"« {cell[name]} » n'est pas un numéro valide ({name})")
        else:
            numbers.append(int(cell[name]))
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        problems.append(f"le début de la plage ({numbers[0]}) dépasse sa fin ({numbers[1]})")
    side = _SIDE_WORDS.get(cell["side"].lower())
    if side is None:
        problems.append(f"côté « {cell['side']} » inconnu (odd, even ou both)")
    if problems:
        report.errors.append(Problem("malformed", line, f"Ligne {line} : " + " ; ".join(problems) + "."))
        return None
    bad = False
    for column, needed, label in (("maternelle", MATERNELLE_LEVELS, "maternelle"), ("elementaire", ELEMENTAIRE_LEVELS, "élémentaire")):
        school = cell[column]
        if school not in schools:
            report.errors.append(Problem("unknown_school", line, f"Ligne {line} : école {label} inconnue « {school} »."))
            bad = True
        elif not any(level in schools[school] for level in needed if level is not Level.TPS):
            report.errors.append(Problem("wrong_school_type", line, (
                f"Ligne {line} : l'école « {school} » n'accueille pas d'élèves de niveau {label}."
            )))
            bad = True
    if bad:
        return None
    assert side is not None
    return Segment(cell["street"], numbers[0], numbers[1], side, cell["maternelle"], cell["elementaire"])


def _first_with_parity(n: int, parity: int) -> int:
    return n if n % 2 == parity else n + 1


def _last_with_parity(n: int, parity: int) -> int:
    return n if n % 2 == parity else n - 1


def _overlaps_and_gaps(report: ImportReport) -> None:
    by_street: dict[str, list[Segment]] = defaultdict(list)
    for s in report.segments:
        by_street[street_key(s.street)].append(s)
    for segments in by_street.values():
        segments.sort(key=lambda s: (s.number_from, s.number_to))
        name = segments[0].street
        for i, a in enumerate(segments):
            for b in segments[i + 1:]:
                if b.number_from > a.number_to:
                    break
                lo, hi = b.number_from, min(a.number_to, b.number_to)
                shared = [p for p in a.parities() & b.parities() if _first_with_parity(lo, p) <= hi]
                if shared:
                    side = "des deux côtés" if len(shared) == 2 else ("côté impair" if shared[0] == 1 else "côté pair")
                    report.errors.append(Problem("overlap", None, (
                        f"{name} : les plages {a.number_from}-{a.number_to} ({a.side.value}) et "
                        f"{b.number_from}-{b.number_to} ({b.side.value}) se chevauchent ({side}, du n° {lo} au n° {hi})."
                    )))
        for parity, side_label in ((1, "côté impair"), (0, "côté pair")):
            covering = [s for s in segments if parity in s.parities()]
            reach = None
            for s in covering:
                start = _first_with_parity(s.number_from, parity)
                end = _last_with_parity(s.number_to, parity)
                if end < start:
                    continue
                if reach is not None and start > reach + 2:
                    report.warnings.append(Problem("gap", None, (
                        f"{name} : aucun secteur {side_label} du n° {reach + 2} au n° {start - 2}."
                    )))
                reach = end if reach is None else max(reach, end)


def segments_to_csv(segments: Iterable[Segment]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in segments:
        writer.writerow([s.street, s.number_from, s.number_to, s.side.value, s.maternelle_id, s.elementaire_id])
    return out.getvalue()


# ---- enrolments --------------------------------------------------------------------------------


class Status(StrEnum):
    PENDING_AGENT = "pending_agent"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    # Closed without a decision: the family's account was deleted while it waited.
    WITHDRAWN = "withdrawn"


class PendingReason(StrEnum):
    ADDRESS = "address_unknown"
    NO_SEAT = "no_seat"
    DEROGATION = "derogation"


PENDING_LABELS = {
    PendingReason.ADDRESS: "adresse à vérifier par le service",
    PendingReason.NO_SEAT: "plus de place disponible dans l'école de secteur : décision du service",
    PendingReason.DEROGATION: "demande de dérogation en cours d'examen par le service",
}


class ReasonCategory(StrEnum):
    TRAVAIL = "travail_des_parents"
    GARDE = "mode_de_garde"
    FRATRIE = "fratrie"
    MEDICAL = "medical"
    AUTRE = "autre"


REASON_LABELS = {
    ReasonCategory.TRAVAIL: "travail des parents",
    ReasonCategory.GARDE: "mode de garde",
    ReasonCategory.FRATRIE: "frère ou sœur dans l'école demandée",
    ReasonCategory.MEDICAL: "raison médicale",
    ReasonCategory.AUTRE: "autre motif",
}


def new_enrolment_id() -> str:
    return str(uuid.uuid4())


REFERENCE_DIGITS = 6
REFERENCE_COUNTER = "enrolment-reference-{school_year}"


def reference(school_year: int, number: int) -> str:
    """The enrolment's short reference, e.g. ``INS-2027-000123``: the school year and a number
    counted per school year (``REFERENCE_COUNTER``), so unique by construction and easy to read
    out on the phone. Enrolments made before the counter keep theirs (``INS-2027-3F2B8C1D``)."""
    return f"INS-{school_year}-{number:0{REFERENCE_DIGITS}d}"


def references_to_renumber(sharing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of enrolments sharing one reference, those that get a new one: all but the oldest (by
    creation, then id), which keeps it. Only older references, eight characters of a random id,
    can be shared; counted ones never are."""
    ordered = sorted(sharing, key=lambda e: (e.get("created_at") is None, e.get("created_at") or 0, str(e.get("_id"))))
    return ordered[1:]


REFERENCE_INVALID = "Référence d'inscription invalide : par exemple INS-2027-000123."
_TYPED_REFERENCE = re.compile(r"INS[\s-]*(\d{4})[\s-]*([0-9A-F]+)")


def reference_query(text: str) -> str | None:
    """The reference an agent typed, as stored (``ins 2027 123`` is ``INS-2027-000123``; an older
    eight-character reference stays whole); None when it is not an enrolment reference."""
    found = _TYPED_REFERENCE.fullmatch(text.strip().upper())
    if found is None:
        return None
    year, number = found.groups()
    return reference(int(year), int(number)) if number.isdigit() and len(number) <= REFERENCE_DIGITS else f"INS-{year}-{number}"


# Crockford's base 32: no I, L, O or U, so a code read off paper is typed back unambiguously.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_verification_code() -> str:
    """The code printed on a certificate, that a school director types on the public
    verification page: 60 random bits (guessing one behind the gateway's rate limit is hopeless),
    in three groups of four, e.g. ``7KQD-M2XF-9PHA``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_verification_code(text: str) -> str | None:
    """What a person typed → the stored form (case, spaces, dashes and look-alike letters
    forgiven); None when it cannot be a code."""
    raw = re.sub(r"[\s-]+", "", (text or "").upper()).translate(_CODE_READS_AS)
    if len(raw) != 12 or any(c not in _CODE_ALPHABET for c in raw):
        return None
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def initials(first_name: str | None, last_name: str | None) -> str:
    """All the public verification page shows of a child: « L. D. », the first letter of each name."""
    return " ".join(f"{name.strip()[0].upper()}." for name in (first_name, last_name) if name and name.strip())


def seat_id(school_id: str, level: Level | str, school_year: int) -> str:
    return f"{school_id}:{Level(level).value}:{school_year}"


@dataclass(frozen=True)
class CapacityChange:
    """One level's capacity, new or different: what a SchoolCapacityChanged event says.
    ``school_year`` None is the school's default (every year without a capacity of its own)."""

    level: str
    school_year: int | None
    capacity: int
    previous: int | None


def capacity_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[CapacityChange]:
    """The changes from a school's capacities ``before`` (None: a school never announced) to
    ``after``: its defaults (``capacity``, per level) and its own capacities per school year
    (``capacities``, {"2027": {level: n}}). Nothing for a level whose capacity stayed the same,
    so writing a school again announces nothing."""
    old = before or {}
    changes = [CapacityChange(level, None, int(n), _maybe_int(old.get("capacity", {}).get(level)) if before else None)
               for level, n in sorted(after.get("capacity", {}).items())
               if before is None or _maybe_int(old.get("capacity", {}).get(level)) != int(n)]
    for year, levels in sorted(after.get("capacities", {}).items()):
        old_year = old.get("capacities", {}).get(year, {})
        changes += [CapacityChange(level, int(year), int(n), _maybe_int(old_year.get(level)) if before else None)
                    for level, n in sorted(levels.items())
                    if before is None or _maybe_int(old_year.get(level)) != int(n)]
    return changes


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)


def certificate_key(enrolment_id: str) -> str:
    return f"enrolments/{enrolment_id}.pdf"


def slot(child_id: str, school_year: int) -> str:
    """One active enrolment per child per year: a unique index on this value."""
    return f"{child_id}:{school_year}"


def clean_text(value: str, max_len: int) -> str:
    """Free text from a user: control characters removed, NFC, whitespace collapsed, bounded."""
    text = unicodedata.normalize("NFC", value)
    text = "".join(c if c.isprintable() or c in "\n" else " " for c in text)
    return re.sub(r"[ \t]+", " ", text).strip()[:max_len]


FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                 "octobre", "novembre", "décembre")


def french_date(d: date) -> str:
    return f"{'1er' if d.day == 1 else d.day} {FRENCH_MONTHS[d.month - 1]} {d.year}"


# French messages

NOT_UNLOCKED = ("Votre dossier famille n'a pas encore été validé par le Service Scolaire et Périscolaire : "
                "l'inscription scolaire sera possible dès sa validation.")
UNKNOWN_CHILD = "Cet enfant ne figure pas dans votre dossier famille validé."
BAD_YEAR = "Année scolaire invalide : indiquez par exemple « {year}-{next} »."
YEAR_CLOSED = "Les inscriptions sont ouvertes uniquement pour : {years}."
ALREADY = "Cet enfant est déjà inscrit (ou en cours d'inscription) pour l'année scolaire {label}."
NOT_FOUND = "Inscription introuvable."
SCHOOL_NOT_FOUND = "École introuvable."
LEVEL_NOT_OFFERED = "L'école « {school} » n'accueille pas d'élèves en {level}."
NO_SEAT = "Il n'y a plus de place en {level} à l'école « {school} » pour l'année scolaire {label}."
REASON_REQUIRED = "Le motif de la décision est obligatoire : il sera communiqué à la famille."
DEROGATION_TEXT_REQUIRED = "Expliquez votre demande de dérogation en quelques mots."
SAME_SCHOOL = "L'école demandée est déjà l'école de secteur de votre enfant."
DEROGATION_PENDING = "Une demande de dérogation est déjà en cours d'examen pour cette inscription."
DEROGATION_NONE = "Cette inscription ne comporte pas de demande de dérogation en attente."
NOT_PENDING = "Cette inscription n'attend pas de décision du service."
WITHDRAWN = ("Cette demande a été retirée : le compte de la famille a été supprimé. "
             "Il n'y a plus de décision à prendre.")
WITHDRAWN_LABEL = "demande retirée (compte supprimé)"
ENROL_THIS_YEAR = "Vous pouvez l'inscrire pour l'année scolaire en cours {label}."
OUT_OF_TOWN = ("Votre adresse ({postcode} {town}) n'est pas à {town_name} : aucune école de secteur de la commune ne "
               "lui correspond. Vous pouvez tout de même demander l'inscription : le Service Scolaire et Périscolaire "
               "l'examinera et vous répondra.")
OUT_OF_TOWN_LABEL = "adresse hors de la commune : demande examinée par le service"
VERIFICATION_UNKNOWN = ("Aucun certificat d'inscription en vigueur ne correspond à ce code. Vérifiez le code "
                        "imprimé sur le certificat, ou contactez le Service Scolaire et Périscolaire.")
CLOSED = "Cette inscription a été refusée : elle ne peut plus être modifiée."
SCHOOL_REQUIRED = "Indiquez l'école retenue : l'adresse de la famille ne figure pas sur la carte scolaire."
CERTIFICATE_NOT_READY = "Le certificat d'inscription est en cours de préparation : réessayez dans quelques secondes."
CERTIFICATE_NONE = "Cette inscription n'est pas confirmée : il n'y a pas encore de certificat d'inscription."
CAPACITY_BELOW = "Impossible : {count} élève(s) déjà inscrit(s) en {level} pour {label}."
UNAVAILABLE = "Le service des inscriptions est momentanément indisponible. Veuillez réessayer dans quelques instants."
NO_MAP = "Aucune carte scolaire n'est chargée."
IMPORT_NOT_FOUND = "Import de carte scolaire introuvable."
IMPORT_HAS_ERRORS = "Cette carte scolaire comporte des erreurs : corrigez le fichier et importez-le de nouveau."


# ---- the decision trail --------------------------------------------------------------------------

TRAIL_ACTIONS = {
    "enrolment_confirmed": "Inscription confirmée",
    "enrolment_refused": "Inscription refusée",
    "school_chosen": "École choisie (adresse absente de la carte) et inscription confirmée",
    "derogation_accepted": "Dérogation acceptée",
    "derogation_refused": "Dérogation refusée",
    "capacity_changed": "Capacité modifiée",
    "sector_map_imported": "Carte scolaire importée",
    "sector_map_applied": "Carte scolaire appliquée",
}
PENDING_FILTERS = ("address_unknown", "no_seat", "derogation", "outside_town")


def awaits_decision(enrolment: dict[str, Any]) -> bool:
    """In « Inscriptions à décider »: waiting for an agent, or with a dérogation not yet decided."""
    return enrolment.get("status") == Status.PENDING_AGENT or (enrolment.get("derogation") or {}).get("status") == "pending"


def pending_kind(enrolment: dict[str, object]) -> str:
    """Why an agent must decide: a dérogation, an address off the map or out of town, or no seat."""
    if (enrolment.get("derogation") or {}).get("status") == "pending":  # type: ignore[union-attr]
        return "derogation"
    if enrolment.get("outside_town"):
        return "outside_town"
    return str(enrolment.get("pending_reason") or "")
