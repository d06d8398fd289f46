"""Rules of the documents service, without I/O: kinds, statuses and their transitions, type
detection from the first bytes of a file, file-name sanitising, who may see what, scan retry
delays, and the text of the sworn statement. Every message a family sees is French."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import filetype


class Kind(StrEnum):
    CHILD_IDENTITY = "child_identity"
    GUARDIAN_IDENTITY = "guardian_identity"
    PROOF_OF_ADDRESS = "proof_of_address"
    SWORN_STATEMENT = "sworn_statement"
    OTHER = "other"


KIND_LABELS = {
    Kind.CHILD_IDENTITY: "Identité de l'enfant",
    Kind.GUARDIAN_IDENTITY: "Identité du responsable légal",
    Kind.PROOF_OF_ADDRESS: "Justificatif de domicile",
    Kind.SWORN_STATEMENT: "Attestation sur l'honneur",
    Kind.OTHER: "Autre document",
}


class Status(StrEnum):
    UPLOADING = "uploading"  # intent: the record exists, the object may not yet
    PENDING = "pending"  # stored, waiting for the virus scan
    CLEAN = "clean"
    INFECTED = "infected"  # the object was deleted; the record says why
    # « À vérifier »: the scan reached one of clamd's limits or could not finish, so nothing
    # says the file is harmless. The object stays in quarantine: no one can open it.
    QUARANTINED = "quarantined"
    DELETED = "deleted"  # tombstone: no object, no personal data kept beyond the kind


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.UPLOADING: frozenset({Status.PENDING}),
    Status.PENDING: frozenset({Status.CLEAN, Status.INFECTED, Status.QUARANTINED, Status.DELETED}),
    Status.CLEAN: frozenset({Status.DELETED}),
    Status.INFECTED: frozenset({Status.DELETED}),
    Status.QUARANTINED: frozenset({Status.DELETED}),
    Status.DELETED: frozenset(),
}

# Statuses whose record points at an object in storage. An object referenced by no record in one
# of these statuses is an orphan the sweeper deletes.
LIVE_STATUSES = frozenset({Status.UPLOADING, Status.PENDING, Status.CLEAN, Status.QUARANTINED})


class InvalidTransition(ValueError):
    pass


def can_transition(current: str, target: str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def transition(current: str, target: str) -> Status:
    """The target status if the move is allowed; raises ``InvalidTransition`` otherwise."""
    if not can_transition(current, target):
        raise InvalidTransition(f"{current} -> {target}")
    return Status(target)


# ---- type detection -------------------------------------------------------------------------

HEAD_BYTES = 8192  # enough for every signature we accept


@dataclass(frozen=True)
class FileType:
    name: str  # pdf, jpeg, png, heic
    content_type: str
    extension: str

    @property
    def needs_conversion(self) -> bool:
        return self.name == "heic"


PDF = FileType("pdf", "application/pdf", ".pdf")
JPEG = FileType("jpeg", "image/jpeg", ".jpg")
PNG = FileType("png", "image/png", ".png")
HEIC = FileType("heic", "image/heic", ".heic")

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"heif"}


def detect_type(head: bytes) -> FileType | None:
    """The accepted type of a file from its first bytes (never its name nor declared type);
    None when it is none of PDF, JPEG, PNG, HEIC/HEIF."""
    if head.startswith(b"%PDF-"):
        return PDF
    if len(head) >= 12 and head[4:8] == b"ftyp":
        # ISO base media: HEIF photos carry one of these brands (AVIF, MP4 and the like do not).
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(len(head), 64), 4)}
        if head[8:12] in _HEIF_BRANDS or (head[8:12] not in {b"avif", b"avis"} and brands & {b"heic", b"heix"}):
            return HEIC
        return None
    kind = filetype.guess(head)
    if kind is None:
        return None
    if kind.mime == "image/jpeg":
        return JPEG
    if kind.mime == "image/png":
        return PNG
    return None


# ---- file names -----------------------------------------------------------------------------

MAX_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[^\w .()+,&'@-]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def sanitise_filename(name: str | None) -> str:
    """A display name safe to store and to put in a Content-Disposition header: no directory,
    no control or markup characters, no leading dot, at most 120 characters (extension kept)."""
    if not name:
        return "document"
    text = unicodedata.normalize("NFC", name)
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    text = _UNSAFE.sub("_", text)
    text = _SPACES.sub(" ", text).strip(" ._")
    if not text:
        return "document"
    if len(text) > MAX_NAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip(" ._") + "." + ext
        else:
            text = text[:MAX_NAME_LENGTH].rstrip(" ._")
    return text


def stored_name(original: str, detected: FileType) -> str:
    """The name shown for the stored file: the sanitised original with the extension of what is
    actually stored (a HEIC photo is stored as JPEG; a PNG named .pdf is shown as .png)."""
    target = JPEG if detected.needs_conversion else detected
    stem, dot, ext = original.rpartition(".")
    if not dot or not stem:
        stem, ext = original, ""
    same = {".jpg", ".jpeg"} if target is JPEG else {target.extension}
    if "." + ext.lower() in same:
        return original
    return sanitise_filename(stem + target.extension)


def ascii_filename(name: str) -> str:
    """An ASCII fallback of a display name for the ``filename=`` parameter of a header."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    folded = re.sub(r'[^A-Za-z0-9 ._()+,-]', "_", folded).strip() or "document"
    return folded


def object_key(account_id: str, document_id: str) -> str:
    """Random, never derived from the file name; prefixed by the account so erasure can list."""
    return f"{OBJECT_PREFIX}{account_id}/{document_id}"


OBJECT_PREFIX = "documents/"


def new_document_id() -> str:
    return str(uuid.uuid4())


def is_document_id(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


# ---- access ---------------------------------------------------------------------------------

STAFF_ROLES = frozenset({"agent", "admin"})


def visible_to(document: dict, *, account_id: str, role: str, submitted: bool) -> bool:
    """Whether the caller may know the document exists. The owner sees it in every status but
    the tombstone; staff see it only once scanned (clean, or quarantined: they are told it is to be
    checked) and attached to a file submitted for review."""
    status = document.get("status")
    if status in (Status.DELETED, Status.UPLOADING):
        return False
    if role == "family":
        return document.get("account_id") == account_id
    if role in STAFF_ROLES:
        return status in (Status.CLEAN, Status.QUARANTINED) and submitted
    return False


def downloadable_by(document: dict, *, account_id: str, role: str, submitted: bool) -> bool:
    """The owner may download what is stored (pending or clean); staff only clean, submitted ones."""
    if not visible_to(document, account_id=account_id, role=role, submitted=submitted):
        return False
    return document["status"] in (Status.PENDING, Status.CLEAN)


# ---- scan -----------------------------------------------------------------------------------


def scan_retry_delay(attempts: int, initial_s: float, max_s: float) -> timedelta:
    """Backoff after ``attempts`` failed scans (1 = the first failure)."""
    return timedelta(seconds=min(max_s, initial_s * 2 ** max(0, attempts - 1)))


def infected_reason(signature: str) -> str:
    return (
        f"Ce fichier contient un virus ({signature}) : il a été supprimé et personne ne peut le "
        "télécharger. Merci d'envoyer un autre fichier, par exemple une nouvelle photo ou un nouveau scan du document."
    )


# clamd (AlertExceedsMax) reports a scan that stopped at one of its limits as this "signature";
# it says nothing about the file's content, only that the rest of it was not looked at.
LIMIT_REACHED = "Heuristics.Limits.Exceeded"
# An INSTREAM longer than StreamMaxLength is refused with this error, without a verdict.
STREAM_TOO_LONG = "size limit exceeded"


def clamd_signature(answer: str) -> tuple[bool, str | None]:
    """Reads clamd's answer to a scan: (True, None) when clean, (False, signature) when infected
    or when a limit was reached (``is_limit``); raises ``ValueError`` on an error answer (the
    scan did not happen)."""
    text = answer.strip("\0\n ")
    body = text.split(":", 1)[1].strip() if ":" in text else text
    if body == "OK":
        return True, None
    if body.endswith(" FOUND"):
        return False, body.removesuffix(" FOUND").strip() or "virus"
    if STREAM_TOO_LONG in body and body.endswith("ERROR"):
        return False, f"{LIMIT_REACHED}.StreamMaxLength"
    raise ValueError(f"clamd could not scan: {text[:200]}")


def scan_never_finishes(incomplete: bool, attempts: int, max_attempts: int) -> bool:
    """Whether a scan that gave no verdict is given up (quarantined) rather than retried: only
    when clamd itself took the file and failed ``max_attempts`` times (not when it was down)."""
    return incomplete and attempts >= max_attempts


def is_limit(signature: str | None) -> bool:
    """A verdict that is not one: the scan stopped at a limit (size, recursion, time...)."""
    return signature is not None and signature.startswith(LIMIT_REACHED)


# ---- French messages ------------------------------------------------------------------------

NOT_FOUND = "Ce document est introuvable."
TOO_LARGE = "Le fichier est trop volumineux ({max_mb} Mo maximum). Essayez de le réduire ou de prendre une photo moins lourde."
EMPTY = "Le fichier est vide. Choisissez un autre fichier."
UNSUPPORTED = (
    "Ce fichier n'est ni un PDF ni une photo (JPEG, PNG, HEIC) : nous ne pouvons pas l'accepter. "
    "Enregistrez votre document en PDF ou prenez-le en photo, puis réessayez."
)
UNREADABLE_PHOTO = "Cette photo n'a pas pu être lue. Reprenez la photo ou enregistrez-la en JPEG, puis réessayez."
NO_FILE = "Aucun fichier n'a été joint. Choisissez un fichier à envoyer."
BAD_KIND = (
    "Précisez de quel document il s'agit : identité de l'enfant (child_identity), identité du responsable "
    "légal (guardian_identity), justificatif de domicile (proof_of_address), attestation sur l'honneur "
    "(sworn_statement) ou autre (other)."
)
BAD_FORM = "L'envoi n'a pas pu être lu. Réessayez d'envoyer le fichier."
UNAVAILABLE = "Le service des documents est momentanément indisponible. Votre fichier n'a pas été enregistré : réessayez dans quelques minutes."
UNAVAILABLE_READ = "Le service des documents est momentanément indisponible. Réessayez dans quelques minutes."
INFECTED_NO_DOWNLOAD = "Ce fichier a été supprimé car il contenait un virus : il ne peut pas être téléchargé."
QUARANTINED_REASON = (
    "À vérifier : l'analyse antivirus de ce fichier n'a pas pu aller jusqu'au bout (fichier trop volumineux "
    "une fois décompressé, ou trop complexe). Il est mis à l'écart et ne peut pas être ouvert. Merci d'envoyer "
    "un autre fichier, par exemple une nouvelle photo ou un nouveau scan du document."
)
QUARANTINED_NO_DOWNLOAD = (
    "Ce fichier est à vérifier : son analyse antivirus n'a pas pu aller jusqu'au bout, il ne peut donc pas être "
    "ouvert ni téléchargé. Demandez un autre fichier à la famille."
)
ATTACHED_TO_SUBMITTED = (
    "Ce document fait partie d'un dossier transmis à la mairie pour vérification : il ne peut pas être "
    "supprimé pour l'instant. Si vous devez le remplacer, attendez la réponse du service ou contactez-le."
)


# ---- sworn statement (attestation sur l'honneur, Code de l'éducation D131-3-1) --------------

SWORN_SUBJECTS = {
    Kind.CHILD_IDENTITY: "l'identité de l'enfant",
    Kind.GUARDIAN_IDENTITY: "mon identité de responsable légal",
    Kind.PROOF_OF_ADDRESS: "mon domicile",
}


@dataclass(frozen=True)
class SwornStatement:
    title: str
    declarant: str
    paragraphs: list[str]
    town: str


def _clean_text(value: str | None, limit: int) -> str:
    text = unicodedata.normalize("NFC", value or "")
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    return _SPACES.sub(" ", text).strip()[:limit]


def sworn_statement_problems(subject: str, declarant: str | None, child: str | None, address: str | None) -> list[str]:
    problems = []
    if subject not in {k.value for k in SWORN_SUBJECTS}:
        problems.append(
            "Choisissez ce que l'attestation remplace : identité de l'enfant (child_identity), identité du "
            "responsable légal (guardian_identity) ou justificatif de domicile (proof_of_address)."
        )
    if not _clean_text(declarant, 100):
        problems.append("Indiquez le nom et le prénom de la personne qui signe l'attestation.")
    if subject == Kind.CHILD_IDENTITY and not _clean_text(child, 100):
        problems.append("Indiquez le nom et le prénom de l'enfant.")
    if subject == Kind.PROOF_OF_ADDRESS and not _clean_text(address, 200):
        problems.append("Indiquez l'adresse du domicile.")
    return problems


def sworn_statement(subject: str, declarant: str, child: str | None, address: str | None, town: str) -> SwornStatement:
    """The declaration a family signs where a document is missing (call ``sworn_statement_problems`` first)."""
    who = _clean_text(declarant, 100)
    kid = _clean_text(child, 100)
    where = _clean_text(address, 200)
    kind = Kind(subject)
    opening = f"Je soussigné·e {who}"
    if kind is Kind.CHILD_IDENTITY:
        body = (
            f"{opening}, responsable légal de l'enfant {kid}, déclare sur l'honneur que les informations que j'ai "
            "données sur l'identité de cet enfant (nom, prénoms, date et lieu de naissance) sont exactes, et que je "
            "ne suis pas en mesure de produire un document d'identité le concernant (livret de famille, copie "
            "d'acte de naissance ou pièce d'identité)."
        )
    elif kind is Kind.GUARDIAN_IDENTITY:
        child_part = f" de l'enfant {kid}" if kid else ""
        body = (
            f"{opening} déclare sur l'honneur être responsable légal{child_part}, que les informations que j'ai "
            "données sur mon identité sont exactes, et que je ne suis pas en mesure de produire une pièce "
            "d'identité."
        )
    else:
        child_part = f" avec l'enfant {kid}" if kid else ""
        body = (
            f"{opening} déclare sur l'honneur résider{child_part} à l'adresse suivante : {where}, et que je ne "
            "suis pas en mesure de produire un justificatif de domicile."
        )
    return SwornStatement(
        title=f"Attestation sur l'honneur — {SWORN_SUBJECTS[kind]}",
        declarant=who,
        paragraphs=[
            body,
            "Cette attestation est établie pour l'inscription scolaire, en application de l'article D131-3-1 du "
            "Code de l'éducation, qui permet de la fournir à la place d'un document manquant.",
            "Je suis informé·e qu'une fausse déclaration m'expose aux sanctions prévues par l'article 441-7 du "
            "Code pénal.",
        ],
        town=town,
    )
