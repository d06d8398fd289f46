"""My account: my email and name, the references of my file and my enrolments (what to quote
when calling the Service), change my password, delete my account.

One page, two forms posting to it (a hidden ``action`` tells which). Identity checks the current
password for both; its French reasons go next to the field they are about.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.web import flash, session
from services.web.api import CONFIRMATION_MISMATCH, CONFIRMATION_MISSING, PASSWORD_MISSING, PASSWORD_REFUSED, Identity
from services.web.clients import IdentityUnavailable, ServiceClient, ServiceReply, service_client
from services.web.csrf import ProtectedForm
from services.web.errors import BadForm
from services.web.pages import remember_file_reference, render
from services.web.session import CurrentUser

router = APIRouter()
Services = Annotated[ServiceClient, Depends(service_client)]

PAGE = "/mon-compte"
NO_STORE = {"Cache-Control": "no-store"}
CHANGE_PASSWORD, DELETE_ACCOUNT = "mot-de-passe", "suppression"

# Field ids, in the order the page shows them (the error summary follows it).
CURRENT, NEW, CONFIRMATION = "mot-de-passe-actuel", "nouveau-mot-de-passe", "confirmation-mot-de-passe"
DELETE_PASSWORD, DELETE_CONFIRMED = "mot-de-passe-suppression", "confirmer-suppression"
FIELD_ORDER = (CURRENT, NEW, CONFIRMATION, DELETE_PASSWORD, DELETE_CONFIRMED)

CURRENT_MISSING = "Saisissez votre mot de passe actuel."
SAME_PASSWORD = "Le nouveau mot de passe doit être différent du mot de passe actuel."
CURRENT_WRONG = "Le mot de passe actuel est incorrect."
DELETE_PASSWORD_MISSING = "Saisissez votre mot de passe pour confirmer la suppression."
DELETE_PASSWORD_WRONG = "Le mot de passe est incorrect."
TOO_MANY_TRIES = "Trop de tentatives. Réessayez dans quelques minutes."
DELETE_NOT_CONFIRMED = "Cochez la case pour confirmer que vous voulez supprimer définitivement votre compte."
PASSWORD_CHANGED = ("Votre mot de passe a été modifié. Vous restez connecté·e ici ; "
                    "vos sessions sur vos autres appareils ont été fermées.")
PASSWORD_CHANGED_LOG_IN_AGAIN = ("Votre mot de passe a été modifié et, par sécurité, toutes vos sessions ont été "
                                 "fermées. Connectez-vous avec votre nouveau mot de passe.")
ACCOUNT_DELETED = ("Votre compte et les données personnelles de votre espace sont en cours d'effacement dans tous "
                   "les services de la ville. Vous ne pouvez plus vous connecter avec cette adresse ; vous pourrez "
                   "créer un nouvel espace si besoin.")


async def _profile(request: Request, user: session.Session, services: ServiceClient) -> dict[str, Any]:
    me = await services.get("identity", "/me", user.access_token)
    if me.status in (401, 404):  # the account was erased or its sessions revoked meanwhile
        raise session.log_in_again(request)
    if me.status != 200 or not isinstance(me.body.get("email"), str):
        raise IdentityUnavailable()
    return me.body


async def _references(request: Request, user: session.Session, services: ServiceClient) -> dict[str, Any] | None:
    """A family's short references: its file's (household; None before it declares) and each
    enrolment's (enrolment), read at once; None for staff, who have neither. A service that does
    not answer leaves its part out (``known`` false) rather than the whole page."""
    if user.is_staff:
        return None
    dossier, enrolments = await asyncio.gather(services.get("household", "/dossier", user.access_token),
                                               services.get("enrolment", "/enrolments", user.access_token))
    file_reference = dossier.body.get("reference") if dossier.status == 200 else None
    remember_file_reference(request, file_reference)  # the header shows it too, as on every family page
    items = enrolments.body.get("enrolments") if enrolments.status == 200 else None
    return {
        "file": file_reference if isinstance(file_reference, str) else None, "file_known": dossier.status in (200, 404),
        "enrolments": [{"reference": e["reference"], "child": str(e.get("child_first_name") or ""),
                        "school_year": str(e.get("school_year") or ""), "status": str(e.get("status_label") or "")}
                       for e in items if isinstance(e, dict) and isinstance(e.get("reference"), str)] if isinstance(items, list) else [],
        "enrolments_known": isinstance(items, list),
    }


def _page(request: Request, profile: dict[str, Any], *, errors: dict[str, str] | None = None,
          status_code: int = 200, references: dict[str, Any] | None = None) -> HTMLResponse:
    errors = errors or {}
    context = {
        "email": profile.get("email", ""), "name": profile.get("display_name", ""), "references": references,
        "errors": [{"id": fid, "message": errors[fid]} for fid in FIELD_ORDER if fid in errors], "field_errors": errors,
    }
    return render(request, "my_account_page.html", context, status_code=status_code, headers=NO_STORE)


def _refused(request: Request, profile: dict[str, Any], errors: dict[str, str], status_code: int) -> Response:
    """Post/redirect/get for a refused form too: the errors go back to the page once (never a password)."""
    return flash.refuse(request, PAGE, "mon-compte", status_code, {"errors": errors}) or _page(
        request, profile, errors=errors, status_code=status_code)


@router.get(PAGE, response_class=HTMLResponse, summary="My account: email and name, change password, delete account")
async def my_account(request: Request, user: CurrentUser, services: Services) -> HTMLResponse:
    refused = flash.refusal(request, "mon-compte")
    if refused is not None:
        errors = {str(k): str(v) for k, v in dict(refused.fields.get("errors") or {}).items() if k in FIELD_ORDER}
        profile, references = await asyncio.gather(_profile(request, user, services), _references(request, user, services))
        return _page(request, profile, errors=errors, status_code=refused.status_code, references=references)
    profile, references = await asyncio.gather(_profile(request, user, services), _references(request, user, services))
    return _page(request, profile, references=references)


@router.post(PAGE, response_class=HTMLResponse, summary="Change my password, or delete my account")
async def my_account_action(request: Request, form: ProtectedForm, user: CurrentUser, services: Services,
                            identity: Identity) -> Response:
    action = form.get("action")
    if action == CHANGE_PASSWORD:
        return await _change_password(request, form, user, services, identity)
    if action == DELETE_ACCOUNT:
        return await _delete_account(request, form, user, services)
    raise BadForm()


def _field_message(reply: ServiceReply, name: str) -> str | None:
    """Identity's French reason about ``name``: its policy messages (``value_error``) are shown as
    they are; a generic validation message (too long...) is replaced by ours."""
    errors = reply.body.get("errors")
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict) and name in error.get("loc", ()):
            return str(error.get("msg") or reply.body.get("detail")) if error.get("type") == "value_error" else PASSWORD_REFUSED
    return None


async def _change_password(request: Request, form: dict[str, str], user: session.Session, services: ServiceClient,
                           identity: Identity) -> Response:
    current, new, confirmation = form.get("current_password", ""), form.get("new_password", ""), form.get("confirmation", "")
    errors: dict[str, str] = {}
    if not current:
        errors[CURRENT] = CURRENT_MISSING
    if not new:
        errors[NEW] = PASSWORD_MISSING
    elif new == current:
        errors[NEW] = SAME_PASSWORD
    if not confirmation:
        errors[CONFIRMATION] = CONFIRMATION_MISSING
    elif new and new != confirmation:
        errors[CONFIRMATION] = CONFIRMATION_MISMATCH
    profile = await _profile(request, user, services)
    if errors:
        return _refused(request, profile, errors, 422)
    reply = await services.send("POST", "identity", "/me/password", user.access_token,
                                json={"current_password": current, "new_password": new})
    if reply.status == 204:
        # Identity revoked every session, this one too. The person just proved the password, so
        # this browser logs in again with the new one; only when that fails are they asked to.
        answer, pair = await identity.login(profile["email"], new)
        if answer is None:
            session.start(request, pair)
            return flash.redirect(request, PAGE, PASSWORD_CHANGED)
        session.end(request)
        return flash.redirect(request, session.LOGIN_PAGE, PASSWORD_CHANGED_LOG_IN_AGAIN)
    if reply.status == 401:
        if _field_message(reply, "current_password") is None:  # the token itself was refused
            raise session.log_in_again(request)
        return _refused(request, profile, {CURRENT: str(reply.body.get("detail") or CURRENT_WRONG)}, 401)
    if reply.status == 429:  # wrong current passwords are limited like logins
        return _refused(request, profile, {CURRENT: str(reply.body.get("detail") or TOO_MANY_TRIES)}, 429)
    if reply.status == 422:
        reason = _field_message(reply, "new_password")
        return _refused(request, profile, {NEW: reason} if reason is not None else {CURRENT: CURRENT_WRONG}, 422)
    raise IdentityUnavailable()


async def _delete_account(request: Request, form: dict[str, str], user: session.Session, services: ServiceClient) -> Response:
    password = form.get("password", "")
    errors: dict[str, str] = {}
    if not password:
        errors[DELETE_PASSWORD] = DELETE_PASSWORD_MISSING
    if form.get("confirm") != "oui":
        errors[DELETE_CONFIRMED] = DELETE_NOT_CONFIRMED
    if errors:
        return _refused(request, await _profile(request, user, services), errors, 422)
    reply = await services.send("POST", "identity", "/me/delete", user.access_token, json={"password": password})
    if reply.status == 204:
        session.end(request)  # identity deleted the refresh tokens; the cookie goes too
        return flash.redirect(request, "/", ACCOUNT_DELETED)
    if reply.status == 401:
        if _field_message(reply, "password") is None:
            raise session.log_in_again(request)
        return _refused(request, await _profile(request, user, services),
                        {DELETE_PASSWORD: str(reply.body.get("detail") or DELETE_PASSWORD_WRONG)}, 401)
    if reply.status == 429:
        return _refused(request, await _profile(request, user, services),
                        {DELETE_PASSWORD: str(reply.body.get("detail") or TOO_MANY_TRIES)}, 429)
    if reply.status == 422:
        return _refused(request, await _profile(request, user, services), {DELETE_PASSWORD: DELETE_PASSWORD_WRONG}, 422)
    raise IdentityUnavailable()
