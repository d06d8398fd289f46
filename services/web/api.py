"""Page routes. Server-rendered with jinja2; every page works without JavaScript.

Thin: read the form (CSRF-checked by ``ProtectedForm``), call the service through
``clients``, pick the template and status. Statuses mirror identity's answers (410 expired,
409 already used, 400 unknown...), so monitoring sees outcomes, and browsers show the page anyway.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.web import flash
from services.web.clients import IdentityAnswer, IdentityClient, identity_client
from services.web.csrf import ProtectedForm
from services.web.pages import render

router = APIRouter()
Identity = Annotated[IdentityClient, Depends(identity_client)]

# Identity's token format: a link cut by a mail client fails here without a call.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
LOGIN_URL = "/connexion"
CHECK_EMAIL = "/verifiez-vos-emails"
ACTIVATION_RESEND = "/activation/nouveau-lien"
RESET_REQUEST = "/mot-de-passe/oubli"
NEW_PASSWORD = "/mot-de-passe/nouveau"

EMAIL_MISSING = "Saisissez votre adresse email, par exemple nom@exemple.fr."
EMAIL_INVALID = "Saisissez une adresse email valide, par exemple nom@exemple.fr."
PASSWORD_MISSING = "Saisissez un nouveau mot de passe."
CONFIRMATION_MISSING = "Saisissez à nouveau le mot de passe pour le confirmer."
CONFIRMATION_MISMATCH = "Les deux mots de passe ne sont pas identiques. Saisissez-les à nouveau."
PASSWORD_REFUSED = "Ce mot de passe ne peut pas être utilisé. Choisissez-en un autre."
PASSWORD_SET = "Votre mot de passe est modifié. Connectez-vous avec votre nouveau mot de passe."
INCOMPLETE_LINK = ("Le lien que vous avez suivi est incomplet : il a peut-être été coupé par votre messagerie. "
                   "Copiez l'adresse complète du lien reçu par email, ou demandez un nouveau lien ci-dessous.")


def _valid_token(value: str | None) -> str | None:
    return value if value is not None and _TOKEN.match(value) else None


def _email_error(email: str) -> str | None:
    """A first check so that an empty field gets a clear message; identity validates for real."""
    if not email:
        return EMAIL_MISSING
    if "@" not in email or len(email) > 254 or " " in email:
        return EMAIL_INVALID
    return None


def _new_link(action: str, *, email: str = "", error: str | None = None) -> dict[str, Any]:
    return {"action": action, "email": email, "errors": [{"id": "email", "message": error}] if error else []}


def _outcome(
    request: Request, *, title: str, heading: str, message: str | None = None, tone: str = "info",
    login: bool = False, new_link: dict[str, Any] | None = None, status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    context = {"title": title, "heading": heading, "message": message, "tone": tone, "login": login, "new_link": new_link}
    return render(request, "outcome.html", context, status_code=status_code, headers=headers)


# ---- the emailed links' refusals --------------------------------------------------------------

@dataclass(frozen=True)
class LinkPage:
    """A page where an emailed link's refusals land (post/redirect/get), with its « Recevoir un
    nouveau lien » form: a spent or broken link, an address refused, too many requests."""

    path: str  # the page (GET) that shows the refusal once
    form: str  # its name for flash.refuse
    action: str  # where its form asks for a new link


FORGOTTEN = LinkPage(RESET_REQUEST, "mot-de-passe-oublie", RESET_REQUEST)
ACTIVATION_REFUSED = LinkPage("/activation", "activation", ACTIVATION_RESEND)


def link_refused(request: Request, page: LinkPage, status_code: int, *, title: str, heading: str,
                 message: str | None = None, email: str = "", error: str | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    """303 to ``page``, which says why once, with that status, and offers a new link."""
    fields = {"title": title, "heading": heading, "message": message, "email": email[:254], "error": error}
    return flash.refuse(request, page.path, page.form, status_code, fields, headers) or _outcome(
        request, title=title, heading=heading, message=message, tone="erreur",
        new_link=_new_link(page.action, email=email, error=error), status_code=status_code, headers=headers)


def link_refusal(request: Request, page: LinkPage) -> HTMLResponse | None:
    """The refusal ``link_refused`` left for ``page``, if any (once)."""
    refused = flash.refusal(request, page.form)
    if refused is None:
        return None
    f = {k: (str(v) if v is not None else None) for k, v in refused.fields.items()}
    return _outcome(request, title=f.get("title") or "", heading=f.get("heading") or "", message=f.get("message"),
                    tone="erreur", new_link=_new_link(page.action, email=f.get("email") or "", error=f.get("error")),
                    status_code=refused.status_code, headers=refused.headers or None)


# ---- activation ------------------------------------------------------------------------------

def _activation_link_incomplete(request: Request) -> HTMLResponse:
    return _outcome(
        request, title="Lien d'activation incomplet", heading="Lien d'activation incomplet", tone="erreur",
        message=INCOMPLETE_LINK, new_link=_new_link(ACTIVATION_RESEND), status_code=400,
    )


def _activation_refused(request: Request, title: str, message: str, status_code: int) -> Response:
    return link_refused(request, ACTIVATION_REFUSED, status_code, title=title, heading=title, message=message)


@router.get("/activation", response_class=HTMLResponse, summary="Activation page (the emailed link)")
async def activation_page(request: Request, jeton: str | None = None) -> HTMLResponse:
    # Only a form here: mail scanners fetch links, and a GET must not use the single-use token.
    token = _valid_token(jeton)
    if token is None:  # a link cut short, or where a refused activation or request leads
        return link_refusal(request, ACTIVATION_REFUSED) or _activation_link_incomplete(request)
    return render(request, "activation.html", {"jeton": token})


ACTIVATED = "Votre espace est activé. Connectez-vous avec votre adresse email et votre mot de passe."


@router.post("/activation", response_class=HTMLResponse, summary="Activate the account")
async def activate(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    token = _valid_token(form.get("jeton"))
    if token is None:
        return _activation_refused(request, "Lien d'activation incomplet", INCOMPLETE_LINK, 400)
    answer = await identity.activate(token)
    # As the manual says: back to the home page, to log in from there (post/redirect/get).
    if answer.status == 200:
        return flash.redirect(request, "/", ACTIVATED)
    if answer.status == 409:
        return flash.redirect(request, "/", answer.detail, tone="info")
    if answer.status == 410:
        return _activation_refused(request, "Lien d'activation expiré", answer.detail, 410)
    if answer.status == 422:  # a token identity's own format check refused: the link is broken
        return _activation_refused(request, "Lien d'activation incomplet", INCOMPLETE_LINK, 400)
    return _activation_refused(request, "Lien d'activation non valide", answer.detail, 400)


@router.post(ACTIVATION_RESEND, response_class=HTMLResponse, summary="Ask for a new activation link")
async def resend_activation(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    email = form.get("email", "").strip()
    done = f"{CHECK_EMAIL}?{urlencode({'email': email})}" if _email_error(email) is None else CHECK_EMAIL
    return await _ask_for_link(
        request, form, identity.resend_activation, action=ACTIVATION_RESEND,
        form_heading="Recevoir un nouveau lien d'activation", done_page=done,
    )


# ---- password reset --------------------------------------------------------------------------

def _reset_link_problem(request: Request, title: str, message: str, status_code: int) -> HTMLResponse:
    return _outcome(request, title=title, heading=title, message=message, tone="erreur",
                    new_link=_new_link(RESET_REQUEST), status_code=status_code)


def _reset_link_refused(request: Request, title: str, message: str, status_code: int) -> Response:
    return link_refused(request, FORGOTTEN, status_code, title=title, heading=title, message=message)




def _reset_link_incomplete(request: Request) -> HTMLResponse:
    return _reset_link_problem(request, "Lien incomplet", INCOMPLETE_LINK, 400)


def _new_password_form(
    request: Request, token: str, errors: dict[str, str] | None = None, status_code: int = 200
) -> HTMLResponse:
    # Field ids in display order, so the summary lists errors as the fields appear.
    ordered = [{"id": fid, "message": errors[fid]} for fid in ("nouveau-mot-de-passe", "confirmation") if errors and fid in errors]
    return render(request, "new_password.html", {"jeton": token, "errors": ordered, "field_errors": errors or {}},
                  status_code=status_code)


@router.get(NEW_PASSWORD, response_class=HTMLResponse, summary="New password page (the emailed link)")
async def new_password_page(request: Request, jeton: str | None = None) -> HTMLResponse:
    token = _valid_token(jeton)
    if token is None:
        return _reset_link_incomplete(request)
    refused = flash.refusal(request, NEW_PASSWORD)
    if refused is not None:
        errors = {str(k): str(v) for k, v in dict(refused.fields.get("errors") or {}).items()}
        return _new_password_form(request, token, errors, status_code=refused.status_code)
    return _new_password_form(request, token)


def _new_password_refused(request: Request, token: str, errors: dict[str, str]) -> Response:
    """Post/redirect/get: back to the link's page with the errors (never the passwords), once."""
    location = f"{NEW_PASSWORD}?{urlencode({'jeton': token})}"
    return flash.refuse(request, location, NEW_PASSWORD, 422, {"errors": errors}) or _new_password_form(
        request, token, errors, status_code=422)


@router.post(NEW_PASSWORD, response_class=HTMLResponse, summary="Set the new password")
async def set_new_password(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    token = _valid_token(form.get("jeton"))
    if token is None:
        return _reset_link_refused(request, "Lien incomplet", INCOMPLETE_LINK, 400)
    password, confirmation = form.get("new_password", ""), form.get("confirmation", "")
    errors: dict[str, str] = {}
    if not password:
        errors["nouveau-mot-de-passe"] = PASSWORD_MISSING
    if not confirmation:
        errors["confirmation"] = CONFIRMATION_MISSING
    elif password and password != confirmation:
        errors["confirmation"] = CONFIRMATION_MISMATCH
    if errors:  # checked here: a typo must not spend the single-use link
        return _new_password_refused(request, token, errors)
    answer = await identity.confirm_reset(token, password)
    if answer.status == 200:
        return flash.redirect(request, LOGIN_URL, PASSWORD_SET)
    if answer.status == 422:
        if answer.field_error("token") is not None:
            return _reset_link_refused(request, "Lien incomplet", INCOMPLETE_LINK, 400)
        return _new_password_refused(request, token, {"nouveau-mot-de-passe": _password_reason(answer)})
    titles = {410: "Lien expiré", 409: "Lien déjà utilisé"}
    return _reset_link_refused(request, titles.get(answer.status, "Lien non valide"), answer.detail,
                               answer.status if answer.status in titles else 400)


def _password_reason(answer: IdentityAnswer) -> str:
    # Identity's policy refusals carry a French reason (type "value_error"); its schema
    # validation (e.g. over 256 characters) only English details, replaced by a French sentence.
    error = answer.field_error("new_password")
    if error is not None and error.get("type") == "value_error":
        return str(error.get("msg") or answer.detail)
    return PASSWORD_REFUSED


@router.post(RESET_REQUEST, response_class=HTMLResponse, summary="Ask for a new password reset link")
async def request_reset(request: Request, form: ProtectedForm, identity: Identity) -> Response:
    return await _ask_for_link(
        request, form, identity.request_reset, action=RESET_REQUEST,
        form_heading="Recevoir un nouveau lien", done_page=RESET_REQUEST,
    )


# ---- shared ----------------------------------------------------------------------------------

async def _ask_for_link(
    request: Request, form: dict[str, str], call: Callable[[str], Awaitable[IdentityAnswer]], *, action: str,
    form_heading: str, done_page: str,
) -> Response:
    """Both "Recevoir un nouveau lien" forms: identity answers the same whatever the address.
    Sent: 303 to ``done_page`` with identity's neutral answer as the notice."""
    email = form.get("email", "").strip()
    error = _email_error(email)
    if error is None:
        answer = await call(email)
        if answer.status == 202:
            return flash.redirect(request, done_page, answer.detail)
        page = FORGOTTEN if action == RESET_REQUEST else ACTIVATION_REFUSED
        if answer.status == 429:
            headers = {"Retry-After": answer.retry_after} if answer.retry_after else None
            return link_refused(request, page, 429, title="Trop de demandes", heading="Trop de demandes",
                                message=answer.detail, headers=headers)
        error = EMAIL_INVALID
    page = FORGOTTEN if action == RESET_REQUEST else ACTIVATION_REFUSED
    return link_refused(request, page, 422, title=f"Erreur : {form_heading}", heading=form_heading, email=email,
                        error=error)


@router.get("/", response_class=HTMLResponse, summary="Home page")
async def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")
