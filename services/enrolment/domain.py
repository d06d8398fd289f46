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
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

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


def coming_school_year(today: date, cutoff_month: int, cutoff_day: int) -> int:
    """The school year families enrol for now: September of this year until the cut-off date
    (inclusive), then September of next year."""
    return today.year if (today.month, today.day) <= (cutoff_month, cutoff_day) else today.year + 1


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


def reference(enrolment_id: str, school_year: int) -> str:
    """The reference printed on the certificate: short, stable, derived from the id."""
    return f"INS-{school_year}-{enrolment_id.replace('-', '')[:8].upper()}"


def seat_id(school_id: str, level: Level | str, school_year: int) -> str:
    return f"{school_id}:{Level(level).value}:{school_year}"


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
YEAR_CLOSED = "Les inscriptions sont ouvertes pour la rentrée {year} (année scolaire {label}) uniquement."
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
CLOSED = "Cette inscription a été refusée : elle ne peut plus être modifiée."
SCHOOL_REQUIRED = "Indiquez l'école retenue : l'adresse de la famille ne figure pas sur la carte scolaire."
CERTIFICATE_NOT_READY = "Le certificat d'inscription est en cours de préparation : réessayez dans quelques secondes."
CERTIFICATE_NONE = "Cette inscription n'est pas confirmée : il n'y a pas encore de certificat d'inscription."
CAPACITY_BELOW = "Impossible : {count} élève(s) déjà inscrit(s) en {level} pour {label}."
UNAVAILABLE = "Le service des inscriptions est momentanément indisponible. Veuillez réessayer dans quelques instants."
NO_MAP = "Aucune carte scolaire n'est chargée."
IMPORT_NOT_FOUND = "Import de carte scolaire introuvable."
IMPORT_HAS_ERRORS = "Cette carte scolaire comporte des erreurs : corrigez le fichier et importez-le de nouveau."
