"""Account pages: create my space, check your emails, log in / out, forgotten password, my space.

Thin like ``api.py``: read the form (CSRF-checked by ``ProtectedForm``), call the services through
``clients``, keep identity's tokens in the session cookie (``session``), pick the template.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web import flash, session
from services.web.api import (
    ACTIVATION_RESEND,
    CHECK_EMAIL,
    CONFIRMATION_MISMATCH,
    CONFIRMATION_MISSING,
    EMAIL_INVALID,
    FORGOTTEN,
    PASSWORD_REFUSED,
    RESET_REQUEST,
    Identity,
    _email_error,
    _new_link,
    _outcome,
    link_refusal,
)
from services.web.clients import IdentityAnswer, IdentityUnavailable, ServiceClient, service_client
from services.web.csrf import ProtectedForm
from services.web.dates import french_date
from services.web.pages import remember_file_reference, render
from services.web.session import CurrentUser

router = APIRouter()
Services = Annotated[ServiceClient, Depends(service_client)]

REGISTER = "/creer-mon-espace"
DASHBOARD = session.HOME_AFTER_LOGIN
STAFF_HOME = "/agents/dossiers"

NAME_MISSING = "Saisissez votre prénom et votre nom."
NAME_TOO_LONG = "Votre prénom et votre nom doivent faire 100 caractères au plus."
REGISTER_PASSWORD_MISSING = "Saisissez un mot de passe."
LOGIN_PASSWORD_MISSING = "Saisissez votre mot de passe."
FEW_ATTEMPTS_LEFT = 3
LOGGED_OUT = "Vous êtes déconnecté·e de votre Espace Citoyen Premium. À bientôt."

NEXT_STEPS = {
    None: "Déclarez votre entourage (vous-même, l'autre parent le cas échéant et vos enfants) en joignant "
          "les pièces justificatives demandées, puis transmettez votre dossier au Service Scolaire et Périscolaire.",
    "draft": "Complétez votre dossier et ses pièces justificatives, puis transmettez-le au Service Scolaire et Périscolaire.",
    "submitted": "Votre dossier est en cours d'examen par le Service Scolaire et Périscolaire : "
                 "vous recevrez un email dès qu'une décision sera prise.",
    "corrections_requested": "Le Service Scolaire et Périscolaire vous demande des corrections : "
                             "modifiez les éléments signalés, puis transmettez à nouveau votre dossier.",
    "validated": "Votre dossier est validé. Aucune inscription scolaire n'est ouverte pour {enfants} pour le moment.",
    "rejected": "Votre dossier a été refusé. Consultez le motif du refus ; pour toute question, contactez le "
                "Service Scolaire et Périscolaire.",
}
CAN_ENROL_STEP = "Votre dossier est validé : vous pouvez maintenant inscrire {enfants} à l'école."


def your_children(count: int) -> str:
    """« votre enfant » or « vos enfants », by the number of children of the file."""
    return "votre enfant" if count == 1 else "vos enfants"


def next_step(status: str | None, children: int, *, can_enrol: bool = False) -> str:
    """What to do next, for a file status, in the singular or plural of its children."""
    text = CAN_ENROL_STEP if can_enrol else NEXT_STEPS.get(status, NEXT_STEPS[None])
    return text.format(enfants=your_children(children))


# ---- créer mon espace ------------------------------------------------------------------------

def _register_form(
    request: Request, *, email: str = "", display_name: str = "", errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    order = ("email", "nom", "mot-de-passe", "confirmation")
    ordered = [{"id": fid, "message": errors[fid]} for fid in order if errors and fid in errors]
    context = {"email": email, "display_name": display_name, "errors": ordered, "field_errors": errors or {}}
    return render(request, "register.html", context, status_code=status_code)


def _too_many_requests(request: Request, message: str, headers: dict[str, str] | None) -> HTMLResponse:
    return _outcome(request, title="Trop de demandes", heading="Trop de demandes", message=message, tone="erreur",
                    status_code=429, headers=headers)


@router.get(REGISTER, response_class=HTMLResponse, summary="Create my space (form)")
async def register_page(request: Request) -> HTMLResponse:
    refused = flash.refusal(request, "creer-mon-espace")
    if refused is not None:
        fields = refused.fields
        if refused.status_code == 429:
            return _too_many_requests(request, str(fields.get("problem") or ""), refused.headers or None)
        return _register_form(request, email=str(fields.get("email", "")), display_name=str(fields.get("display_name", "")),
                              errors=dict(fields.get("errors") or {}), status_code=refused.status_code)
    return _register_form(request)


@router.post(REGISTER, response_class=HTMLResponse, summary="Create my space")
async def register(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    email, name = form.get("email", "").strip(), form.get("display_name", "").strip()
    password, confirmation = form.get("password", ""), form.get("confirmation", "")
    errors: dict[str, str] = {}
    if (error := _email_error(email)) is not None:
        errors["email"] = error
    if not name:
        errors["nom"] = NAME_MISSING
    elif len(name) > 100:
        errors["nom"] = NAME_TOO_LONG
    if not password:
        errors["mot-de-passe"] = REGISTER_PASSWORD_MISSING
    if not confirmation:
        errors["confirmation"] = CONFIRMATION_MISSING
    elif password and password != confirmation:
        errors["confirmation"] = CONFIRMATION_MISMATCH
    if not errors:
        answer = await identity.register(email, password, name)
        if answer.status == 202:
            return RedirectResponse(f"{CHECK_EMAIL}?{urlencode({'email': email})}", status_code=303)
        if answer.status == 429:
            headers = {"Retry-After": answer.retry_after} if answer.retry_after else None
            return flash.refuse(request, REGISTER, "creer-mon-espace", 429, {"problem": answer.detail}, headers) or (
                _too_many_requests(request, answer.detail, headers))
        errors = _register_refusal(answer)
    # Post/redirect/get for the refusal too (the passwords are not carried back).
    fields = {"email": email, "display_name": name, "errors": errors}
    return flash.refuse(request, REGISTER, "creer-mon-espace", 422, fields) or _register_form(
        request, email=email, display_name=name, errors=errors, status_code=422)


def _register_refusal(answer: IdentityAnswer) -> dict[str, str]:
    """Identity's 422: its French policy reason next to the password, or the field it refused."""
    errors: dict[str, str] = {}
    if answer.field_error("email") is not None:
        errors["email"] = EMAIL_INVALID
    if answer.field_error("display_name") is not None:
        errors["nom"] = NAME_TOO_LONG
    password_error = answer.field_error("password")
    if password_error is not None:
        errors["mot-de-passe"] = (
            str(password_error.get("msg") or answer.detail) if password_error.get("type") == "value_error" else PASSWORD_REFUSED
        )
    return errors or {"mot-de-passe": answer.detail}


@router.get(CHECK_EMAIL, response_class=HTMLResponse, summary="After registering: the activation email was sent")
async def check_email(request: Request, email: str = "") -> HTMLResponse:
    email = email.strip()
    return render(request, "check_email.html", {"email": email if _email_error(email) is None else ""})


# ---- connexion / déconnexion -----------------------------------------------------------------

def attempts_warning(attempts_left: int | None) -> str | None:
    """Said before identity's limit is reached, not after: the person can still choose a new
    password instead of being locked out."""
    if attempts_left is None or attempts_left > FEW_ATTEMPTS_LEFT:
        return None
    if attempts_left == 0:
        return ("C'était le dernier essai : la connexion à cet espace est suspendue pendant quelques minutes. "
                "Vous pouvez dès maintenant choisir un nouveau mot de passe.")
    tries = "essai" if attempts_left == 1 else "essais"
    return (f"Attention : il vous reste {attempts_left} {tries} avant que la connexion à cet espace soit suspendue "
            "pendant quelques minutes. En cas de doute, choisissez un nouveau mot de passe.")


def _login_form(
    request: Request, *, email: str = "", suite: str | None = None, errors: dict[str, str] | None = None,
    problem: str | None = None, warning: str | None = None, outcome: str | None = None,
    new_link: dict[str, Any] | None = None, status_code: int = 200, headers: dict[str, str] | None = None,
) -> HTMLResponse:
    ordered = [{"id": fid, "message": errors[fid]} for fid in ("identifiant", "mot-de-passe") if errors and fid in errors]
    context = {"email": email, "suite": session.safe_next(suite), "errors": ordered, "field_errors": errors or {},
               "problem": problem, "warning": warning, "outcome": outcome, "new_link": new_link}
    return render(request, "login.html", context, status_code=status_code, headers=headers)


LOGIN_FORM_FIELDS = ("email", "errors", "problem", "warning", "outcome", "new_link")


def _login_refused(request: Request, suite: str | None, *, status_code: int, headers: dict[str, str] | None = None,
                   **shown: Any) -> Response:
    """A refused login, post/redirect/get too: Back from the page after it, or a refresh, never
    sends the form again. The login page shows the refusal once, with identity's status."""
    safe = session.safe_next(suite)
    location = f"{session.LOGIN_PAGE}?{urlencode({'suite': safe})}" if safe else session.LOGIN_PAGE
    redirect = flash.refuse(request, location, "connexion", status_code, shown, headers)
    return redirect or _login_form(request, suite=suite, status_code=status_code, headers=headers, **shown)


@router.get(session.LOGIN_PAGE, response_class=HTMLResponse, summary="Log in (form)")
async def login_page(request: Request, suite: str | None = None) -> Response:
    if session.read(request) is not None:  # already logged in: straight on
        return RedirectResponse(session.safe_next(suite) or DASHBOARD, status_code=303)
    refused = flash.refusal(request, "connexion")
    if refused is not None:
        shown = {k: v for k, v in refused.fields.items() if k in LOGIN_FORM_FIELDS}
        return _login_form(request, suite=suite, status_code=refused.status_code, headers=refused.headers or None,
                           **shown)
    return _login_form(request, suite=suite)


@router.post(session.LOGIN_PAGE, response_class=HTMLResponse, summary="Log in")
async def login(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    email, password, suite = form.get("email", "").strip(), form.get("password", ""), form.get("suite")
    errors: dict[str, str] = {}
    if (error := _email_error(email)) is not None:
        errors["identifiant"] = error
    if not password:
        errors["mot-de-passe"] = LOGIN_PASSWORD_MISSING
    if errors:
        return _login_refused(request, suite, email=email, errors=errors, status_code=422)
    answer, pair = await identity.login(email, password)
    if answer is None:
        session.start(request, pair)
        return RedirectResponse(session.safe_next(suite) or DASHBOARD, status_code=303)
    if answer.status == 403:  # right password, account not activated yet
        return _login_refused(request, suite, email=email, problem=answer.detail, outcome="Espace pas encore activé",
                              status_code=403, new_link=_new_link(ACTIVATION_RESEND, email=email))
    if answer.status == 429:
        headers = {"Retry-After": answer.retry_after} if answer.retry_after else None
        return _login_refused(request, suite, email=email, problem=answer.detail,
                              outcome="Trop de tentatives de connexion", status_code=429, headers=headers)
    if answer.status == 422:
        return _login_refused(request, suite, email=email, errors={"identifiant": EMAIL_INVALID}, status_code=422)
    # 401: identity never says whether the address exists. One message for the form (neither
    # field alone is "the" wrong one), with a warning when few tries are left.
    return _login_refused(request, suite, email=email, problem=answer.detail, outcome="Erreur : Se connecter",
                          warning=attempts_warning(answer.attempts_left), status_code=401)


@router.post("/deconnexion", response_class=HTMLResponse, summary="Log out (then the home page)")
async def logout(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    current = session.read(request)
    if current is not None:
        await identity.logout(current.refresh_token)
    session.end(request)
    return flash.redirect(request, "/", LOGGED_OUT)


# ---- mot de passe oublié ---------------------------------------------------------------------

@router.get(RESET_REQUEST, response_class=HTMLResponse, summary="Forgotten password (form)")
async def forgotten_password(request: Request) -> HTMLResponse:
    refused = link_refusal(request, FORGOTTEN)  # a spent link, or a request refused: why, once
    if refused is not None:
        return refused
    return _outcome(request, title="Mot de passe oublié", heading="Mot de passe oublié",
                    message="Saisissez l'adresse email de votre espace : vous recevrez un lien pour choisir "
                            "un nouveau mot de passe.",
                    new_link=_new_link(RESET_REQUEST))


# ---- mon espace ------------------------------------------------------------------------------

# The manual's four steps, as « Mon espace » shows them.
STEPS = ("Créer mon espace", "Déclarer mon entourage", "Dossier validé", "Inscription scolaire")
# Where the family is in those steps for each file status (index of the step in progress).
CURRENT_STEP = {None: 1, "draft": 1, "corrections_requested": 1, "rejected": 1, "submitted": 2, "validated": 3}
FILE_BADGES = {
    None: ("À déclarer", "action"),
    "draft": ("Dossier à compléter", "action"),
    "submitted": ("Dossier en cours d'examen", "attente"),
    "corrections_requested": ("Dossier à corriger", "refus"),
    "rejected": ("Dossier refusé", "refus"),
    "validated": ("Dossier validé", "ok"),
}
ENROLMENT_BADGES = {
    "confirmed": ("Inscription confirmée", "ok"),
    "pending_agent": ("Inscription en attente de décision", "attente"),
    "refused": ("Inscription refusée", "refus"),
}


def steps(status: str | None, can_enrol: bool, enrolled: bool) -> list[dict[str, str]]:
    """The step indicator: each step done, in progress or to come."""
    current = 4 if enrolled else CURRENT_STEP.get(status, 1)
    out = []
    for index, label in enumerate(STEPS):
        state = "faite" if index < current else "en-cours" if index == current else "a-venir"
        words = {"faite": "Étape terminée", "en-cours": "Étape en cours", "a-venir": "Étape à venir"}[state]
        out.append({"label": label, "state": state, "words": words})
    return out


def child_cards(dossier: dict[str, Any] | None, eligible: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One card per child of the file, with where it stands (the enrolment once it exists)."""
    status = (dossier or {}).get("status")
    by_id = {c.get("child_id"): c for c in eligible or [] if isinstance(c, dict)}
    cards = []
    for child in (dossier or {}).get("children") or []:
        seen = by_id.get(child.get("child_id"), {})
        enrolment = seen.get("enrolment") or {}
        if enrolment.get("status") in ENROLMENT_BADGES:
            badge = ENROLMENT_BADGES[enrolment["status"]]
        elif seen.get("can_enrol"):
            badge = ("À inscrire", "action")
        elif status == "validated" and seen and not seen.get("eligible"):
            badge = ("Pas d'inscription cette année", "neutre")
        else:
            badge = FILE_BADGES.get(status, FILE_BADGES[None])
        cards.append({"name": f"{child.get('first_name', '')} {child.get('last_name', '')}".strip(),
                      "born": french_date(child.get("birth_date")), "level": seen.get("level_label"),
                      "school": (seen.get("sector_school") or {}).get("name"), "badge": badge})
    return cards


@router.get(DASHBOARD, response_class=HTMLResponse, summary="My space: my file's status and what to do next")
async def dashboard(request: Request, user: CurrentUser, services: Services) -> Response:
    if user.is_staff:  # agents have no family file: their home is the queue of files
        return RedirectResponse(STAFF_HOME, status_code=303)
    me = await services.get("identity", "/me", user.access_token)
    if me.status == 401:  # the account was erased or its sessions revoked meanwhile
        raise session.log_in_again(request)
    if me.status != 200 or not isinstance(me.body.get("display_name"), str):
        raise IdentityUnavailable()
    dossier_reply = await services.get("household", "/dossier", user.access_token)
    dossier: dict[str, Any] | None
    if dossier_reply.status == 404:
        dossier = {}
    elif dossier_reply.status == 200:
        dossier = dict(dossier_reply.body)
        remember_file_reference(request, dossier.get("reference"))
        dossier["label"] = str(dossier_reply.body.get("status_label"))
    else:
        dossier = None  # household unreachable: the page says so, the rest still shows
    eligible = await services.get("enrolment", "/enrolments/eligible", user.access_token)
    children = eligible.body.get("children") if eligible.status == 200 else None
    children = children if isinstance(children, list) else None
    can_enrol = bool(children) and any(isinstance(c, dict) and c.get("can_enrol") is True for c in children or [])
    enrolled = bool(children) and all(
        isinstance(c, dict) and ((c.get("enrolment") or {}).get("status") == "confirmed" or not c.get("eligible"))
        for c in children or []) and any(isinstance(c, dict) and c.get("enrolment") for c in children or [])
    status = dossier.get("status") if dossier else None
    cards = child_cards(dossier, children)
    step_text = next_step(status, len(cards), can_enrol=can_enrol)
    if dossier is None:
        step_text = "Revenez dans quelques minutes pour connaître l'état de votre dossier."
    context = {"name": me.body["display_name"], "dossier": dossier, "next_step": step_text, "can_enrol": can_enrol,
               "school_year": eligible.body.get("school_year", ""), "steps": steps(status, can_enrol, enrolled),
               "children": cards, "file_badge": FILE_BADGES.get(status, FILE_BADGES[None])}
    # Personal data: never cached.
    return render(request, "dashboard.html", context, headers={"Cache-Control": "no-store"})
