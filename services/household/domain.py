"""Rules of the household file (dossier), without I/O: its shape, its lifecycle, what a submission
needs (Code de l'éducation D131-3-1), what a change does to what was validated, the French
messages, and what erasure keeps.

A dossier is stored as one document. Children, guardians and the address carry the document id
that proves them (``identity_document_id``, ``proof_document_id``); a sworn statement
(attestation sur l'honneur) may stand in for any of them. Recommended pieces are listed apart and
never block a submission.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

# ---- lifecycle ---------------------------------------------------------------------------------


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALIDATED = "validated"
    REJECTED = "rejected"
    CORRECTIONS_REQUESTED = "corrections_requested"
    ERASED = "erased"


STATUS_LABELS = {
    Status.DRAFT: "Brouillon",
    Status.SUBMITTED: "Transmis au Service Scolaire et Périscolaire, en attente d'examen",
    Status.VALIDATED: "Validé",
    Status.REJECTED: "Refusé",
    Status.CORRECTIONS_REQUESTED: "Corrections demandées",
    Status.ERASED: "Supprimé",
}


class Decision(StrEnum):
    VALIDATE = "validated"
    REJECT = "rejected"
    REQUEST_CORRECTIONS = "corrections_requested"


DECISION_LABELS = {
    Decision.VALIDATE: "Dossier validé",
    Decision.REJECT: "Dossier refusé",
    Decision.REQUEST_CORRECTIONS: "Corrections demandées",
}
SUBMITTED_LABEL = "Dossier transmis"
RESUBMITTED_LABEL = "Dossier transmis à nouveau"

# Where the family may edit its file: never while an agent examines it, never once erased.
EDITABLE = frozenset({Status.DRAFT, Status.CORRECTIONS_REQUESTED, Status.REJECTED, Status.VALIDATED})
SUBMITTABLE = frozenset({Status.DRAFT, Status.CORRECTIONS_REQUESTED, Status.REJECTED})

UNDER_REVIEW = "Votre dossier est en cours d'examen par le Service Scolaire et Périscolaire : il ne peut pas être modifié pour l'instant."
ALREADY_SUBMITTED = "Votre dossier a déjà été transmis : il est en cours d'examen."
VALIDATED_UNCHANGED = "Votre dossier est déjà validé et n'a pas été modifié depuis : il n'y a rien à transmettre."
ERASED = "Ce dossier a été supprimé."
NOT_UNDER_REVIEW = "Ce dossier n'est pas en attente d'examen : aucune décision n'est possible."
DECIDED_BY_ANOTHER = "Ce dossier vient d'être traité par un autre agent."
CHANGED_MEANWHILE = "Votre dossier a été modifié entre-temps (dans un autre onglet ?). Rechargez la page et recommencez."
ALREADY_EXISTS = "Vous avez déjà un dossier : modifiez-le plutôt que d'en créer un autre."
NOT_ACTIVATED = (
    "Votre compte n'est pas encore reconnu comme activé par ce service. Si vous venez de l'activer, "
    "réessayez dans quelques instants."
)
NOT_FOUND = "Dossier introuvable."
NO_DOSSIER = "Vous n'avez pas encore de dossier."


class TransitionRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_editable(status: str) -> None:
    if status == Status.SUBMITTED:
        raise TransitionRefused(UNDER_REVIEW)
    if status == Status.ERASED:
        raise TransitionRefused(ERASED)


def check_submittable(status: str) -> None:
    """A validated file that the family changes goes back to draft (see ``after_edit``), so a file
    still validated has nothing new to submit."""
    if status == Status.SUBMITTED:
        raise TransitionRefused(ALREADY_SUBMITTED)
    if status == Status.ERASED:
        raise TransitionRefused(ERASED)
    if status == Status.VALIDATED:
        raise TransitionRefused(VALIDATED_UNCHANGED)


def after_edit(status: str, changed: bool) -> Status:
    """The status once the family saved its file: a change to a validated file makes it a draft
    again (to be resubmitted); children and address already validated keep their flag. A file
    with corrections requested, or rejected, keeps its status (and the agent's reasons) until it
    is resubmitted."""
    if changed and status == Status.VALIDATED:
        return Status.DRAFT
    return Status(status)


def check_decidable(status: str) -> None:
    """An agent decides only on a submitted file; a file just decided means another agent won."""
    if status in (Status.VALIDATED, Status.REJECTED, Status.CORRECTIONS_REQUESTED):
        raise TransitionRefused(DECIDED_BY_ANOTHER)
    if status != Status.SUBMITTED:
        raise TransitionRefused(NOT_UNDER_REVIEW)


# ---- data --------------------------------------------------------------------------------------

RELATIONSHIPS = {"mère": "Mère", "père": "Père", "autre représentant légal": "Autre représentant légal"}
RECOMMENDED_KINDS = {
    "vaccination_record": "Carnet de vaccinations (recommandé)",
    "custody_judgement": "Jugement relatif à l'autorité parentale ou à la garde (recommandé)",
    "insurance": "Attestation d'assurance scolaire (recommandé)",
    "other": "Autre pièce (recommandé)",
}
# Which document kinds (from the documents service) may prove a requirement.
SWORN_STATEMENT = "sworn_statement"
REQUIREMENT_KINDS = {
    "child_identity": {"child_identity", SWORN_STATEMENT},
    "guardian_identity": {"guardian_identity", SWORN_STATEMENT},
    "proof_of_address": {"proof_of_address", SWORN_STATEMENT},
}
MAX_AGE_YEARS = 18
MAX_CHILDREN = 12
MAX_GUARDIANS = 2


def new_id() -> str:
    return str(uuid.uuid4())


def _years_between(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def birth_date_problem(born: date, today: date, who: str) -> str | None:
    if born > today:
        return f"La date de naissance de {who} est dans le futur."
    if _years_between(born, today) >= MAX_AGE_YEARS:
        return f"La date de naissance de {who} n'est pas plausible pour une inscription scolaire (18 ans ou plus)."
    return None


def child_name(child: dict[str, Any]) -> str:
    return f"{child.get('first_name', '')} {child.get('last_name', '')}".strip() or "l'enfant"


def guardian_name(guardian: dict[str, Any]) -> str:
    return f"{guardian.get('first_name', '')} {guardian.get('last_name', '')}".strip() or "le représentant légal"


def content_problems(content: dict[str, Any], today: date) -> list[str]:
    """What makes the declared data invalid (shape is checked by the API models; this is meaning)."""
    problems: list[str] = []
    guardians = content.get("guardians") or []
    children = content.get("children") or []
    if len(guardians) > MAX_GUARDIANS:
        problems.append("Un dossier compte au plus deux représentants légaux.")
    if len(children) > MAX_CHILDREN:
        problems.append(f"Un dossier compte au plus {MAX_CHILDREN} enfants.")
    for guardian in guardians:
        if guardian.get("relationship") not in RELATIONSHIPS:
            problems.append(
                f"Le lien de {guardian_name(guardian)} avec l'enfant doit être : mère, père ou autre représentant légal."
            )
    for child in children:
        born = child.get("birth_date")
        if isinstance(born, str):
            born = date.fromisoformat(born)
        if born is not None:
            problem = birth_date_problem(born, today, f"l'enfant {child_name(child)}")
            if problem:
                problems.append(problem)
    return problems


# ---- changes to a file, and what stays validated ------------------------------------------------

ADDRESS_FIELDS = ("number", "street", "postcode", "town")
CHILD_FIELDS = ("first_name", "last_name", "birth_date")


class UnknownItem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def apply_content(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The file's new content. Children and guardians keep their id when the family sends it back;
    a child or the address keeps ``validated`` only while what the agent validated is unchanged."""
    result: dict[str, Any] = {}
    old_address = current.get("address")
    address = new.get("address")
    if address is None:
        result["address"] = None
    else:
        same = old_address is not None and all(old_address.get(f) == address.get(f) for f in ADDRESS_FIELDS)
        result["address"] = {
            **{f: address[f] for f in ADDRESS_FIELDS},
            "proof_document_id": address.get("proof_document_id"),
            "validated": bool(same and old_address.get("validated")),
        }
    old_children = {c["child_id"]: c for c in current.get("children") or []}
    children = []
    for child in new.get("children") or []:
        child_id = child.get("child_id")
        old = None
        if child_id:
            old = old_children.get(child_id)
            if old is None:
                raise UnknownItem(f"Enfant inconnu dans ce dossier ({child_id}) : n'envoyez pas d'identifiant pour un nouvel enfant.")
        same = old is not None and all(old.get(f) == child.get(f) for f in CHILD_FIELDS)
        children.append({
            "child_id": child_id or new_id(),
            **{f: child[f] for f in CHILD_FIELDS},
            "identity_document_id": child.get("identity_document_id"),
            "validated": bool(same and old.get("validated")),
        })
    old_guardians = {g["guardian_id"]: g for g in current.get("guardians") or []}
    guardians = []
    for guardian in new.get("guardians") or []:
        guardian_id = guardian.get("guardian_id")
        if guardian_id and guardian_id not in old_guardians:
            raise UnknownItem(f"Représentant légal inconnu dans ce dossier ({guardian_id}).")
        guardians.append({
            "guardian_id": guardian_id or new_id(),
            "first_name": guardian["first_name"],
            "last_name": guardian["last_name"],
            "relationship": guardian["relationship"],
            "phone": guardian.get("phone"),
            "email": guardian.get("email"),
            "identity_document_id": guardian.get("identity_document_id"),
        })
    result["children"] = children
    result["guardians"] = guardians
    result["recommended"] = [
        {"kind": r["kind"], "document_id": r["document_id"], "child_id": r.get("child_id")}
        for r in new.get("recommended") or []
    ]
    return result


def content_of(dossier: dict[str, Any]) -> dict[str, Any]:
    return {k: dossier.get(k) for k in ("address", "children", "guardians", "recommended")}


def mark_validated(content: dict[str, Any]) -> dict[str, Any]:
    """After an agent's validation, every child and the address are validated."""
    result = dict(content)
    if content.get("address"):
        result["address"] = {**content["address"], "validated": True}
    result["children"] = [{**c, "validated": True} for c in content.get("children") or []]
    return result


# ---- proofs and submission ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """One document attached to the file, and what it is attached for."""

    document_id: str
    requirement: str | None  # child_identity / guardian_identity / proof_of_address; None if recommended
    label: str  # French, e.g. "la pièce d'identité de l'enfant Léa Martin"


def attachments(content: dict[str, Any]) -> list[Attachment]:
    found: list[Attachment] = []
    address = content.get("address")
    if address and address.get("proof_document_id"):
        found.append(Attachment(address["proof_document_id"], "proof_of_address", "le justificatif de domicile"))
    for guardian in content.get("guardians") or []:
        if guardian.get("identity_document_id"):
            found.append(Attachment(guardian["identity_document_id"], "guardian_identity",
                                    f"la pièce d'identité de {guardian_name(guardian)}"))
    for child in content.get("children") or []:
        if child.get("identity_document_id"):
            found.append(Attachment(child["identity_document_id"], "child_identity",
                                    f"la pièce d'identité de l'enfant {child_name(child)}"))
    for piece in content.get("recommended") or []:
        found.append(Attachment(piece["document_id"], None, f"la pièce « {RECOMMENDED_KINDS.get(piece['kind'], piece['kind'])} »"))
    return found


def document_title(attachment: Attachment, *, sworn: bool) -> str:
    """What an agent reads for a document: the piece itself, or a sworn statement (attestation sur
    l'honneur, Code de l'éducation D131-3-1) and the piece it stands in for."""
    if sworn:
        label = attachment.label
        of = f"du {label[3:]}" if label.startswith("le ") else f"des {label[4:]}" if label.startswith("les ") else f"de {label}"
        return f"Attestation sur l'honneur, à la place {of}"
    return attachment.label[:1].upper() + attachment.label[1:]


def document_ids(content: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for attachment in attachments(content):
        seen.setdefault(attachment.document_id, None)
    return list(seen)


def missing_proofs(content: dict[str, Any]) -> list[str]:
    missing: list[str] = []
    address = content.get("address")
    if not address:
        missing.append("L'adresse du domicile n'est pas renseignée.")
    elif not address.get("proof_document_id"):
        missing.append("Il manque le justificatif de domicile (ou une attestation sur l'honneur).")
    guardians = content.get("guardians") or []
    if not guardians:
        missing.append("Indiquez au moins un représentant légal.")
    for guardian in guardians:
        if not guardian.get("identity_document_id"):
            missing.append(f"Il manque la pièce d'identité de {guardian_name(guardian)} (ou une attestation sur l'honneur).")
    children = content.get("children") or []
    if not children:
        missing.append("Indiquez au moins un enfant.")
    for child in children:
        if not child.get("identity_document_id"):
            missing.append(
                f"Il manque la pièce d'identité de l'enfant {child_name(child)} (ou une attestation sur l'honneur)."
            )
    return missing


def document_problems(content: dict[str, Any], account_id: str, known: dict[str, dict[str, Any]]) -> list[str]:
    """Each attached document must belong to the account (as the documents events say), be of a
    kind that proves what it is attached for, and be scanned clean."""
    problems: list[str] = []
    for attachment in attachments(content):
        document = known.get(attachment.document_id)
        label = attachment.label
        if document is not None and document.get("status") == "deleted":  # tombstones name no account
            problems.append(f"Pour {label}, le document indiqué a été supprimé : envoyez-en un autre.")
            continue
        if document is None or document.get("account_id") != account_id:
            problems.append(f"Pour {label}, le document indiqué est introuvable parmi vos pièces "
                            "(s'il vient d'être envoyé, réessayez dans quelques instants).")
            continue
        status = document.get("status")
        if status == "infected":
            problems.append(f"Pour {label}, le document contient un virus et a été supprimé : envoyez-en un autre.")
        elif status == "quarantined":
            problems.append(f"Pour {label}, l'analyse antivirus du document n'a pas pu aller jusqu'au bout : "
                            "il ne peut pas être transmis. Envoyez-en un autre (une nouvelle photo ou un nouveau scan).")
        elif status != "clean":
            problems.append(f"Pour {label}, le document est en cours de vérification antivirus : réessayez dans quelques instants.")
        if attachment.requirement and document.get("kind") not in REQUIREMENT_KINDS[attachment.requirement]:
            problems.append(f"Pour {label}, le document envoyé n'est pas du bon type (ni la pièce attendue, ni une attestation sur l'honneur).")
    return problems


def submission_problems(content: dict[str, Any], account_id: str, known: dict[str, dict[str, Any]], today: date) -> list[str]:
    """Everything that prevents the submission, in French; empty when it may be submitted."""
    return [*content_problems(content, today), *missing_proofs(content), *document_problems(content, account_id, known)]


# ---- corrections -------------------------------------------------------------------------------


def item_keys(content: dict[str, Any]) -> set[str]:
    """What an agent's correction may concern: "address", "children.<id>", "guardians.<id>" (each
    optionally followed by ".<field>"), or an attached document id."""
    keys = {"address"}
    keys |= {f"children.{c['child_id']}" for c in content.get("children") or []}
    keys |= {f"guardians.{g['guardian_id']}" for g in content.get("guardians") or []}
    keys |= set(document_ids(content))
    return keys


def unknown_items(content: dict[str, Any], items: list[str]) -> list[str]:
    keys = item_keys(content)
    unknown = []
    for item in items:
        if item in keys:
            continue
        parts = item.split(".")
        if parts[0] == "address" and len(parts) == 2:
            continue
        if len(parts) >= 2 and ".".join(parts[:2]) in keys and len(parts) <= 3:
            continue
        unknown.append(item)
    return unknown


def corrections_for(corrections: list[dict[str, Any]], *prefixes: str) -> list[str]:
    """The agent's reasons concerning an item (its key, a field under it, or its document)."""
    reasons = []
    for correction in corrections:
        item = correction["item"]
        if any(p and (item == p or item.startswith(p + ".")) for p in prefixes):
            reasons.append(correction["reason"])
    return reasons


# ---- erasure -----------------------------------------------------------------------------------

PERSONAL_FIELDS = ("address", "children", "guardians", "recommended", "corrections", "account_id", "search", "assignment")


def anonymised_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the audit needs after erasure: what happened, when, and which agent; no free text
    (a reason may name a person) and no family identifier."""
    return [{k: entry[k] for k in ("at", "action", "actor", "agent_id", "version") if k in entry} for entry in history]


# ---- short references --------------------------------------------------------------------------

REFERENCE_DIGITS = 6


def reference(prefix: str, year: int, number: int) -> str:
    """The file's short reference, e.g. ``MSL-2027-000123``: the town's code, the year the file
    was opened, and a number counted per year. Readable on the phone, unique by construction."""
    return f"{prefix}-{year}-{number:0{REFERENCE_DIGITS}d}"


# ---- search ------------------------------------------------------------------------------------

_SEPARATORS = str.maketrans({c: " " for c in "-'’_.,;:/()"})


def normalise(text: str) -> str:
    """Lower case without accents, so that « Léa » is found by « lea » and « LÉA »."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return [w for w in normalise(text).translate(_SEPARATORS).split() if w]


def search_terms(dossier: dict[str, Any], email: str | None) -> list[str]:
    """The exact words an agent may search a file by: its reference (whole, or its number with or
    without the zeros), each guardian's and child's first and last names (whole, and each word of
    a compound name), and the account's and guardians' email addresses. Stored with the file and
    indexed: a search is an equality on one word, never a scan."""
    terms: set[str] = set()
    ref = dossier.get("reference")
    if ref:
        terms.add(normalise(ref))
        number = ref.rsplit("-", 1)[-1]
        terms.update({number, number.lstrip("0") or "0"})
    for person in [*(dossier.get("guardians") or []), *(dossier.get("children") or [])]:
        for field in ("first_name", "last_name"):
            value = person.get(field) or ""
            if value:
                terms.add(normalise(value).strip())
                terms.update(_words(value))
    for address in [email, *((g.get("email") for g in dossier.get("guardians") or []))]:
        if address:
            terms.add(normalise(address).strip())
    return sorted(terms)


def query_terms(query: str) -> list[str]:
    """The words of an agent's search: an email or a reference stays whole, a name is split."""
    text = normalise(query).strip()
    if not text:
        return []
    if "@" in text or re.fullmatch(r"[a-z]+-\d{4}-\d+", text):
        return [text]
    return _words(query)


# ---- assignment (« Je prends ce dossier ») ---------------------------------------------------

ASSIGNMENT_MINUTES = 30
ASSIGNED_TO_OTHER = "Ce dossier est en cours d'examen par un autre agent."
NOT_ASSIGNED_TO_YOU = "Ce dossier ne vous est pas attribué."
NOT_ASSIGNABLE = "Seul un dossier en attente d'examen peut être pris en charge."


def lease_holder(assignment: dict[str, Any] | None, now: datetime) -> str | None:
    """Who examines the file now: the agent whose lease has not expired, or nobody. An agent who
    left without releasing blocks nobody for more than the lease."""
    if not assignment or assignment.get("until") is None:
        return None
    until = assignment["until"]
    if until.tzinfo is None:  # the database hands back naive UTC datetimes
        until = until.replace(tzinfo=UTC)
    return assignment.get("agent_id") if until > now else None


SECTOR_RANK = 0  # a sector school found on submission, below any real enrolment event (rank ≥ 1)


def file_schools(states: Iterable[dict[str, Any]]) -> list[str]:
    """The schools a file is listed under, from its children's enrolment states: every school a
    child is enrolled in or asks for (refused ones left out); a child with no enrolment yet (a
    file waiting for review) is under the sector school found at submission; once a child has a
    real enrolment, refused included, that sector guess no longer counts for that child."""
    rows = list(states)
    enrolled = {r.get("child_id") for r in rows if r.get("rank", SECTOR_RANK) > SECTOR_RANK}
    return sorted({r["school_id"] for r in rows if r.get("school_id") and r.get("state") != "refused"
                   and (r.get("rank", SECTOR_RANK) > SECTOR_RANK or r.get("child_id") not in enrolled)})


def check_may_take(status: str, assignment: dict[str, Any] | None, agent_id: str, now: datetime) -> None:
    if status != Status.SUBMITTED:
        raise TransitionRefused(NOT_ASSIGNABLE)
    holder = lease_holder(assignment, now)
    if holder is not None and holder != agent_id:
        raise TransitionRefused(ASSIGNED_TO_OTHER)


def check_may_decide(assignment: dict[str, Any] | None, agent_id: str, now: datetime) -> None:
    """A file taken by another agent is theirs until they release it or their lease expires."""
    holder = lease_holder(assignment, now)
    if holder is not None and holder != agent_id:
        raise TransitionRefused(ASSIGNED_TO_OTHER)


# ---- the agents' CSV export --------------------------------------------------------------------

EXPORT_HEADER = ["Référence", "État", "Transmis le", "Première transmission", "Décidé le", "Représentants légaux",
                 "Enfants", "Nombre d'enfants", "Code postal", "Commune"]


def _cell(value: str) -> str:
    """A cell French spreadsheet software reads as text: quoted when it holds a separator, a quote
    or a line break; a leading = + - @ neutralised (no formula runs from family data)."""
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    if any(c in value for c in ';"\r\n'):
        value = '"' + value.replace('"', '""') + '"'
    return value


def export_csv(rows: list[dict[str, Any]], day: Callable[[Any], str]) -> bytes:
    """UTF-8 with a byte order mark and « ; » separators, as French Excel expects."""
    lines = [EXPORT_HEADER]
    for row in rows:
        children = row.get("children") or []
        lines.append([
            row.get("reference") or "", STATUS_LABELS.get(Status(row["status"]), row["status"]) if row.get("status") in set(Status) else "",
            day(row.get("submitted_at")), day(row.get("first_submitted_at")), day(row.get("decided_at")),
            ", ".join(guardian_name(g) for g in row.get("guardians") or []),
            ", ".join(child_name(c) for c in children), str(len(children)),
            (row.get("address") or {}).get("postcode", ""), (row.get("address") or {}).get("town", ""),
        ])
    text = "\r\n".join(";".join(_cell(str(v)) for v in line) for line in lines) + "\r\n"
    return "\ufeff".encode() + text.encode("utf-8")


# ---- preset correction reasons (the back-office's editable list) ----------------------------------

# The list the Service starts with; admins then edit it in the back-office (« Motifs de correction »).
DEFAULT_CORRECTION_REASONS = (
    "Document illisible", "Document expiré", "Nom différent de celui déclaré",
    "Justificatif de domicile de plus de 3 mois", "Document incomplet (une page manque)", "Ce n'est pas le document attendu",
)
# A preset reason is completed by the agent's precision (500 characters) within a correction's
# 2,000; thirty presets is already more than a drop-down list an agent reads at a glance.
MAX_CORRECTION_REASONS = 30
MAX_CORRECTION_REASON_LENGTH = 150
REASONS_CHANGED_MEANWHILE = ("La liste des motifs a été modifiée entre-temps par un autre administrateur. "
                             "Rechargez la page et recommencez.")
REASON_LABELS = {"seeded": "Liste initiale", "changed": "Liste modifiée"}


def clean_reason(text: str) -> str:
    """A reason as stored: its words separated by single spaces (a pasted line break or a
    double space would show in the family's email)."""
    return " ".join(text.split())


def correction_reasons_problems(texts: list[str]) -> list[str]:
    """Why a list of preset reasons cannot be kept, in French (empty when it can): an empty
    reason, one too long, two that read the same (accents, case and spaces ignored), too many, none."""
    problems: list[str] = []
    if not texts:
        problems.append("Gardez au moins un motif dans la liste : les agents choisissent parmi eux.")
    if len(texts) > MAX_CORRECTION_REASONS:
        problems.append(f"La liste compte au plus {MAX_CORRECTION_REASONS} motifs : supprimez-en avant d'en ajouter.")
    seen: dict[str, int] = {}
    for position, text in enumerate(texts, start=1):
        if not text:
            problems.append(f"Le motif n° {position} est vide : saisissez-le ou supprimez-le.")
        elif len(text) > MAX_CORRECTION_REASON_LENGTH:
            problems.append(f"Le motif n° {position} dépasse {MAX_CORRECTION_REASON_LENGTH} caractères : raccourcissez-le.")
        key = normalise(text)
        if text and key in seen:
            problems.append(f"Le motif « {text} » figure déjà dans la liste (n° {seen[key]}).")
        seen.setdefault(key, position)
    return problems


def new_reasons(texts: list[str]) -> list[dict[str, str]]:
    return [{"id": new_id(), "text": text} for text in texts]


def apply_reasons(current: list[dict[str, str]], wanted: list[dict[str, str | None]]) -> list[dict[str, str]]:
    """The new list: an entry with the ``id`` of a current reason keeps it (its text edited if it
    changed), one without an id is a new reason; the current ones not named are removed. Raises
    ``UnknownItem`` for an id the list does not have (removed meanwhile), or named twice."""
    known = {r["id"] for r in current}
    result: list[dict[str, str]] = []
    named: set[str] = set()
    for entry in wanted:
        reason_id = entry.get("id")
        if reason_id and (reason_id not in known or reason_id in named):
            raise UnknownItem("Un des motifs modifiés n'est plus dans la liste (supprimé entre-temps ?). "
                              "Rechargez la page et recommencez.")
        if reason_id:
            named.add(reason_id)
        result.append({"id": reason_id or new_id(), "text": clean_reason(entry.get("text") or "")})
    return result


def reasons_change(before: list[dict[str, str]], after: list[dict[str, str]]) -> dict[str, Any]:
    """What a change did, for the list's history: texts added and removed, texts edited (from, to)
    and whether the kept reasons changed order. Empty when nothing changed."""
    old, new = {r["id"]: r["text"] for r in before}, {r["id"]: r["text"] for r in after}
    change: dict[str, Any] = {
        "added": [new[i] for i in new if i not in old],
        "removed": [old[i] for i in old if i not in new],
        "edited": [{"from": old[i], "to": new[i]} for i in new if i in old and old[i] != new[i]],
        "reordered": [i for i in old if i in new] != [i for i in new if i in old],
    }
    return {k: v for k, v in change.items() if v}
