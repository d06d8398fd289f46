"""The notifier's rules, with no I/O: which email an event asks for, its subject, who receives
it, its Message-ID, how dates read in French, and what the delivery log may show.

Adding an email for a new event type is one template pair in ``templates/`` (``<name>.txt`` and
``<name>.html``) and one line in ``MAILS`` below.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


def _always(data: Mapping[str, Any]) -> bool:
    return True


def _purpose(value: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda data: data.get("purpose", "reset") == value


def _field(name: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda data: data.get(name) == value


def _several_children(data: Mapping[str, Any]) -> bool:
    """Singular or plural by the number of children, in the subject as in the body."""
    children = data.get("children")
    return isinstance(children, list | tuple) and len(children) > 1


@dataclass(frozen=True)
class MailSpec:
    """One kind of email: the event type that asks for it, its templates' name and its subject.

    Subjects never hold a name or a link: they are kept in the delivery log, which outlives an
    erasure and which agents read.
    """

    event_type: str
    template: str
    subject: str
    applies: Callable[[Mapping[str, Any]], bool] = _always
    carries_link: bool = False


# The registry: one line per email. The first entry whose event type matches and whose
# ``applies`` accepts the event's data is the email sent.
MAILS: tuple[MailSpec, ...] = (
    MailSpec("ActivationLinkIssued", "activation", "Activez votre Espace Citoyen Premium", carries_link=True),
    MailSpec("ExistingAccountRegistrationAttempted", "registration_attempt", "Une inscription a été tentée avec votre adresse email"),
    MailSpec("AccountActivated", "welcome", "Bienvenue sur votre Espace Citoyen Premium"),
    MailSpec("PasswordResetLinkIssued", "password_reset", "Réinitialisez votre mot de passe", _purpose("reset"), carries_link=True),
    MailSpec("PasswordResetLinkIssued", "staff_invitation", "Choisissez votre mot de passe pour l'Espace Citoyen Premium", _purpose("staff_invitation"), carries_link=True),
    MailSpec("PasswordChanged", "password_changed", "Votre mot de passe a été modifié"),
    # household.dossier.v1
    MailSpec("HouseholdSubmitted", "dossier_submitted", "Votre dossier a bien été transmis au Service Scolaire et Périscolaire"),
    MailSpec("CorrectionRequested", "corrections_requested", "Votre dossier est à corriger"),
    MailSpec("DossierValidated", "dossier_validated", "Votre dossier est validé : vous pouvez inscrire vos enfants", _several_children),
    MailSpec("DossierValidated", "dossier_validated", "Votre dossier est validé : vous pouvez inscrire votre enfant"),
    MailSpec("DossierRejected", "dossier_rejected", "Votre dossier a été refusé"),
    # documents.document.v1 (a clean scan asks for no email)
    MailSpec("DocumentScanned", "document_infected", "Un document envoyé n'a pas pu être accepté", _field("result", "infected")),
    # enrolment.enrolment.v1
    MailSpec("EnrolmentConfirmed", "enrolment_confirmed", "Votre inscription scolaire est confirmée"),
    MailSpec("EnrolmentRefused", "enrolment_refused", "Votre demande d'inscription scolaire a été refusée"),
    MailSpec("DerogationDecided", "derogation_accepted", "Votre demande de dérogation scolaire est acceptée", _field("decision", "accepted")),
    MailSpec("DerogationDecided", "derogation_refused", "Votre demande de dérogation scolaire est refusée", _field("decision", "refused")),
)


def mail_for(event_type: str, data: Mapping[str, Any]) -> MailSpec | None:
    """The email an event asks for, or None when it asks for none."""
    return next((m for m in MAILS if m.event_type == event_type and m.applies(data)), None)


class DeliveryStatus(StrEnum):
    SENDING = "sending"  # recorded before the SMTP transaction starts; retried after a crash
    SENT = "sent"
    FAILED = "failed"


class FailureReason(StrEnum):
    SMTP_REFUSED = "smtp_refused"
    INVALID_ADDRESS = "invalid_address"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    STALE = "stale"
    LINK_EXPIRED = "link_expired"


# The French the delivery log shows agents for each status and reason.
STATUS_LABELS: dict[str, str] = {
    DeliveryStatus.SENDING: "En cours d'envoi",
    DeliveryStatus.SENT: "Envoyé",
    DeliveryStatus.FAILED: "Échec",
}
REASON_LABELS: dict[str, str] = {
    FailureReason.SMTP_REFUSED: "Refusé par le serveur de messagerie",
    FailureReason.INVALID_ADDRESS: "Adresse email invalide",
    FailureReason.UNKNOWN_RECIPIENT: "Destinataire inconnu",
    FailureReason.STALE: "Événement trop ancien, email non envoyé",
    FailureReason.LINK_EXPIRED: "Lien déjà expiré, email non envoyé",
}


# Recipients


def recipient_hash(event_id: str, recipient: str) -> str:
    """A short digest of the address salted by the event id: it identifies the delivery without
    holding the address, and the same address gets a different digest in every event."""
    return hashlib.sha256(f"{event_id}\n{recipient.strip().lower()}".encode()).hexdigest()[:16]


def delivery_id(event_id: str, recipient: str) -> str:
    """The unique key of one email: (event id, recipient). A redelivered event finds it taken."""
    return f"{event_id}.{recipient_hash(event_id, recipient)}"


def message_id(event_id: str, recipient: str) -> str:
    """Stable across retries and redeliveries, so a receiving system can drop a duplicate."""
    return f"<{delivery_id(event_id, recipient)}@ecp.notifier>"


_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


def valid_address(address: str) -> bool:
    """A plain address the SMTP envelope can carry (no display name, no header injection)."""
    return bool(_ADDRESS.match(address)) and "\n" not in address and "\r" not in address


def mask_address(address: str | None) -> str | None:
    """What an agent sees of the address in the delivery log: enough to check a typo."""
    if not address or "@" not in address:
        return None
    local, domain = address.split("@", 1)
    return f"{local[:2]}{'•' * max(1, len(local) - 2)}@{domain}"


def redact(text: str, *secrets: str | None) -> str:
    """An SMTP error text without the address (servers often echo it) nor any link."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return re.sub(r"https?://\S+", "…", text)[:300]


def too_old(event_time: datetime, now: datetime, max_age: timedelta) -> bool:
    """An event older than this is history being replayed (a new consumer group), not news."""
    return now - event_time > max_age


# French dates


_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)


def french_datetime(moment: datetime, timezone: str = "Europe/Paris") -> str:
    """E.g. "jeudi 1er octobre 2026 à 8 h 05", in the town's time zone (French typography)."""
    local = moment.astimezone(ZoneInfo(timezone))
    day = "1er" if local.day == 1 else str(local.day)
    return f"{_DAYS[local.weekday()]} {day} {_MONTHS[local.month - 1]} {local.year} à {local.hour} h {local.minute:02d}"


def french_duration(duration: timedelta) -> str:
    """E.g. "1 heure", "48 heures", "30 minutes": how long a link stays valid."""
    minutes = round(duration.total_seconds() / 60)
    if minutes < 60 or minutes % 60:
        return f"{minutes} minute{'s' if minutes > 1 else ''}"
    hours = minutes // 60
    return f"{hours} heure{'s' if hours > 1 else ''}"


# What a family reads for the items of a correction request and for school levels.

_CORRECTION_FIELDS = {
    "number": "numéro", "street": "rue", "postcode": "code postal", "town": "commune",
    "first_name": "prénom", "last_name": "nom", "birth_date": "date de naissance",
    "email": "adresse email", "phone": "téléphone", "relationship": "lien avec l'enfant",
}

LEVEL_LABELS: dict[str, str] = {
    "TPS": "toute petite section", "PS": "petite section", "MS": "moyenne section", "GS": "grande section",
    "CP": "CP", "CE1": "CE1", "CE2": "CE2", "CM1": "CM1", "CM2": "CM2",
}

KIND_LABELS: dict[str, str] = {
    "child_identity": "pièce d'identité de l'enfant", "guardian_identity": "pièce d'identité du / de la responsable",
    "proof_of_address": "justificatif de domicile", "sworn_statement": "attestation sur l'honneur", "other": "document",
}


def correction_label(item: str) -> str:
    """French for what a correction concerns: "address.postcode", "children.<id>.birth_date",
    "guardians.<id>" or a document id (the notifier holds no names: the portal shows them)."""
    parts = item.split(".")
    field = next((_CORRECTION_FIELDS.get(p, p.replace("_", " ")) for p in parts[2 if parts[0] != "address" else 1:][:1]), None)
    if parts[0] == "address":
        base = "Adresse du domicile"
    elif parts[0] == "children" and len(parts) >= 2:
        base = "Enfant"
    elif parts[0] == "guardians" and len(parts) >= 2:
        base = "Responsable légal·e"
    else:
        return "Pièce justificative"
    return f"{base} ({field})" if field else base


def template_context(data: Mapping[str, Any], event_time: datetime, timezone: str) -> dict[str, Any]:
    """The event's data as templates see it: every date also as French text (``<field>_fr``),
    how long a link lasts (``valid_for``) when the event carries ``expires_at``, a French label
    for each correction's item and for a school level (``level_label``)."""
    context = dict(data)
    if isinstance(data.get("corrections"), list):
        context["corrections"] = [{**c, "label": correction_label(str(c.get("item", "")))} for c in data["corrections"]]
    if isinstance(data.get("level"), str):
        context["level_label"] = LEVEL_LABELS.get(data["level"], data["level"])
    if isinstance(data.get("kind"), str):
        context["kind_label"] = KIND_LABELS.get(data["kind"], "document")
    for name, value in data.items():
        if isinstance(value, datetime):
            context[f"{name}_fr"] = french_datetime(value, timezone)
    expires_at = data.get("expires_at")
    if isinstance(expires_at, datetime):
        context["valid_for"] = french_duration(expires_at - event_time)
    return context
