"""Family file pages: declare my household (Déclarer mon entourage), supporting documents, submit, timeline.

Household owns the file (``/dossier``: a full replacement on each save, with the ids it gave
back); documents owns the files themselves. A proof is attached by uploading it to documents,
then saving the file with the new document id in its slot; when that save fails the new
document is deleted again, so nothing is left half-written.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.web import csrf, flash, session
from services.web.account import next_step
from services.web.clients import ServiceClient, ServiceReply, service_client
from services.web.dates import TOWN_ZONE, french_date, french_datetime
from services.web.csrf import ProtectedForm
from services.web.errors import BadForm, PageError
from services.web.pages import remember_file_reference, render
from services.web.session import CurrentUser

router = APIRouter()
Services = Annotated[ServiceClient, Depends(service_client)]

DECLARE = "/entourage"
PROOFS = "/pieces-justificatives"
SWORN_STATEMENT = "/pieces-justificatives/attestation"
PROOFS_REFUSED = "pieces"  # the proofs page's refusals (flash.refuse)
SUBMIT_REFUSED = "transmettre"  # « Transmettre mon dossier » refused, shown on Mon dossier
MY_FILE = "/dossier"
SUBMIT = "/dossier/transmettre"

NO_STORE = {"Cache-Control": "no-store"}
RELATIONSHIPS = ("mère", "père", "autre représentant légal")
MAX_CHILDREN = 12  # household's limit per file
ADULT_AGE = 18
# Statuses in which household accepts a change or a submission (see its domain).
EDITABLE = frozenset({"draft", "corrections_requested", "rejected", "validated"})
SUBMITTABLE = frozenset({"draft", "corrections_requested", "rejected"})
MAX_FILE_BYTES = 10 * 1024 * 1024  # documents' limit per file
# Several files go in one post (one per proof at most): four phone photos or scans at their
# largest, and the form around them. The gateway's rule for this page is 1 MB above.
MAX_UPLOAD_BODY_BYTES = 40 * 1024 * 1024
ACCEPTED_FILES = ".pdf,.jpg,.jpeg,.png,.heic,.heif,application/pdf,image/jpeg,image/png,image/heic,image/heif"
UPLOAD_TIMEOUT_S = 60.0  # documents stores to S3 and converts HEIC photos before answering

# ---- French messages --------------------------------------------------------------------------

UNDER_REVIEW = (
    "Votre dossier est en cours d'examen par le Service Scolaire et Périscolaire : il ne peut pas être "
    "modifié pour l'instant. Vous recevrez un email dès qu'une décision sera prise ; si le service vous "
    "demande des corrections, vous pourrez alors modifier votre dossier."
)
ERASED = "Ce dossier a été supprimé : il ne peut plus être modifié."
NO_FILE_YET = "Vous n'avez pas encore déclaré votre entourage."
NO_CHILD = "Indiquez au moins un enfant : son prénom, son nom et sa date de naissance."
TOO_MANY_CHILDREN = f"Un dossier compte au plus {MAX_CHILDREN} enfants."
NO_UPLOADED_FILE = "Aucun fichier n'a été joint. Choisissez un fichier à envoyer."
NO_UPLOADED_FILES = "Aucun fichier n'a été choisi. Choisissez au moins un fichier ou prenez une photo, puis envoyez."
TWO_FILES = "Choisissez un seul fichier pour cette pièce : un fichier ou une photo, pas les deux."
CHECKING = ("Nous vérifions maintenant que chaque fichier est sans danger (virus) : "
            "cela prend en général quelques secondes.")
BAD_PROOF = "Cette pièce ne fait pas partie de votre dossier. Rechargez la page et réessayez."
BAD_KIND = "Précisez s'il s'agit de la pièce demandée ou d'une attestation sur l'honneur."
UPLOAD_FORM_UNREADABLE = "L'envoi n'a pas pu être lu. Réessayez d'envoyer le fichier."
DOCUMENTS_DOWN = (
    "Le service des documents ne répond pas pour le moment. Votre fichier n'a pas été enregistré : "
    "réessayez dans quelques minutes."
)
TYPED_TOO_LONG = ("Votre saisie est bien plus longue que ce que les champs acceptent et n'a pas pu être gardée : "
                  "saisissez-la de nouveau (200 caractères au plus par champ).")
DECLARATION_SAVED = "Votre entourage est enregistré. Joignez maintenant les pièces justificatives."
SUBMITTED_NOTICE = (
    "Votre dossier a été transmis au Service Scolaire et Périscolaire. Vous recevrez un email dès "
    "qu'une décision sera prise."
)

ADDRESS_FIELDS = {"number": "numero", "street": "voie", "postcode": "code-postal", "town": "commune"}
GUARDIAN_FIELDS = {
    "first_name": "prenom", "last_name": "nom", "relationship": "lien", "phone": "telephone", "email": "email",
}
CHILD_FIELDS = {"first_name": "prenom", "last_name": "nom", "birth_date": "naissance"}
# One message per field, used for our own checks and for household's 422 ``errors`` alike
# (their ``msg`` is pydantic's English).
FIELD_MESSAGES = {
    "number": "Indiquez le numéro dans la voie (10 caractères au plus), par exemple « 12 » ou « 12 bis ».",
    "street": "Indiquez le nom de la voie (200 caractères au plus).",
    "postcode": "Le code postal doit comporter 5 chiffres, par exemple 45000.",
    "town": "Indiquez la commune (100 caractères au plus).",
    "first_name": "Indiquez le prénom (100 caractères au plus).",
    "last_name": "Indiquez le nom (100 caractères au plus).",
    "relationship": "Choisissez le lien avec l'enfant : mère, père ou autre représentant légal.",
    "phone": (
        "Le numéro de téléphone n'est pas valide : chiffres, espaces, points ou tirets, par exemple 06 12 34 56 78."
    ),
    "email": "L'adresse email n'est pas valide. Format attendu : nom@exemple.fr",
    "birth_date": "Indiquez une date de naissance valide, au format JJ/MM/AAAA (par exemple 14/03/2019).",
}
MAX_LENGTHS = {"number": 10, "street": 200, "town": 100, "first_name": 100, "last_name": 100}
# What a refused declaration carries back at most per value (past MAX_LENGTHS a value is refused).
CARRIED_LENGTHS = {**MAX_LENGTHS, "postcode": 10, "phone": 30, "relationship": 30, "birth_date": 10, "id": 64}
BIRTH_IN_FUTURE = "La date de naissance ne peut pas être dans le futur."
TOO_OLD = "Un enfant de 18 ans ou plus ne peut pas être inscrit à l'école : vérifiez la date de naissance."
POSTCODE = re.compile(r"^\d{5}$")
PHONE = re.compile(r"^\+?[0-9 .-]{6,20}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Where each document stands, in plain words (documents' status → badge text, badge style).
DOCUMENT_STATES = {
    "uploading": ("Vérification en cours", "attente"),
    "pending": ("Vérification en cours", "attente"),
    "clean": ("Reçu", "ok"),
    "infected": ("Refusé : fichier dangereux", "refus"),
    "quarantined": ("À vérifier : analyse incomplète, envoyez un autre fichier", "refus"),
    "deleted": ("Supprimé : à envoyer de nouveau", "refus"),
}
MISSING_STATE = ("À envoyer", "action")
CORRECTION_STATE = ("À corriger", "refus")


class HouseholdUnavailable(PageError):
    status_code = 503
    title = "Service momentanément indisponible"
    message = (
        "Le service des dossiers ne répond pas pour le moment. Rien n'a été modifié : réessayez dans "
        "quelques minutes."
    )


class DocumentsUnavailable(PageError):
    status_code = 503
    title = "Service momentanément indisponible"
    message = "Le service des documents ne répond pas pour le moment. Réessayez dans quelques minutes."


class UploadTooLarge(PageError):
    status_code = 413
    title = "Fichiers trop volumineux"
    message = (
        "Les fichiers choisis pèsent plus de 40 Mo à eux tous (10 Mo au plus par fichier) : rien n'a été envoyé. "
        "Envoyez-les en plusieurs fois, ou prenez des photos moins lourdes."
    )


class SwornStatementRefused(PageError):
    status_code = 422
    title = "Attestation impossible à préparer"


# ---- reading the family's file ----------------------------------------------------------------


def _signed_out(request: Request) -> session.LoginRequired:
    """A 401 from a service: the account was erased or its sessions revoked meanwhile."""
    session.end(request)
    return session.LoginRequired(session.login_location(request))


async def my_file(request: Request, services: ServiceClient, token: str) -> dict[str, Any] | None:
    """The family's file as household shows it, None when there is none yet."""
    reply = await services.get("household", "/dossier", token)
    if reply.status == 200:
        remember_file_reference(request, reply.body.get("reference"))
        return reply.body
    if reply.status == 404:
        return None
    if reply.status == 401:
        raise _signed_out(request)
    raise HouseholdUnavailable()


def person_name(person: dict[str, Any]) -> str:
    return f"{person.get('first_name', '')} {person.get('last_name', '')}".strip()


def file_content(dossier: dict[str, Any]) -> dict[str, Any]:
    """The file as household takes it back in a PUT (its view adds labels and corrections)."""
    address = dossier.get("address")
    return {
        "address": None if address is None else {
            key: address.get(key) for key in (*ADDRESS_FIELDS, "proof_document_id")
        },
        "guardians": [
            {key: g.get(key) for key in ("guardian_id", *GUARDIAN_FIELDS, "identity_document_id")}
            for g in dossier.get("guardians") or []
        ],
        "children": [
            {key: c.get(key) for key in ("child_id", *CHILD_FIELDS, "identity_document_id")}
            for c in dossier.get("children") or []
        ],
        "recommended": [
            {key: r.get(key) for key in ("kind", "document_id", "child_id")} for r in dossier.get("recommended") or []
        ],
        "version": dossier.get("version"),
    }


# ---- Déclarer mon entourage: the form ---------------------------------------------------------

# The declaration has many short fields (an address, two guardians, up to twelve children): more
# than forms.read_form accepts for the account pages; the gateway caps the body at 1 MB.
MAX_DECLARATION_FIELDS = 120


declaration_form = csrf.protected_form_of(max_fields=MAX_DECLARATION_FIELDS, max_bytes=64 * 1024)

DeclarationForm = Annotated[dict[str, str], Depends(declaration_form)]


@dataclass
class Declaration:
    """What the form shows and sends back: values keyed by household's field names, as typed."""

    address: dict[str, str] = field(default_factory=dict)
    guardians: list[dict[str, str]] = field(default_factory=lambda: [{}, {}])
    children: list[dict[str, str]] = field(default_factory=lambda: [{}])
    version: str = ""
    # The other parent's block opens with « Créer une fiche pour l'autre parent », or when filled.
    other_parent: bool = False

    @property
    def shows_other_parent(self) -> bool:
        return self.other_parent or _filled(self.guardians[1], GUARDIAN_FIELDS)

    @classmethod
    def of_notice(cls, data: Any) -> Declaration | None:
        """A declaration typed but not saved, carried by the redirect after « Créer une fiche … »."""
        if not isinstance(data, dict) or not isinstance(data.get("children"), list):
            return None
        try:
            return cls(
                address={k: str(v) for k, v in dict(data.get("address") or {}).items()},
                guardians=[{k: str(v) for k, v in dict(g).items()} for g in data.get("guardians") or []][:2],
                children=[{k: str(v) for k, v in dict(c).items()} for c in data["children"]][:MAX_CHILDREN] or [{}],
                version=str(data.get("version") or ""), other_parent=bool(data.get("other_parent")),
            )
        except (TypeError, ValueError):
            return None

    def cut(self) -> Declaration:
        """The same declaration with each value cut to its field's limit (what a notice carries
        of a post far past those limits; those fields are refused with their limit anyway)."""
        def block(values: dict[str, str]) -> dict[str, str]:
            return {k: v[:CARRIED_LENGTHS.get(k, 254)] for k, v in values.items()}

        return Declaration(block(self.address), [block(g) for g in self.guardians], [block(c) for c in self.children],
                           self.version[:64], self.other_parent)

    @classmethod
    def of_file(cls, dossier: dict[str, Any] | None) -> Declaration:
        if dossier is None:
            return cls()
        address = dossier.get("address") or {}
        guardians = [
            {"id": g.get("guardian_id") or "", **{k: g.get(k) or "" for k in GUARDIAN_FIELDS}}
            for g in (dossier.get("guardians") or [])[:2]
        ]
        children = [
            {"id": c.get("child_id") or "", **{k: c.get(k) or "" for k in CHILD_FIELDS}}
            for c in dossier.get("children") or []
        ]
        return cls(
            address={k: address.get(k) or "" for k in ADDRESS_FIELDS},
            guardians=guardians + [{} for _ in range(2 - len(guardians))],
            children=children or [{}],
            version=str(dossier.get("version") or ""),
        )

    @classmethod
    def of_form(cls, form: dict[str, str]) -> Declaration:
        def block(prefix: str, names: dict[str, str]) -> dict[str, str]:
            values = {api: form.get(f"{prefix}-{suffix}", "").strip() for api, suffix in names.items()}
            return {"id": form.get(f"{prefix}-id", "").strip(), **values}

        try:
            count = max(1, min(MAX_CHILDREN, int(form.get("enfants", "1"))))
        except ValueError:
            count = 1
        children = []
        for n in range(1, count + 1):
            child = block(f"enfant-{n}", CHILD_FIELDS)
            if form.get(f"enfant-{n}-retirer") != "oui":  # the family ticked « Retirer cet enfant »
                children.append(child)
        return cls(
            address={api: form.get(f"adresse-{suffix}", "").strip() for api, suffix in ADDRESS_FIELDS.items()},
            guardians=[block("parent-1", GUARDIAN_FIELDS), block("parent-2", GUARDIAN_FIELDS)],
            children=children or [{}],
            version=form.get("version", "").strip(),
            other_parent=form.get("autre-parent") == "oui",
        )


def _birth_date(text: str) -> date | None:
    """The date as an <input type="date"> sends it (AAAA-MM-JJ) or as typed where it is a text box."""
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _filled(values: dict[str, str], names: dict[str, str]) -> bool:
    return any(values.get(name) for name in names)


def _field_problem(name: str, value: str, *, required: bool = True) -> str | None:
    if not value:
        return FIELD_MESSAGES[name] if required else None
    if name in MAX_LENGTHS and len(value) > MAX_LENGTHS[name]:
        return FIELD_MESSAGES[name]
    if (name == "postcode" and not POSTCODE.match(value)) or (name == "phone" and not PHONE.match(value)):
        return FIELD_MESSAGES[name]
    if name == "email" and (not EMAIL.match(value) or len(value) > 254):
        return FIELD_MESSAGES[name]
    if name == "relationship" and value not in RELATIONSHIPS:
        return FIELD_MESSAGES[name]
    return None


def _child_date_problem(value: str, today: date) -> str | None:
    born = _birth_date(value)
    if born is None:
        return FIELD_MESSAGES["birth_date"]
    if born > today:
        return BIRTH_IN_FUTURE
    if today.year - born.year - ((today.month, today.day) < (born.month, born.day)) >= ADULT_AGE:
        return TOO_OLD
    return None


def declaration_errors(declaration: Declaration, today: date) -> dict[str, str]:
    """Field id → French message, in the form's order (what household would refuse, said first)."""
    errors: dict[str, str] = {}
    for api, suffix in ADDRESS_FIELDS.items():
        if problem := _field_problem(api, declaration.address.get(api, "")):
            errors[f"adresse-{suffix}"] = problem
    for n, guardian in enumerate(declaration.guardians, start=1):
        if n > 1 and not _filled(guardian, GUARDIAN_FIELDS):
            continue  # the other parent is optional
        for api, suffix in GUARDIAN_FIELDS.items():
            required = api in ("first_name", "last_name", "relationship")
            if problem := _field_problem(api, guardian.get(api, ""), required=required):
                errors[f"parent-{n}-{suffix}"] = problem
    declared = [(n, c) for n, c in enumerate(declaration.children, start=1) if _filled(c, CHILD_FIELDS)]
    if not declared:
        errors["enfant-1-prenom"] = NO_CHILD
    for n, child in declared:
        for api in ("first_name", "last_name"):
            if problem := _field_problem(api, child.get(api, "")):
                errors[f"enfant-{n}-{CHILD_FIELDS[api]}"] = problem
        if problem := _child_date_problem(child.get("birth_date", ""), today):
            errors[f"enfant-{n}-naissance"] = problem
    return errors


@dataclass(frozen=True)
class SaveRequest:
    """The body for household, and which form field each sent guardian and child came from."""

    body: dict[str, Any]
    guardian_fields: list[str]
    child_fields: list[str]


def save_request(declaration: Declaration, current: dict[str, Any] | None) -> SaveRequest:
    """Household's PUT body: the typed data, and what the form does not show kept as it is (the
    proofs already attached to a guardian, a child or the address, the recommended pieces)."""
    nothing: dict[str, Any] = {"address": None, "guardians": [], "children": [], "recommended": []}
    kept = file_content(current) if current is not None else nothing
    guardians_by_id = {g["guardian_id"]: g for g in kept["guardians"]}
    children_by_id = {c["child_id"]: c for c in kept["children"]}
    address = {api: declaration.address.get(api, "") for api in ADDRESS_FIELDS}
    address["proof_document_id"] = (kept["address"] or {}).get("proof_document_id")

    guardians: list[dict[str, Any]] = []
    guardian_fields: list[str] = []
    for n, guardian in enumerate(declaration.guardians, start=1):
        if n > 1 and not _filled(guardian, GUARDIAN_FIELDS):
            continue
        known = guardians_by_id.get(guardian.get("id", ""))  # an id we did not give is a new guardian
        guardians.append({
            "guardian_id": known["guardian_id"] if known else None,
            **{api: guardian.get(api) or None for api in GUARDIAN_FIELDS},
            "identity_document_id": known.get("identity_document_id") if known else None,
        })
        guardian_fields.append(f"parent-{n}")

    children: list[dict[str, Any]] = []
    child_fields: list[str] = []
    for n, child in enumerate(declaration.children, start=1):
        if not _filled(child, CHILD_FIELDS):
            continue
        known = children_by_id.get(child.get("id", ""))
        born = _birth_date(child.get("birth_date", ""))
        children.append({
            "child_id": known["child_id"] if known else None,
            "first_name": child.get("first_name", ""),
            "last_name": child.get("last_name", ""),
            "birth_date": born.isoformat() if born else child.get("birth_date", ""),
            "identity_document_id": known.get("identity_document_id") if known else None,
        })
        child_fields.append(f"enfant-{n}")
    body: dict[str, Any] = {"address": address, "guardians": guardians, "children": children,
                            "recommended": kept["recommended"]}
    if current is not None and declaration.version.isdigit():
        body["version"] = int(declaration.version)
    return SaveRequest(body, guardian_fields, child_fields)


def household_field_errors(reply: ServiceReply, sent: SaveRequest) -> dict[str, str]:
    """Household's 422 ``errors`` (pydantic locations in the body we sent) as form field ids."""
    errors: dict[str, str] = {}
    for error in reply.body.get("errors") or []:
        loc = [str(part) for part in error.get("loc", [])][1:]  # drop "body"
        if len(loc) >= 2 and loc[0] == "address" and loc[1] in ADDRESS_FIELDS:
            errors.setdefault(f"adresse-{ADDRESS_FIELDS[loc[1]]}", FIELD_MESSAGES[loc[1]])
        elif len(loc) >= 3 and loc[0] == "guardians" and loc[1].isdigit() and loc[2] in GUARDIAN_FIELDS:
            index = int(loc[1])
            if index < len(sent.guardian_fields):
                errors.setdefault(f"{sent.guardian_fields[index]}-{GUARDIAN_FIELDS[loc[2]]}", FIELD_MESSAGES[loc[2]])
        elif len(loc) >= 3 and loc[0] == "children" and loc[1].isdigit() and loc[2] in CHILD_FIELDS:
            index = int(loc[1])
            if index < len(sent.child_fields):
                errors.setdefault(f"{sent.child_fields[index]}-{CHILD_FIELDS[loc[2]]}", FIELD_MESSAGES[loc[2]])
    return errors


def household_problems(reply: ServiceReply, sent: SaveRequest) -> dict[str, str]:
    """Household's own rules (``problems``: French sentences without a field): next to the child
    they name when they name one, else on the form's first field."""
    errors: dict[str, str] = {}
    for problem in reply.body.get("problems") or [str(reply.body.get("detail") or "")]:
        if not problem:
            continue
        target = "adresse-numero"
        for prefix, child in zip(sent.child_fields, sent.body["children"], strict=False):
            name = person_name(child)
            if name and f"l'enfant {name}" in problem and "naissance" in problem:
                target = f"{prefix}-naissance"
        errors[target] = f"{errors[target]} {problem}" if target in errors else problem
    return errors


def _ordered(errors: dict[str, str], declaration: Declaration) -> list[dict[str, str]]:
    """The error summary in the page's order (the macro links each to its field)."""
    order = [f"adresse-{s}" for s in ADDRESS_FIELDS.values()]
    order += [f"parent-{n}-{s}" for n in (1, 2) for s in GUARDIAN_FIELDS.values()]
    order += [f"enfant-{n}-{s}" for n in range(1, len(declaration.children) + 1) for s in CHILD_FIELDS.values()]
    return [{"id": fid, "message": errors[fid]} for fid in order if fid in errors] + [
        {"id": fid, "message": message} for fid, message in errors.items() if fid not in order
    ]


def _declaration_page(
    request: Request, declaration: Declaration, *, status: str | None, errors: dict[str, str] | None = None,
    problem: str | None = None, notice: str | None = None, status_code: int = 200,
) -> HTMLResponse:
    context = {
        "declaration": declaration, "relationships": RELATIONSHIPS, "errors": _ordered(errors or {}, declaration),
        "field_errors": errors or {}, "problem": problem, "notice": notice, "max_children": MAX_CHILDREN,
        "locked": UNDER_REVIEW if status == "submitted" else ERASED if status == "erased" else None,
        "today": datetime.now(TOWN_ZONE).date().isoformat(),
    }
    return render(request, "dossier_entourage.html", context, status_code=status_code, headers=NO_STORE)


@router.get(DECLARE, response_class=HTMLResponse, summary="Déclarer mon entourage (form)")
async def declaration_page(request: Request, user: CurrentUser, services: Services) -> HTMLResponse:
    current = await my_file(request, services, user.access_token)
    status = (current or {}).get("status")
    kept = (flash.take(request) or {}).get("data") if status in (None, *EDITABLE) else None
    kept = kept if isinstance(kept, dict) else {}
    typed = Declaration.of_notice(kept.get("typed"))
    if typed is None:
        return _declaration_page(request, Declaration.of_file(current), status=status)
    # What was typed and not saved yet, with its errors when that post was refused.
    errors = {str(k): str(v) for k, v in dict(kept.get("errors") or {}).items()}
    return _declaration_page(request, typed, status=status, errors=errors or None, status_code=422 if errors else 200)


def _with_typed(request: Request, location: str, declaration: Declaration, *lines: str, tone: str = "info",
                errors: dict[str, str] | None = None) -> Response:
    """Post/redirect/get for a declaration not saved (a new card, a refusal): what was typed and
    its errors travel with the redirect, kept for a refresh. Always a redirect: twelve children
    with long names fit the notice's cookies; a post past that (only a value far longer than its
    field allows) travels with such values cut to their field's limit (their errors say so), and
    past even that the page asks to type it again."""
    for typed in (declaration, declaration.cut()):
        data = {"typed": asdict(typed), "errors": errors or {}}
        if flash.fits(request, *lines, tone=tone, data=data):
            return flash.redirect(request, location, *lines, tone=tone, data=data, keep=True)
    return flash.redirect(request, DECLARE, *lines, TYPED_TOO_LONG, tone="erreur")


def _refused(request: Request, declaration: Declaration, errors: dict[str, str]) -> Response:
    """A declaration refused for its input: back to the form with its errors (post/redirect/get)."""
    return _with_typed(request, DECLARE, declaration, errors=errors)


def _new_card(request: Request, declaration: Declaration, action: str) -> Response:
    """« Créer une fiche enfant » / « … pour l'autre parent »: one more block, nothing saved yet.
    What was typed travels with the redirect (post/redirect/get)."""
    if action == "ajouter-enfant":
        if len(declaration.children) >= MAX_CHILDREN:
            return _refused(request, declaration, {"enfants-ajout": TOO_MANY_CHILDREN})
        declaration.children.append({})
        anchor, line = f"enfant-{len(declaration.children)}", (
            f"La fiche « Enfant {len(declaration.children)} » est créée : complétez-la, puis enregistrez.")
    else:
        declaration.other_parent = True
        anchor, line = "parent-2", "La fiche de l'autre parent est créée : complétez-la, puis enregistrez."
    return _with_typed(request, f"{DECLARE}#{anchor}", declaration, line)


@router.post(DECLARE, response_class=HTMLResponse, summary="Déclarer mon entourage: add a child block, or save")
async def declare(request: Request, form: DeclarationForm, user: CurrentUser, services: Services) -> Response:
    declaration = Declaration.of_form(form)
    current = await my_file(request, services, user.access_token)
    status = (current or {}).get("status")
    if status is not None and status not in EDITABLE:  # the page says why it cannot change now
        return flash.redirect(request, DECLARE)
    if form.get("action") in ("ajouter-enfant", "ajouter-parent"):
        return _new_card(request, declaration, form["action"])
    errors = declaration_errors(declaration, datetime.now(TOWN_ZONE).date())
    if errors:
        return _refused(request, declaration, errors)
    sent = save_request(declaration, current)
    if current is None:
        reply = await services.send("POST", "household", "/dossier", user.access_token, json=sent.body)
    else:
        reply = await services.send("PUT", "household", "/dossier", user.access_token, json=sent.body)
    if reply.status in (200, 201):
        saved = flash.redirect(request, PROOFS, DECLARATION_SAVED)
        flash.clear(request, saved, DECLARE)  # what was typed is saved: the page shows the file again
        return saved
    if reply.status == 401:
        raise _signed_out(request)
    if reply.status == 422:
        return _refused(request, declaration, household_field_errors(reply, sent) or household_problems(reply, sent))
    if reply.status in (403, 409):  # not activated yet; under review or changed meanwhile
        return _with_typed(request, DECLARE, declaration, str(reply.body.get("detail") or ""), tone="erreur")
    raise HouseholdUnavailable()


# ---- Mes pièces justificatives ----------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """One required proof of the file: what it proves, the document attached, the agent's reasons."""

    slot: str  # "domicile", "representant-<guardian id>", "enfant-<child id>": the form's ``piece``
    kind: str  # the documents service's kind for the piece itself
    title: str
    hint: str
    document_id: str | None
    corrections: list[str]
    sworn: dict[str, str]  # the sworn statement's pre-filled fields (documents' query)


def _address_line(address: dict[str, Any]) -> str:
    street = f"{address.get('number', '')} {address.get('street', '')}"
    return f"{street}, {address.get('postcode', '')} {address.get('town', '')}".strip()


def required_proofs(dossier: dict[str, Any]) -> list[Proof]:
    """The proofs household requires for this file (Code de l'éducation D131-3-1)."""
    guardians = dossier.get("guardians") or []
    children = dossier.get("children") or []
    declarant = person_name(guardians[0]) if guardians else ""
    first_child = person_name(children[0]) if children else ""
    proofs: list[Proof] = []
    address = dossier.get("address")
    if address:
        proofs.append(Proof(
            "domicile", "proof_of_address", "Justificatif de domicile",
            "Facture d'énergie, d'eau ou de téléphone fixe, quittance de loyer ou avis d'imposition récent.",
            address.get("proof_document_id"), list(address.get("corrections") or []),
            {"subject": "proof_of_address", "declarant": declarant, "child": first_child,
             "address": _address_line(address)},
        ))
    for guardian in guardians:
        proofs.append(Proof(
            f"representant-{guardian['guardian_id']}", "guardian_identity",
            f"Pièce d'identité de {person_name(guardian)}",
            "Carte nationale d'identité, passeport ou titre de séjour.",
            guardian.get("identity_document_id"), list(guardian.get("corrections") or []),
            {"subject": "guardian_identity", "declarant": person_name(guardian), "child": first_child},
        ))
    for child in children:
        proofs.append(Proof(
            f"enfant-{child['child_id']}", "child_identity", f"Pièce d'identité de l'enfant {person_name(child)}",
            "Livret de famille, copie intégrale de l'acte de naissance ou pièce d'identité de l'enfant.",
            child.get("identity_document_id"), list(child.get("corrections") or []),
            {"subject": "child_identity", "declarant": declarant, "child": person_name(child)},
        ))
    return proofs


def attach(dossier: dict[str, Any], slot: str, document_id: str) -> dict[str, Any]:
    """Household's PUT body with ``document_id`` in the proof's slot, the rest unchanged."""
    return attach_to(file_content(dossier), slot, document_id)


def attach_to(body: dict[str, Any], slot: str, document_id: str) -> dict[str, Any]:
    """``body`` (household's PUT body) with ``document_id`` in the proof's slot."""
    if slot == "domicile" and body["address"] is not None:
        body["address"]["proof_document_id"] = document_id
    for guardian in body["guardians"]:
        if slot == f"representant-{guardian['guardian_id']}":
            guardian["identity_document_id"] = document_id
    for child in body["children"]:
        if slot == f"enfant-{child['child_id']}":
            child["identity_document_id"] = document_id
    return body


async def my_documents(services: ServiceClient, token: str) -> dict[str, dict[str, Any]] | None:
    """The family's documents by id (None when documents does not answer: the page says so)."""
    reply = await services.get("documents", "/documents", token)
    if reply.status != 200:
        return None
    return {d["id"]: d for d in reply.body.get("documents") or [] if isinstance(d, dict) and "id" in d}


def _document_view(document_id: str | None, documents: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    if document_id is None:
        return None
    if documents is None:
        return {"name": None, "state": None, "status": "unknown"}
    document = documents.get(document_id)
    if document is None:
        return {"name": None, "state": DOCUMENT_STATES["deleted"], "status": "deleted"}
    status = str(document.get("status"))
    return {
        "name": document.get("name"), "kind": document.get("kind"), "status": status,
        "state": DOCUMENT_STATES.get(status, (status, "neutre")),
        "uploaded_at": french_datetime(document.get("uploaded_at")), "reason": document.get("reason"),
    }


def _proof_state(proof: Proof, document: dict[str, Any] | None) -> tuple[str, str]:
    if proof.corrections:
        return CORRECTION_STATE
    if document is None:
        return MISSING_STATE
    return document["state"] or ("État inconnu pour le moment", "neutre")


def _proofs_page(
    request: Request, dossier: dict[str, Any], documents: dict[str, dict[str, Any]] | None, *,
    upload_errors: dict[str, str] | None = None, status_code: int = 200,
) -> HTMLResponse:
    proofs = required_proofs(dossier)
    blocks = []
    for p in proofs:
        document = _document_view(p.document_id, documents)
        blocks.append({"proof": p, "document": document, "state": _proof_state(p, document),
                       "sworn_link": f"{SWORN_STATEMENT}?{urlencode({'piece': p.slot})}"})
    slots = {p.slot for p in proofs}
    # An error about a proof links to its file field; one about no known proof, to the page's title.
    errors = [{"id": f"fichier-{slot}" if slot in slots else "pieces-titre", "message": message}
              for slot, message in (upload_errors or {}).items()]
    context = {
        "dossier": dossier, "blocks": blocks, "errors": errors, "upload_errors": upload_errors or {},
        "documents_down": documents is None, "accepted_files": ACCEPTED_FILES,
        "max_file_bytes": MAX_FILE_BYTES, "max_upload_bytes": MAX_UPLOAD_BODY_BYTES,
        "editable": dossier.get("status") in EDITABLE, "submittable": dossier.get("status") in SUBMITTABLE,
        "locked": UNDER_REVIEW if dossier.get("status") == "submitted" else None,
        "pending": any(b["document"] and b["document"]["status"] in ("pending", "uploading") for b in blocks),
        "problems": [{"text": p, "href": fix_link(p, proofs)} for p in dossier.get("submission_problems") or []],
    }
    return render(request, "dossier_pieces.html", context, status_code=status_code, headers=NO_STORE)


def _no_file_yet(request: Request) -> HTMLResponse:
    """No file yet: the proofs depend on the household declared, the page says to declare it first."""
    return _proofs_page(request, {}, {})


@router.get(PROOFS, response_class=HTMLResponse, summary="Mes pièces justificatives: one block per required proof")
async def proofs_page(request: Request, user: CurrentUser, services: Services) -> HTMLResponse:
    dossier = await my_file(request, services, user.access_token)
    if dossier is None:
        return _no_file_yet(request)
    refused = flash.refusal(request, PROOFS_REFUSED)
    if refused is not None:  # a post refused: its reasons, once
        errors = {str(k): str(v) for k, v in dict(refused.fields.get("errors") or {}).items()}
        return _proofs_page(request, dossier, await my_documents(services, user.access_token), upload_errors=errors,
                            status_code=refused.status_code)
    return _proofs_page(request, dossier, await my_documents(services, user.access_token))


@dataclass
class Upload:
    """One file of the post: the proof it is for, what it is (the piece or a sworn statement)."""

    slot: str
    kind: str  # "" when the form names the piece itself (each proof's own kind)
    file: UploadFile


@dataclass
class UploadPost:
    uploads: list[Upload]
    problems: dict[str, str]  # slot → why that part was refused before any call


def _is_file(value: Any) -> bool:
    return isinstance(value, UploadFile) and bool(value.filename)


async def upload_form(request: Request) -> UploadPost:
    """The multipart post once its size and CSRF pair are checked. One form sends every proof:
    ``fichier:<slot>`` (a file) or ``photo:<slot>`` (the camera), and ``attestation:<slot>=oui``
    for a sworn statement. The single-proof form (``piece``, ``type``, ``fichier``) still works."""
    length = request.headers.get("content-length", "")
    # Refused on the announced size, before a byte of the body is read.
    if length.isdigit() and int(length) > MAX_UPLOAD_BODY_BYTES:
        raise UploadTooLarge()
    try:
        form = await request.form(max_files=2 * (MAX_CHILDREN + 3) + 1, max_fields=3 * (MAX_CHILDREN + 3) + 8)
    except (StarletteHTTPException, ValueError) as exc:  # not multipart, cut short, too many parts
        raise BadForm(UPLOAD_FORM_UNREADABLE) from exc
    csrf.verify(request, str(form.get(csrf.FIELD_NAME) or ""))
    uploads: list[Upload] = []
    problems: dict[str, str] = {}
    if form.get("piece") is not None:
        slot, upload = str(form.get("piece") or ""), form.get("fichier")
        if _is_file(upload):
            uploads.append(Upload(slot, str(form.get("type") or ""), upload))  # type: ignore[arg-type]
        else:
            problems[slot] = NO_UPLOADED_FILE
        return UploadPost(uploads, problems)
    slots = dict.fromkeys(name.split(":", 1)[1] for name in form if name.startswith(("fichier:", "photo:")))
    for slot in slots:
        chosen = [form.get(f"{field}:{slot}") for field in ("fichier", "photo")]
        files = [f for f in chosen if _is_file(f)]
        if len(files) > 1:
            problems[slot] = TWO_FILES
        elif files:
            kind = "sworn_statement" if form.get(f"attestation:{slot}") == "oui" else ""
            uploads.append(Upload(slot, kind, files[0]))  # type: ignore[arg-type]
    if not uploads and not problems:
        problems[""] = NO_UPLOADED_FILES
    return UploadPost(uploads, problems)


def _converted(upload: UploadFile, stored: dict[str, Any]) -> bool:
    """A phone photo (HEIC/HEIF) that documents stored as a JPEG."""
    sent = (upload.filename or "").lower().endswith((".heic", ".heif")) or (upload.content_type or "") in (
        "image/heic", "image/heif")
    return sent and stored.get("content_type") == "image/jpeg"


def _sent_line(proof: Proof, upload: UploadFile, stored: dict[str, Any]) -> str:
    if _converted(upload, stored):
        return (f"Votre document « {proof.title} » a été envoyé : le fichier {upload.filename} a été converti "
                f"en JPEG ({stored.get('name')}), un format que tous les ordinateurs savent ouvrir.")
    return f"Votre document « {proof.title} » a été envoyé ({stored.get('name') or upload.filename})."


@router.post(PROOFS, response_class=HTMLResponse,
             summary="Send proofs (one or several files): stored by documents, then attached to the file")
async def upload_proof(request: Request, user: CurrentUser, services: Services) -> Response:
    post = await upload_form(request)
    try:
        dossier = await my_file(request, services, user.access_token)
        if dossier is None:
            return flash.redirect(request, PROOFS)  # the page says to declare the household first
        documents = await my_documents(services, user.access_token)
        proofs = {p.slot: p for p in required_proofs(dossier)}

        def refused(errors: dict[str, str], status_code: int) -> Response:
            """Post/redirect/get for a refusal too (Back or a refresh never sends the files again);
            upload.js reads the page it gets instead, its post left no history entry."""
            if request.headers.get("x-requested-with") != "XMLHttpRequest":
                redirect = flash.refuse(request, PROOFS, PROOFS_REFUSED, status_code, {"errors": errors})
                if redirect is not None:
                    return redirect
            return _proofs_page(request, dossier, documents, upload_errors=errors, status_code=status_code)

        if dossier.get("status") not in EDITABLE:
            message = UNDER_REVIEW if dossier.get("status") == "submitted" else ERASED
            return refused({u.slot: message for u in post.uploads} or {"": message}, 409)
        problems = dict(post.problems)
        for upload in post.uploads:
            proof = proofs.get(upload.slot)
            if proof is None:
                problems[upload.slot] = BAD_PROOF
            elif upload.kind not in ("", proof.kind, "sworn_statement"):
                problems[upload.slot] = BAD_KIND
        if problems:
            return refused(problems, 422)
        stored_ids: dict[str, str] = {}
        lines: list[str] = []
        statuses: list[int] = []
        for upload in post.uploads:
            proof = proofs[upload.slot]
            stored = await services.send(
                "POST", "documents", "/documents", user.access_token, data={"kind": upload.kind or proof.kind},
                files={"file": (upload.file.filename or "document", upload.file.file,
                                upload.file.content_type or "application/octet-stream")},
                timeout=UPLOAD_TIMEOUT_S,
            )
            if stored.status == 201 and isinstance(stored.body.get("id"), str):
                stored_ids[upload.slot] = stored.body["id"]
                lines.append(_sent_line(proof, upload.file, stored.body))
            elif stored.status in (400, 413, 415) and stored.body.get("detail"):
                problems[upload.slot] = str(stored.body["detail"])
                statuses.append(422 if stored.status == 400 else stored.status)
            else:
                problems[upload.slot] = DOCUMENTS_DOWN
                statuses.append(503)
        if not stored_ids:
            return refused(problems, statuses[0] if statuses else 422)
        body = file_content(dossier)
        for slot, new_id in stored_ids.items():
            body = attach_to(body, slot, new_id)
        saved = await services.send("PUT", "household", "/dossier", user.access_token, json=body)
        if saved.status != 200:
            # The file did not take them: the new documents go too, nothing stays half-written.
            for new_id in stored_ids.values():
                await services.send("DELETE", "documents", f"/documents/{new_id}", user.access_token)
            if saved.status in (409, 422) and saved.body.get("detail"):
                return refused({slot: str(saved.body["detail"]) for slot in stored_ids}, saved.status)
            raise HouseholdUnavailable()
        for slot, new_id in stored_ids.items():
            old_id = proofs[slot].document_id
            if old_id and old_id != new_id:
                # Replaced: the old file is of no use any more (a failure here only leaves an unused file).
                await services.send("DELETE", "documents", f"/documents/{old_id}", user.access_token)
        lines.append(CHECKING)
        lines += [f"« {proofs[slot].title if slot in proofs else 'Document'} » n'a pas été envoyé : {message}"
                  for slot, message in problems.items()]
        response = flash.redirect(request, PROOFS, *lines, tone="attention" if problems else "succes")
        if request.headers.get("x-requested-with") == "XMLHttpRequest":
            # upload.js navigates itself: a followed redirect would spend the notice on its request.
            response.status_code = 200
        return response
    finally:
        for upload in post.uploads:
            await upload.file.close()


@router.get(SWORN_STATEMENT, summary="The pre-filled sworn statement (PDF from documents) for one proof")
async def sworn_statement(request: Request, user: CurrentUser, services: Services, piece: str = "") -> Response:
    dossier = await my_file(request, services, user.access_token)
    proof = next((p for p in required_proofs(dossier or {}) if p.slot == piece), None)
    if proof is None:
        raise SwornStatementRefused(BAD_PROOF)
    params = {k: v for k, v in proof.sworn.items() if v}
    pdf = await services.fetch("documents", "/sworn-statement", user.access_token, params=params)
    if pdf is None or pdf.status_code >= 500:
        raise DocumentsUnavailable()
    if pdf.status_code != 200 or not pdf.headers.get("content-type", "").startswith("application/pdf"):
        try:
            detail = str(pdf.json().get("detail") or "")
        except ValueError:
            detail = ""
        raise SwornStatementRefused(
            detail or "L'attestation n'a pas pu être préparée. Vérifiez votre entourage puis réessayez.")
    disposition = pdf.headers.get("content-disposition", 'attachment; filename="attestation-sur-l-honneur.pdf"')
    return Response(pdf.content, media_type="application/pdf",
                    headers={"Content-Disposition": disposition, **NO_STORE})


# ---- Mon dossier, and submitting it -----------------------------------------------------------


def fix_link(problem: str, proofs: list[Proof]) -> str:
    """Where the family fixes what a French problem sentence names: the proof's block when it
    names one, else the declaration."""
    lowered = problem.lower()
    for proof in proofs:
        if proof.title.lower() in lowered:
            return f"{PROOFS}#piece-{proof.slot}"
    if "document" in lowered or "justificatif" in lowered or "pièce" in lowered:
        return PROOFS
    return DECLARE


def item_labels(dossier: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Correction item keys (household's) → (French label, where to fix it)."""
    labels: dict[str, tuple[str, str]] = {"address": ("Adresse du domicile", DECLARE)}
    for guardian in dossier.get("guardians") or []:
        labels[f"guardians.{guardian['guardian_id']}"] = (f"Représentant légal : {person_name(guardian)}", DECLARE)
    for child in dossier.get("children") or []:
        labels[f"children.{child['child_id']}"] = (f"Enfant : {person_name(child)}", DECLARE)
    for proof in required_proofs(dossier):
        if proof.document_id:
            labels[proof.document_id] = (proof.title, f"{PROOFS}#piece-{proof.slot}")
    for piece in dossier.get("recommended") or []:
        labels[piece.get("document_id", "")] = (str(piece.get("label") or "Pièce recommandée"), PROOFS)
    return labels


def label_of(item: str, labels: dict[str, tuple[str, str]]) -> tuple[str, str]:
    parts = item.split(".")
    for key in (item, ".".join(parts[:2]), parts[0]):
        if key in labels:
            return labels[key]
    return ("Votre dossier", DECLARE)


def _file_page(
    request: Request, dossier: dict[str, Any] | None, *, problems: list[str] | None = None, problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    if dossier is None:
        return render(request, "dossier_suivi.html", {"dossier": None, "problem": problem}, status_code=status_code,
                      headers=NO_STORE)
    labels = item_labels(dossier)
    proofs = required_proofs(dossier)

    def corrections(entries: list[dict[str, str]] | None) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for entry in entries or []:
            label, href = label_of(str(entry.get("item", "")), labels)
            out.append({"label": label, "href": href, "reason": str(entry.get("reason", ""))})
        return out

    created_at = french_datetime(dossier.get("created_at"))
    timeline = [{"at": created_at, "label": "Dossier créé", "reason": None, "corrections": []}]
    timeline += [
        {"at": french_datetime(e.get("at")), "label": e.get("label"), "reason": e.get("reason"),
         "corrections": corrections(e.get("corrections"))}
        for e in dossier.get("timeline") or []
    ]
    status = str(dossier.get("status"))
    context = {
        "dossier": dossier, "status": status, "next_step": next_step(status, len(dossier.get("children") or [])),
        "corrections": corrections(dossier.get("corrections")) if status == "corrections_requested" else [],
        "timeline": timeline if dossier.get("created_at") else timeline[1:],
        "submittable": status in SUBMITTABLE, "editable": status in EDITABLE,
        "submit_problems": [{"text": p, "href": fix_link(p, proofs)} for p in problems or []],
        "problem": problem,
        "children": [{"name": person_name(c), "born": french_date(c.get("birth_date"))}
                     for c in dossier.get("children") or []],
        "guardians": [person_name(g) for g in dossier.get("guardians") or []],
        "address": _address_line(dossier["address"]) if dossier.get("address") else None,
    }
    return render(request, "dossier_suivi.html", context, status_code=status_code, headers=NO_STORE)


@router.get(MY_FILE, response_class=HTMLResponse, summary="Mon dossier: status, what to do next, timeline, corrections")
async def file_page(request: Request, user: CurrentUser, services: Services) -> HTMLResponse:
    dossier = await my_file(request, services, user.access_token)
    refused = flash.refusal(request, SUBMIT_REFUSED)
    if refused is not None:  # « Transmettre mon dossier » refused: what is missing, once
        problems = [str(p) for p in refused.fields.get("problems") or []] or None
        problem = str(refused.fields.get("problem") or "") or None
        return _file_page(request, dossier, problems=problems, problem=problem, status_code=refused.status_code)
    return _file_page(request, dossier)


@router.post(SUBMIT, response_class=HTMLResponse, summary="Transmettre mon dossier (household lists what is missing)")
async def submit(request: Request, form: ProtectedForm, user: CurrentUser, services: Services) -> Response:
    reply = await services.send("POST", "household", "/dossier/submit", user.access_token)
    if reply.status == 200:
        return flash.redirect(request, MY_FILE, SUBMITTED_NOTICE)
    if reply.status == 401:
        raise _signed_out(request)
    if reply.status is None or reply.status >= 500:
        raise HouseholdUnavailable()
    if reply.status == 422:
        problems = [str(p) for p in reply.body.get("problems") or []] or [str(reply.body.get("detail") or "")]
        fields: dict[str, Any] = {"problems": problems}
    else:
        fields = {"problem": str(reply.body.get("detail") or NO_FILE_YET)}
    # Post/redirect/get for a refusal too: Back or a refresh never sends the file again.
    redirect = flash.refuse(request, MY_FILE, SUBMIT_REFUSED, reply.status, fields)
    if redirect is not None:
        return redirect
    dossier = await my_file(request, services, user.access_token)
    return _file_page(request, dossier, problems=fields.get("problems"), problem=fields.get("problem"),
                      status_code=reply.status)
