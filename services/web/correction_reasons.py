"""Back-office « Motifs de correction »: the preset reasons an agent picks when asking a family to
correct a document, kept by household (its editable list). Every agent reads the list and its
history; an admin adds, edits, moves and removes reasons (household answers 403 to anyone else).

Each action is a plain form posted then redirected (303) back to the page, its news or its
refusal shown there once (``flash``), so a reload, Back or Forward never posts it again. The
page sends household the whole list with the version it showed: a change made meanwhile by
another admin is a 409, said on the page, never overwritten.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web import flash
from services.web.backoffice import (
    Services, Unavailable, _checked, _detail, _ordered, _page, _valid_id, agent_label, staff_names,
)
from services.web.clients import ServiceClient
from services.web.csrf import ProtectedForm
from services.web.dates import numeric_datetime
from services.web.errors import BadForm
from services.web.session import CurrentAgent

router = APIRouter()

PAGE = "/agents/motifs-de-correction"
REASONS = "/review/correction-reasons"
MAX_LENGTH = 150  # household's limit (domain.MAX_CORRECTION_REASON_LENGTH)
HISTORY_SHOWN = 50
NEW_FIELD = "nouveau-motif"
FORM = "motifs-de-correction"  # the name of this page's refusals for flash
DONE = {"ajoute": "Le motif est ajouté : les agents le voient dès maintenant.",
        "modifie": "Le motif est modifié. Les corrections déjà demandées gardent leur texte.",
        "deplace": "Le motif est déplacé.", "supprime": "Le motif est supprimé de la liste."}
ACTIONS = {"enregistrer": "modifie", "monter": "deplace", "descendre": "deplace", "supprimer": "supprime"}
TEXT_MISSING = "Saisissez le texte du motif (ou supprimez-le)."
NEW_TEXT_MISSING = "Saisissez le motif à ajouter."
GONE = "Ce motif n'est plus dans la liste : un autre administrateur l'a supprimé entre-temps."
ADMINS_ONLY = "Seul un administrateur peut modifier la liste des motifs."


def field_id(reason_id: str) -> str:
    return f"texte-{reason_id}"


def change_lines(entry: dict[str, Any]) -> list[str]:
    """What one change of the list did, in French, one line each."""
    lines = [f"Ajouté : « {text} »" for text in entry.get("added") or []]
    lines += [f"Modifié : « {e.get('from')} » devient « {e.get('to')} »" for e in entry.get("edited") or [] if isinstance(e, dict)]
    lines += [f"Supprimé : « {text} »" for text in entry.get("removed") or []]
    if entry.get("reordered"):
        lines.append("Ordre de la liste modifié")
    return lines


async def _reasons_page(request: Request, agent: CurrentAgent, services: ServiceClient, *, problem: str | None = None,
                        errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                        status_code: int = 200) -> HTMLResponse:
    current, history, names = await asyncio.gather(
        services.get("household", REASONS, agent.access_token), services.get("household", f"{REASONS}/history", agent.access_token),
        staff_names(services, agent))
    body = _checked(request, current)
    reasons = [r for r in body.get("reasons", []) if isinstance(r, dict) and isinstance(r.get("id"), str)]
    entries = history.body.get("items", []) if history.status == 200 else []
    changes = [{"at_label": numeric_datetime(e.get("at")), "label": e.get("label", ""),
                "by": agent_label(names, e.get("agent_id")) if e.get("agent_id") else "Mise en service",
                "lines": change_lines(e)} for e in entries[:HISTORY_SHOWN] if isinstance(e, dict)]
    return _page(request, "agent_correction_reasons.html", {
        "reasons": reasons, "version": body.get("version"), "is_admin": agent.role == "admin", "max_length": MAX_LENGTH,
        "changes": changes, "history_complete": history.status == 200, "history_total": len(entries),
        "problem": problem, "errors": _ordered(errors or {}), "field_errors": errors or {},
        "values": values or {}, "new_field": NEW_FIELD, "field_id": field_id,
    }, status_code=status_code)


@router.get(PAGE, response_class=HTMLResponse, summary="Back-office: the preset correction reasons (admins edit them) and their history")
async def correction_reasons(request: Request, agent: CurrentAgent, services: Services) -> HTMLResponse:
    refused = flash.refusal(request, FORM)
    if refused is None:
        return await _reasons_page(request, agent, services)
    fields = refused.fields
    errors = {str(k): str(v) for k, v in dict(fields.get("errors") or {}).items()}
    values = {str(k): str(v) for k, v in dict(fields.get("values") or {}).items()}
    problem = fields.get("problem")
    return await _reasons_page(request, agent, services, errors=errors, values=values,
                               problem=str(problem) if problem else None, status_code=refused.status_code)


async def _refused(request: Request, agent: CurrentAgent, services: ServiceClient, status_code: int, *,
                   errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                   problem: str | None = None) -> Response:
    """Post/redirect/get for a refusal too: the page says it once, with what the admin typed."""
    fields = {"errors": errors or {}, "values": values or {}, "problem": problem}
    anchor = "#resume-erreurs" if errors else ""
    return flash.refuse(request, PAGE + anchor, FORM, status_code, fields) or await _reasons_page(
        request, agent, services, errors=errors, values=values, problem=problem, status_code=status_code)


async def _change(request: Request, agent: CurrentAgent, services: ServiceClient, form: dict[str, str],
                  wanted: list[dict[str, Any]], done: str, field: str, anchor: str = "") -> Response:
    """Sends household the new list with the version the page showed; 303 back with the news
    (shown once: a refresh does not repeat it), or the page again with household's refusal next
    to ``field``."""
    version = form.get("version", "")
    reply = await services.send("PUT", "household", REASONS, agent.access_token,
                                json={"version": int(version) if version.isdigit() else None, "reasons": wanted})
    values = {field: form.get("text", "")}
    if reply.status == 200:
        return flash.redirect(request, f"{PAGE}{anchor}", DONE[done])
    if reply.status == 403:
        return await _refused(request, agent, services, 403, problem=ADMINS_ONLY)
    if reply.status == 409:  # another admin changed the list since this page was shown
        return await _refused(request, agent, services, 409, problem=_detail(reply))
    if reply.status == 422:
        problems = reply.body.get("problems")
        message = " ".join(p for p in problems if isinstance(p, str)) if isinstance(problems, list) and problems else _detail(reply)
        return await _refused(request, agent, services, 422, errors={field: message}, values=values)
    _checked(request, reply)
    raise Unavailable()


async def _current(request: Request, agent: CurrentAgent, services: ServiceClient) -> list[dict[str, Any]]:
    body = _checked(request, await services.get("household", REASONS, agent.access_token))
    return [{"id": r["id"], "text": r.get("text", "")} for r in body.get("reasons", []) if isinstance(r, dict) and isinstance(r.get("id"), str)]


@router.post(PAGE + "/ajouter", response_class=HTMLResponse, summary="Back-office: add a preset correction reason (admins)")
async def add_reason(request: Request, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    text = " ".join(form.get("text", "").split())
    if not text:
        return await _refused(request, agent, services, 422, errors={NEW_FIELD: NEW_TEXT_MISSING})
    reasons = await _current(request, agent, services)
    return await _change(request, agent, services, form, [*reasons, {"text": text}], "ajoute", NEW_FIELD, f"#{NEW_FIELD}")


@router.post(PAGE + "/{reason_id}", response_class=HTMLResponse,
             summary="Back-office: edit, move up or down, or remove a preset correction reason (admins)")
async def change_reason(request: Request, reason_id: str, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    reason_id, action = _valid_id(reason_id), form.get("action", "")
    if action not in ACTIONS:
        raise BadForm()
    reasons = await _current(request, agent, services)
    position = next((n for n, r in enumerate(reasons) if r["id"] == reason_id), None)
    if position is None:
        return await _refused(request, agent, services, 409, problem=GONE)
    field, anchor = field_id(reason_id), f"#motif-{reason_id}"
    if action == "enregistrer":
        text = " ".join(form.get("text", "").split())
        if not text:
            return await _refused(request, agent, services, 422, errors={field: TEXT_MISSING}, values={field: ""})
        reasons[position] = {**reasons[position], "text": text}
    elif action == "supprimer":
        del reasons[position]
        anchor = "#liste-motifs"
    else:
        other = position - 1 if action == "monter" else position + 1
        if 0 <= other < len(reasons):
            reasons[position], reasons[other] = reasons[other], reasons[position]
    return await _change(request, agent, services, form, reasons, ACTIONS[action], field, anchor)
