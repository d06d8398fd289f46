"""Agents' back-office: queue of files, file review with inline viewer, decisions, enrolments vs
capacity, out-of-sector decisions, sector-map import.

Thin like ``account.py``: every route takes ``CurrentAgent`` (a family gets the French 403), reads
the services with the agent's own token (each service checks the role itself), and renders an
``agent_*.html`` template. Decisions are plain forms posted then redirected (303) to the page with
a status message, so a reload never decides twice; a refusal by the service is shown next to the
field it concerns.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from services.web import csrf, session
from services.web.clients import ServiceClient, ServiceReply, service_client
from services.web.csrf import ProtectedForm
from services.web.dates import numeric_date, numeric_datetime
from services.web.errors import BadForm, PageError
from services.web.pages import render
from services.web.session import CurrentAgent

router = APIRouter()
Services = Annotated[ServiceClient, Depends(service_client)]

QUEUE = "/agents/dossiers"
ENROLMENTS = "/agents/inscriptions"
SECTOR_MAP = "/agents/carte-scolaire"
NO_STORE = {"Cache-Control": "no-store"}  # personal data: never kept by a cache
PAGE_SIZE = 20
MAX_REASON = 2000  # household's and enrolment's limit for a reason
MAX_CSV_BYTES = 900_000  # enrolment's limit for a sector-map file
# Ids the services hand out (uuids, "map-…"): anything else is a 404 without a call.
_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")
_YEAR = re.compile(r"^\d{4}(-\d{4})?$")
# An enrolment's reference as an agent may type it (enrolment reads it exactly: INS-2027-000123).
_ENROLMENT_REF = re.compile(r"^INS[\s-]*\d{4}[\s-]*[0-9A-Z]{1,8}$", re.IGNORECASE)

QUEUE_STATUSES = {
    "submitted": "En attente d'examen",
    "corrections_requested": "Corrections demandées",
    "validated": "Validés",
    "rejected": "Refusés",
}
DOSSIER_DONE = {
    "pris": "Vous examinez ce dossier : les autres agents voient qu'il est pris.",
    "libere": "Le dossier est libéré : un autre agent peut le prendre.",
    "reattribue": "Le dossier est confié à l'agent choisi.",
    "valide": "Le dossier a été validé. La famille est avertie par email et peut inscrire ses enfants.",
    "refuse": "Le dossier a été refusé. La famille est avertie par email, avec le motif.",
    "corrections": "Les corrections ont été demandées. La famille est avertie par email, avec vos motifs.",
}
ENROLMENT_DONE = {
    "confirmee": "L'inscription est confirmée. La famille est avertie par email.",
    "refusee": "L'inscription est refusée. La famille est avertie par email, avec le motif.",
    "derogation-acceptee": "La dérogation est acceptée. La famille est avertie par email.",
    "derogation-refusee": "La dérogation est refusée. La famille est avertie par email, avec le motif.",
}
CORRECTION_MISSING = "Saisissez au moins une correction demandée, avec son motif pour la famille."
REASON_TOO_LONG = f"Le motif doit faire {MAX_REASON} caractères au plus."
REFUSAL_REASON_MISSING = "Saisissez le motif du refus : il est communiqué à la famille."
CSV_MISSING = "Choisissez le fichier CSV de la carte scolaire."
CSV_TOO_LARGE = "Le fichier de carte scolaire est trop volumineux (900 ko au plus)."
YEAR_INVALID = "Saisissez une année scolaire comme 2027-2028."
ENROLMENT_REF_INVALID = "Saisissez une référence d'inscription comme INS-2027-000123."
PROBLEM_KINDS = {
    "malformed": "ligne illisible", "unknown_school": "école inconnue", "wrong_school_type": "type d'école incorrect",
    "overlap": "tronçons qui se chevauchent", "gap": "numéros non couverts",
}
PREVIEWABLE = {"application/pdf", "image/jpeg", "image/png"}


class Unavailable(PageError):
    status_code = 503
    title = "Service momentanément indisponible"
    message = "Un service ne répond pas pour le moment. Réessayez dans quelques minutes."


class NotFound(PageError):
    status_code = 404
    title = "Page introuvable"
    message = "Ce que vous cherchez n'existe pas ou plus."


def _detail(reply: ServiceReply, default: str = Unavailable.message) -> str:
    detail = reply.body.get("detail")
    return detail if isinstance(detail, str) and detail else default


def _checked(request: Request, reply: ServiceReply, *, not_found: str | None = None) -> dict[str, Any]:
    """The body of a 200/201; a 404 page, the login page (token revoked) or the 503 page otherwise."""
    if reply.status in (200, 201):
        return reply.body
    if reply.status == 401:  # the agent's sessions were revoked meanwhile
        session.end(request)
        raise session.LoginRequired(session.login_location(request))
    if reply.status == 404 and not_found is not None:
        raise NotFound(not_found)
    raise Unavailable()


def _valid_id(value: str) -> str:
    if not _ID.match(value):
        raise NotFound()
    return value


def _ordered(errors: dict[str, str]) -> list[dict[str, str]]:
    return [{"id": field_id, "message": message} for field_id, message in errors.items()]


def _reason_error(reason: str, missing: str | None) -> str | None:
    if not reason:
        return missing
    return REASON_TOO_LONG if len(reason) > MAX_REASON else None


def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    return render(request, template, context, status_code=status_code, headers={**NO_STORE, **(headers or {})})


# ---- the queue -----------------------------------------------------------------------------------

QUEUE_STATUSES_ALL = {**QUEUE_STATUSES, "all": "Tous les états"}
ASSIGNMENT_FILTERS = {"": "Tous", "moi": "Pris par moi", "libres": "Libres (personne ne les examine)"}
DELAY_FILTERS = {"": "Tous", "retard": "Délai dépassé (dossiers en retard)"}
NEVER = "1970-01-01T00:00:00+00:00"  # a bound no file is before: nothing is overdue
SORTS = {"anciens": "Les plus anciens d'abord", "recents": "Les plus récents d'abord"}
MAX_QUERY = 200


async def staff_names(services: ServiceClient, agent: CurrentAgent) -> dict[str, str]:
    """Account id → name of every agent and admin (deactivated ones too: their decisions stay
    theirs). An identity that does not answer leaves the ids to the template's fallback."""
    reply = await services.get("identity", "/staff", agent.access_token)
    if reply.status != 200:
        return {}
    return {str(m.get("account_id")): str(m.get("display_name") or "") for m in reply.body.get("items", []) if isinstance(m, dict)}


async def overdue_since(services: ServiceClient, agent: CurrentAgent) -> dict[str, str]:
    """Id → waiting since, of the files waiting longer than the threshold of working days (the
    insights service); an insights service that does not answer leaves the queue without its
    « En retard » marks (and the filter finds none)."""
    reply = await services.get("insights", "/overdue", agent.access_token)
    if reply.status != 200:
        return {}
    return {str(f.get("dossier_id")): str(f.get("waiting_since")) for f in reply.body.get("files", [])
            if isinstance(f, dict) and f.get("waiting_since")}


def agent_label(names: dict[str, str], agent_id: Any) -> str:
    """« Marie Dupont », or a short id when the directory does not know (or did not answer)."""
    agent_id = str(agent_id or "")
    return names.get(agent_id) or (f"Agent {agent_id[:8]}" if agent_id else "")


def _page_number(value: str) -> int:
    return int(value) if value.isdigit() and 0 < int(value) <= 10_000 else 1


def _pager(path: str, filters: dict[str, Any], page: int, pages: int) -> dict[str, Any]:
    """The numbered pages of a list, each link keeping the filters shown."""
    def link(n: int) -> str:
        return f"{path}?{urlencode({**filters, 'page': n})}"
    return {"page": page, "pages": pages, "previous_page": link(page - 1) if page > 1 else None,
            "next_page": link(page + 1) if page < pages else None}


@router.get(QUEUE, response_class=HTMLResponse, summary="Back-office: files to review (search, filters, sort, numbered pages)")
async def queue(request: Request, agent: CurrentAgent, services: Services, statut: str = "submitted", q: str = "",
                attribution: str = "", tri: str = "anciens", page: str = "1", fin: str = "", delai: str = "",
                ecole: str = "") -> HTMLResponse:
    status = statut if statut in QUEUE_STATUSES_ALL else "submitted"
    query = " ".join(q.split())[:MAX_QUERY]
    assigned = attribution if attribution in ASSIGNMENT_FILTERS else ""
    sort = tri if tri in SORTS else "anciens"
    number = _page_number(page)
    late = delai == "retard"
    school = ecole if _ID.match(ecole) else ""
    filters = {"q": query, "statut": status, "attribution": assigned, "tri": sort, "delai": "retard" if late else "",
               **({"ecole": school} if school else {})}
    params: dict[str, Any] = {"status": status, "limit": PAGE_SIZE, "page": number,
                              "sort": "newest" if sort == "recents" else "oldest"}
    if query:
        params["q"] = query
    if school:
        params["school"] = school
    if assigned:
        params["assigned"] = "me" if assigned == "moi" else "none"
    if late:
        # The overdue files are the oldest waiting: each was submitted at or before the newest of them.
        overdue = await overdue_since(services, agent)
        params.update(status="submitted", submitted_until=max(overdue.values(), default=NEVER))
        reply, names, schools = await asyncio.gather(
            services.get("household", "/review/queue", agent.access_token, params=params), staff_names(services, agent),
            services.get("enrolment", "/schools", agent.access_token))
    else:
        reply, names, overdue, schools = await asyncio.gather(
            services.get("household", "/review/queue", agent.access_token, params=params), staff_names(services, agent),
            overdue_since(services, agent), services.get("enrolment", "/schools", agent.access_token))
    body = _checked(request, reply)
    items = [i for i in body.get("items", []) if isinstance(i, dict) and _ID.match(str(i.get("id", "")))]
    rows = []
    for item in items:
        holder = (item.get("assignment") or {}).get("agent_id")
        rows.append({**item, "overdue": item.get("id") in overdue,
                     "family": str(item.get("family") or ""), "submitted_label": numeric_datetime(item.get("submitted_at")),
                     "holder": agent_label(names, holder) if holder else "", "mine": holder == agent.account_id})
    total, pages = int(body.get("total") or 0), int(body.get("pages") or 1)
    context: dict[str, Any] = {
        "statuses": QUEUE_STATUSES_ALL, "assignments": ASSIGNMENT_FILTERS, "sorts": SORTS, "delays": DELAY_FILTERS, "filters": filters, "rows": rows,
        "schools": school_choices(schools, school),
        "total": total, "total_capped": bool(body.get("total_capped")), **_pager(QUEUE, filters, number, pages),
        "errors": [], "field_errors": {}, "problem": None,
        "done": "Aucun autre dossier libre n'attend d'examen pour le moment." if fin else None,
    }
    return _page(request, "agent_queue.html", context)


def school_choices(reply: Any, selected: str) -> dict[str, str]:
    """The « École » filter's choices: every school enrolment knows, by name. An enrolment service
    that does not answer leaves « Toutes les écoles » (and the school chosen, by its id)."""
    names = _school_names(reply.body.get("items", [])) if reply.status == 200 else {}
    choices = {"": "Toutes les écoles", **dict(sorted(names.items(), key=lambda item: item[1]))}
    if selected and selected not in choices:
        choices[selected] = f"École {selected}"
    return choices


@router.get(QUEUE + "/suivant", response_class=HTMLResponse, summary="Back-office: the next free file waiting, oldest first")
async def next_dossier(request: Request, agent: CurrentAgent, services: Services, apres: str = "") -> Response:
    reply = await services.get("household", "/review/queue", agent.access_token,
                               params={"status": "submitted", "assigned": "none", "limit": 2, "sort": "oldest"})
    items = [i for i in _checked(request, reply).get("items", []) if isinstance(i, dict) and _ID.match(str(i.get("id", "")))]
    following = next((i["id"] for i in items if i["id"] != apres), None)
    if following is None:
        return RedirectResponse(f"{QUEUE}?{urlencode({'statut': 'submitted', 'fin': 1})}", status_code=303)
    return RedirectResponse(f"{QUEUE}/{following}", status_code=303)


# ---- one file ------------------------------------------------------------------------------------

def _correction_items(review: dict[str, Any]) -> list[dict[str, str]]:
    """What a correction may concern (household's item keys), each with its field id and label."""
    items = [{"key": "address", "label": "L'adresse du domicile"}]
    for guardian in review.get("guardians") or []:
        name = f"{guardian.get('first_name', '')} {guardian.get('last_name', '')}".strip()
        items.append({"key": f"guardians.{guardian.get('guardian_id')}", "label": f"Le représentant légal {name}"})
    for child in review.get("children") or []:
        name = f"{child.get('first_name', '')} {child.get('last_name', '')}".strip()
        items.append({"key": f"children.{child.get('child_id')}", "label": f"L'enfant {name}"})
    data = [{**item, "id": f"correction-{n}", "name": f"correction:{item['key']}", "document": False} for n, item in enumerate(items)]
    # A document is checked in its own fieldset (a preset reason and a precision): "motif-<n>".
    for n, document in enumerate(review.get("documents") or []):
        label = str(document.get("label", ""))
        data.append({"key": str(document.get("document_id")), "label": f"{label[:1].upper()}{label[1:]} (pièce jointe)",
                     "id": f"motif-{n}", "name": f"motif:{document.get('document_id')}", "document": True})
    return data


def _viewer(document: dict[str, Any]) -> str | None:
    content_type = document.get("content_type") if document.get("url") else None
    if content_type == "application/pdf":
        return "pdf"
    if content_type in ("image/jpeg", "image/png"):
        return "image"
    return None


# A correction names an item by its id; once the family has replaced that document (or removed
# that child) the id is no longer in the file: say so rather than show the raw id.
REPLACED_ITEM = "Élément remplacé ou retiré depuis la demande"


async def _dossier_page(
    request: Request, dossier_id: str, agent: CurrentAgent, services: ServiceClient, *,
    done: str | None = None, problem: str | None = None, errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None, status_code: int = 200, piece: int = 0, rotation: int = 0,
) -> HTMLResponse:
    review_reply, audit_reply, names, reasons = await asyncio.gather(
        services.get("household", f"/review/dossiers/{dossier_id}", agent.access_token),
        services.get("household", f"/review/dossiers/{dossier_id}/audit", agent.access_token),
        staff_names(services, agent), preset_reasons(services, agent),
    )
    review = _checked(request, review_reply, not_found="Ce dossier n'existe pas.")
    sector = await _sector(services, agent, review)
    audit = audit_reply.body.get("items") if audit_reply.status == 200 else None
    documents = [{**d, "viewer": _viewer(d), "index": n} for n, d in enumerate(review.get("documents") or []) if isinstance(d, dict)]
    shown = documents[piece] if 0 <= piece < len(documents) else (documents[0] if documents else None)
    assignment = review.get("assignment") or {}
    holder = assignment.get("agent_id")
    me = agent.account_id
    items = _correction_items(review)
    timeline = audit if isinstance(audit, list) else review.get("timeline") or []
    context = {
        "dossier": review, "documents": documents, "items": items, "item_labels": {i["key"]: i["label"] for i in items},
        "REPLACED_ITEM": REPLACED_ITEM,
        "submitted_label": numeric_datetime(review.get("submitted_at")),
        "children": [{**c, "birth_label": numeric_date(c.get("birth_date"))} for c in review.get("children") or []],
        "timeline": [{**e, "at_label": numeric_datetime(e.get("at")), "by": agent_label(names, e.get("agent_id"))}
                     for e in timeline if isinstance(e, dict)],
        "shown": shown, "rotation": rotation if rotation in ROTATIONS else 0, "sector": sector,
        "pdf_viewer": getattr(request.app.state, "pdf_viewer", False),  # pdf.js served (main.mount_pdfjs)
        "holder": agent_label(names, holder) if holder else "", "mine": bool(holder) and holder == me,
        "held_until": numeric_datetime(assignment.get("until")), "is_admin": agent.role == "admin",
        "colleagues": sorted(((i, n) for i, n in names.items() if i != holder and n), key=lambda p: p[1]),
        "reasons": reasons or [], "reasons_unavailable": reasons is None,
        "data_open": any(k.startswith("correction-") for k in (errors or {})) or any(
            k.startswith("correction:") and v for k, v in (values or {}).items()), "next_link": f"{QUEUE}/suivant?{urlencode({'apres': dossier_id})}",
        "audit_complete": audit is not None,
        "done": DOSSIER_DONE.get(done or ""), "decided": done in ("valide", "refuse", "corrections"), "problem": problem, "errors": _ordered(errors or {}),
        "field_errors": errors or {}, "values": values or {}, "decidable": review.get("status") == "submitted",
    }
    return _page(request, "agent_dossier.html", context, status_code=status_code)


ROTATIONS = (0, 90, 180, 270)


async def preset_reasons(services: ServiceClient, agent: CurrentAgent) -> list[str] | None:
    """The preset reasons an agent picks for a document to correct, in order: household's list,
    which admins edit in « Motifs de correction » (correction_reasons.py); free text may complete
    each. None when household does not answer: the page then asks for the reason as free text."""
    reply = await services.get("household", "/review/correction-reasons", agent.access_token)
    if reply.status != 200:
        return None
    return [str(r["text"]) for r in reply.body.get("reasons", []) if isinstance(r, dict) and r.get("text")]


def _coming_school_year(today: date) -> int:
    """The September a campaign enrols for: this one until June, then the next."""
    return today.year if today.month <= 6 else today.year + 1


async def _sector(services: ServiceClient, agent: CurrentAgent, review: dict[str, Any]) -> dict[str, Any] | None:
    """Whether the address is on the sector map, and the school each child would get."""
    address = review.get("address")
    if not isinstance(address, dict):
        return None
    lookup, schools = await asyncio.gather(
        services.get("enrolment", "/sector-map/lookup", agent.access_token, params={
            k: address.get(k) for k in ("street", "number", "postcode", "town")}),
        services.get("enrolment", "/schools", agent.access_token),
    )
    if lookup.status != 200:
        return {"known": False}
    names = _school_names(schools.body.get("items", [])) if schools.status == 200 else {}
    segment = lookup.body.get("segment") if isinstance(lookup.body.get("segment"), dict) else None
    year = _coming_school_year(date.today())
    children = []
    for child in review.get("children") or []:
        born = str(child.get("birth_date") or "")[:4]
        school = None
        if segment and born.isdigit():
            # Maternelle until grande section (born Y-5), élémentaire from CP (Y-6) to CM2 (Y-10).
            age = year - int(born)
            key = "maternelle_id" if age <= 5 else "elementaire_id" if age <= 10 else None
            school = names.get(str(segment.get(key)), str(segment.get(key))) if key else None
        children.append({"name": f"{child.get('first_name', '')} {child.get('last_name', '')}".strip(), "school": school})
    return {"known": True, "in_town": bool(lookup.body.get("in_town", True)), "found": bool(lookup.body.get("found")),
            "year": year, "children": children}


@router.get(QUEUE + "/{dossier_id}", response_class=HTMLResponse, summary="Back-office: a file, its documents, decisions and audit")
async def dossier(request: Request, dossier_id: str, agent: CurrentAgent, services: Services, fait: str = "",
                  piece: str = "0", rotation: str = "0") -> HTMLResponse:
    return await _dossier_page(request, _valid_id(dossier_id), agent, services, done=fait,
                               piece=int(piece) if piece.isdigit() else 0, rotation=int(rotation) if rotation.isdigit() else 0)


@router.post(QUEUE + "/{dossier_id}/prendre", response_class=HTMLResponse, summary="Back-office: « Je prends ce dossier »")
async def take(request: Request, dossier_id: str, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    return await _assignment(request, _valid_id(dossier_id), agent, services, "POST", None, "pris")


@router.post(QUEUE + "/{dossier_id}/liberer", response_class=HTMLResponse, summary="Back-office: release a file")
async def release(request: Request, dossier_id: str, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    return await _assignment(request, _valid_id(dossier_id), agent, services, "DELETE", None, "libere")


@router.post(QUEUE + "/{dossier_id}/attribuer", response_class=HTMLResponse, summary="Back-office: hand a file to an agent (admins)")
async def reassign(request: Request, dossier_id: str, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    target = form.get("agent_id", "")
    if not _ID.match(target):
        return await _dossier_page(request, _valid_id(dossier_id), agent, services, status_code=422,
                                   errors={"attribuer-agent": "Choisissez l'agent à qui confier ce dossier."})
    return await _assignment(request, _valid_id(dossier_id), agent, services, "PUT", {"agent_id": target}, "reattribue")


async def _assignment(request: Request, dossier_id: str, agent: CurrentAgent, services: ServiceClient, method: str,
                      body: dict[str, Any] | None, done: str) -> Response:
    reply = await services.send(method, "household", f"/review/dossiers/{dossier_id}/assignment", agent.access_token, json=body)
    if reply.status in (200, 204):
        return RedirectResponse(f"{QUEUE}/{dossier_id}?fait={done}", status_code=303)
    if reply.status in (403, 409):  # held by another agent, decided meanwhile, or not an admin
        problem = _detail(reply, "Seul un administrateur peut attribuer un dossier à un autre agent.")
        return await _dossier_page(request, dossier_id, agent, services, problem=problem, status_code=reply.status)
    _checked(request, reply, not_found="Ce dossier n'existe pas.")
    raise Unavailable()


async def _decide(
    request: Request, dossier_id: str, agent: CurrentAgent, services: ServiceClient, action: str,
    body: dict[str, Any], done: str, field_id: str, values: dict[str, str],
) -> Response:
    """Posts a decision; 303 to the file with its status message, or the file again with the refusal."""
    reply = await services.send("POST", "household", f"/review/dossiers/{dossier_id}/{action}", agent.access_token, json=body)
    if reply.status == 200:
        return RedirectResponse(f"{QUEUE}/{dossier_id}?fait={done}", status_code=303)
    if reply.status == 409:  # decided by another agent meanwhile, or no longer under review
        return await _dossier_page(request, dossier_id, agent, services, problem=_detail(reply), status_code=409)
    if reply.status == 422:
        problems = reply.body.get("problems")
        message = " ".join(p for p in problems if isinstance(p, str)) if isinstance(problems, list) and problems else _detail(reply)
        return await _dossier_page(request, dossier_id, agent, services, errors={field_id: message}, values=values,
                                   status_code=422)
    _checked(request, reply, not_found="Ce dossier n'existe pas.")
    raise Unavailable()


def _version(form: dict[str, str]) -> int | None:
    value = form.get("version", "")
    return int(value) if value.isdigit() else None


@router.post(QUEUE + "/{dossier_id}/valider", response_class=HTMLResponse, summary="Back-office: validate a file")
async def validate(request: Request, dossier_id: str, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    dossier_id = _valid_id(dossier_id)
    if form.get("confirme") != "1":
        # One click never validates: the agent first reads what follows, then confirms.
        review = _checked(request, await services.get("household", f"/review/dossiers/{dossier_id}", agent.access_token),
                          not_found="Ce dossier n'existe pas.")
        children = [f"{c.get('first_name', '')} {c.get('last_name', '')}".strip() for c in review.get("children") or []]
        return _page(request, "agent_confirm.html", {"dossier": review, "children": children, "version": _version(form)})
    return await _decide(request, _valid_id(dossier_id), agent, services, "validate", {"version": _version(form)},
                         "valide", "valider", {})


@router.post(QUEUE + "/{dossier_id}/refuser", response_class=HTMLResponse, summary="Back-office: reject a file with a reason")
async def reject(request: Request, dossier_id: str, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    dossier_id = _valid_id(dossier_id)
    reason = form.get("reason", "").strip()
    if (error := _reason_error(reason, REFUSAL_REASON_MISSING)) is not None:
        return await _dossier_page(request, dossier_id, agent, services, errors={"motif-refus": error},
                                   values={"reason": reason}, status_code=422)
    return await _decide(request, dossier_id, agent, services, "reject", {"version": _version(form), "reason": reason},
                         "refuse", "motif-refus", {"reason": reason})


# The one form with a field per item of the file: more than the account forms' 20 fields for a
# family with many children and documents.
_corrections_form = csrf.protected_form_of(max_fields=200, max_bytes=200 * 1024)


@router.post(QUEUE + "/{dossier_id}/corrections", response_class=HTMLResponse,
             summary="Back-office: ask the family for corrections, one reason per item")
async def request_corrections(
    request: Request, dossier_id: str, form: Annotated[dict[str, str], Depends(_corrections_form)],
    agent: CurrentAgent, services: Services,
) -> Response:
    dossier_id = _valid_id(dossier_id)
    values = {name: value.strip() for name, value in form.items() if name.startswith(("correction:", "motif:", "precision:"))}
    corrections = [{"item": name.removeprefix("correction:"), "reason": reason} for name, reason in values.items()
                   if name.startswith("correction:") and reason]
    for name, preset in values.items():
        if name.startswith("motif:"):  # a document's checklist: a preset reason, the free text completing it
            document_id = name.removeprefix("motif:")
            detail = values.get(f"precision:{document_id}", "")
            reason = f"{preset} : {detail}" if preset and detail else preset or detail
            if reason:
                corrections.append({"item": document_id, "reason": reason})
    for name, detail in values.items():
        document_id = name.removeprefix("precision:")
        if name.startswith("precision:") and detail and f"motif:{document_id}" not in values:
            corrections.append({"item": document_id, "reason": detail})
    too_long = next((c["item"] for c in corrections if len(c["reason"]) > MAX_REASON), None)
    if not corrections or too_long is not None:
        # The field ids follow the file's items: the page is rebuilt from the file, the error put on the right one.
        review = _checked(request, await services.get("household", f"/review/dossiers/{dossier_id}", agent.access_token),
                          not_found="Ce dossier n'existe pas.")
        items = _correction_items(review)
        field_id = next((i["id"] for i in items if i["key"] == too_long), "demander-corrections")
        return await _dossier_page(request, dossier_id, agent, services, values=values, status_code=422,
                                   errors={field_id: REASON_TOO_LONG if too_long else CORRECTION_MISSING})
    return await _decide(request, dossier_id, agent, services, "request-corrections",
                         {"version": _version(form), "corrections": corrections}, "corrections", "demander-corrections", values)


# ---- a document, relayed for the inline viewer ---------------------------------------------------

# The preview is framed by the file's page (same origin) and nothing else; it runs nothing.
PREVIEW_POLICY = "default-src 'none'; img-src 'self'; object-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"


@router.get("/agents/documents/{document_id}/apercu", summary="Back-office: a document's bytes, inline, from the object store")
async def preview(document_id: str, agent: CurrentAgent, services: Services, telecharger: str = "") -> Response:
    link = await services.get("documents", f"/documents/{_valid_id(document_id)}/download", agent.access_token)
    if link.status == 404:
        raise NotFound("Ce document n'existe pas ou n'est pas consultable (en cours de vérification ou pas encore transmis).")
    if link.status == 410:
        raise _Gone()
    url, name = link.body.get("url"), str(link.body.get("filename") or "document")
    if link.status != 200 or not isinstance(url, str):
        raise Unavailable("Le service des pièces justificatives ne répond pas. Réessayez dans quelques minutes.")
    stored = await services.fetch_url(url)
    if stored is None or stored.status_code != 200:
        raise Unavailable("Le document ne peut pas être lu pour le moment. Réessayez dans quelques minutes.")
    content_type = str(link.body.get("content_type") or "")
    inline = content_type in PREVIEWABLE and not telecharger  # any value asks for the file (the link sends 1)
    disposition = "inline" if inline else "attachment"
    return Response(stored.content, media_type=content_type if content_type in PREVIEWABLE else "application/octet-stream", headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": PREVIEW_POLICY,
        "Cache-Control": "no-store",
    })


class _Gone(PageError):
    status_code = 410
    title = "Document supprimé"
    message = "Ce document contenait un virus et a été supprimé."


# ---- enrolments ----------------------------------------------------------------------------------

def _school_names(schools: list[dict[str, Any]]) -> dict[str, str]:
    return {str(s.get("id")): str(s.get("name")) for s in schools}


PENDING_KINDS = {"": "Tous les motifs", "derogation": "Demande de dérogation", "address_unknown": "Adresse absente de la carte",
                 "outside_town": "Adresse hors de la commune", "no_seat": "Plus de place dans l'école de secteur"}
LEVELS = {"": "Tous les niveaux", "TPS": "toute petite section", "PS": "petite section", "MS": "moyenne section",
          "GS": "grande section", "CP": "CP", "CE1": "CE1", "CE2": "CE2", "CM1": "CM1", "CM2": "CM2"}


async def _enrolments_page(
    request: Request, agent: CurrentAgent, services: ServiceClient, *, year: str = "", school: str = "",
    done: str | None = None, problem: str | None = None, errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None, status_code: int = 200, level: str = "", kind: str = "", page: int = 1,
    ref: str = "",
) -> HTMLResponse:
    params = {"school_year": year} if year else {}
    wanted: dict[str, Any] = {**params, "page": page, "limit": PAGE_SIZE}
    for name, value in (("school_id", school), ("level", level), ("reason", kind), ("reference", ref)):
        if value:
            wanted[name] = value
    schools_reply, pending_reply = await asyncio.gather(
        services.get("enrolment", "/schools", agent.access_token),
        services.get("enrolment", "/pending-decisions", agent.access_token, params=wanted),
    )
    schools = [s for s in _checked(request, schools_reply).get("items", []) if isinstance(s, dict) and _ID.match(str(s.get("id", "")))]
    shown = [s for s in schools if not school or s["id"] == school]
    overviews = await asyncio.gather(*(
        services.get("enrolment", f"/schools/{s['id']}/enrolments", agent.access_token, params=params) for s in shown))
    body = _checked(request, pending_reply)
    pending = [{**e, "requested_label": numeric_datetime(e.get("created_at"))}
               for e in body.get("items", []) if isinstance(e, dict) and _ID.match(str(e.get("id", "")))]
    total, pages = int(body.get("total") or 0), int(body.get("pages") or 1)
    filters = {"annee": year, "ecole": school, "niveau": level, "motif": kind, **({"ref": ref} if ref else {})}
    context = {
        "year": year, "school": school, "level": level, "kind": kind, "ref": ref, "levels": LEVELS, "kinds": PENDING_KINDS,
        "total": total, **_pager(ENROLMENTS, filters, page, pages),
        "export_link": f"/agents/exports/inscriptions.csv?{urlencode({'ecole': school, 'annee': year})}" if school else None,
        "overviews": [_checked(request, o) for o in overviews],
        "names": _school_names(schools),
        "schools": schools,
        "decisions": [e for e in pending if e.get("kind") != "derogation"],
        "derogations": [e for e in pending if e.get("kind") == "derogation"],
        "done": ENROLMENT_DONE.get(done or ""), "problem": problem, "errors": _ordered(errors or {}),
        "field_errors": errors or {}, "values": values or {},
    }
    return _page(request, "agent_enrolments.html", context, status_code=status_code)


@router.get(ENROLMENTS, response_class=HTMLResponse, summary="Back-office: enrolments against capacity, pending decisions, dérogations")
async def enrolments(request: Request, agent: CurrentAgent, services: Services, annee: str = "", ecole: str = "",
                     fait: str = "", niveau: str = "", motif: str = "", page: str = "1", ref: str = "") -> HTMLResponse:
    year, reference = annee.strip(), " ".join(ref.split())[:MAX_QUERY]
    errors = {**({"annee": YEAR_INVALID} if year and not _YEAR.match(year) else {}),
              **({"ref": ENROLMENT_REF_INVALID} if reference and not _ENROLMENT_REF.match(reference) else {})}
    if errors:
        context = {"year": year, "school": "", "overviews": [], "names": {}, "schools": [], "decisions": [], "derogations": [],
                   "done": None, "problem": None, "errors": _ordered(errors), "field_errors": errors, "values": {},
                   "level": "", "kind": "", "ref": reference, "levels": LEVELS, "kinds": PENDING_KINDS, "total": 0, "page": 1, "pages": 1}
        return _page(request, "agent_enrolments.html", context, status_code=422)
    return await _enrolments_page(request, agent, services, year=year, school=ecole if _ID.match(ecole) else "", done=fait,
                                  level=niveau if niveau in LEVELS else "", kind=motif if motif in PENDING_KINDS else "",
                                  page=_page_number(page), ref=reference)


def _shown_filters(form: dict[str, str]) -> dict[str, str]:
    """The year and school the agent was looking at (hidden in each decision form), kept after it."""
    year, school = form.get("annee", "").strip(), form.get("ecole", "").strip()
    return {"year": year if _YEAR.match(year) else "", "school": school if _ID.match(school) else ""}


async def _enrolment_decision(
    request: Request, agent: CurrentAgent, services: ServiceClient, path: str, body: dict[str, Any],
    done: str, field_id: str, values: dict[str, str], filters: dict[str, str],
) -> Response:
    reply = await services.send("POST", "enrolment", path, agent.access_token, json=body)
    if reply.status == 200:
        query = {"fait": done, **{name: filters[key] for name, key in (("annee", "year"), ("ecole", "school")) if filters[key]}}
        return RedirectResponse(f"{ENROLMENTS}?{urlencode(query)}", status_code=303)
    if reply.status in (409, 422):  # no seat left, already decided, a reason or a school missing
        return await _enrolments_page(request, agent, services, errors={field_id: _detail(reply)}, values=values,
                                      status_code=reply.status, **filters)
    _checked(request, reply, not_found="Cette inscription n'existe pas.")
    raise Unavailable()


@router.post(ENROLMENTS + "/{enrolment_id}/decision", response_class=HTMLResponse,
             summary="Back-office: confirm (choosing the school if needed) or refuse a pending enrolment")
async def enrolment_decision(request: Request, enrolment_id: str, form: ProtectedForm, agent: CurrentAgent,
                             services: Services) -> Response:
    enrolment_id = _valid_id(enrolment_id)
    decision, reason, school_id = form.get("decision", ""), form.get("reason", "").strip(), form.get("school_id", "").strip()
    values = {f"motif-{enrolment_id}": reason, f"ecole-{enrolment_id}": school_id}
    if decision not in ("confirm", "refuse"):
        raise BadForm()
    filters = _shown_filters(form)
    error = _reason_error(reason, REFUSAL_REASON_MISSING if decision == "refuse" else None)
    if error is not None:
        return await _enrolments_page(request, agent, services, errors={f"motif-{enrolment_id}": error}, values=values,
                                      status_code=422, **filters)
    body = {"decision": decision, "reason": reason or None, "school_id": school_id or None}
    # A confirmation refused (no seat left, no school chosen) is shown at the school's list when
    # the form has one (the address is off the map), else at the confirm button.
    confirm_field = f"ecole-{enrolment_id}" if "school_id" in form else f"confirmer-{enrolment_id}"
    field_id = confirm_field if decision == "confirm" else f"motif-{enrolment_id}"
    return await _enrolment_decision(request, agent, services, f"/enrolments/{enrolment_id}/decision", body,
                                     "confirmee" if decision == "confirm" else "refusee", field_id, values, filters)


@router.post(ENROLMENTS + "/{enrolment_id}/derogation", response_class=HTMLResponse,
             summary="Back-office: accept or refuse (with a reason) an out-of-sector request")
async def derogation_decision(request: Request, enrolment_id: str, form: ProtectedForm, agent: CurrentAgent,
                              services: Services) -> Response:
    enrolment_id = _valid_id(enrolment_id)
    decision, reason = form.get("decision", ""), form.get("reason", "").strip()
    field_id = f"motif-derogation-{enrolment_id}"
    if decision not in ("accepted", "refused"):
        raise BadForm()
    filters = _shown_filters(form)
    error = _reason_error(reason, REFUSAL_REASON_MISSING if decision == "refused" else None)
    if error is not None:
        return await _enrolments_page(request, agent, services, errors={field_id: error}, values={field_id: reason},
                                      status_code=422, **filters)
    done = "derogation-acceptee" if decision == "accepted" else "derogation-refusee"
    return await _enrolment_decision(request, agent, services, f"/enrolments/{enrolment_id}/derogation/decision",
                                     {"decision": decision, "reason": reason or None}, done, field_id, {field_id: reason}, filters)


# ---- the decision trail (« Journal des décisions ») ------------------------------------------------

JOURNAL = "/agents/journal"
TRAIL_ACTIONS = {
    "": "Toutes les décisions", "enrolment_confirmed": "Inscriptions confirmées", "enrolment_refused": "Inscriptions refusées",
    "school_chosen": "Écoles choisies (adresse hors carte)", "derogation_accepted": "Dérogations acceptées",
    "derogation_refused": "Dérogations refusées", "capacity_changed": "Capacités modifiées",
    "sector_map_imported": "Cartes scolaires importées", "sector_map_applied": "Cartes scolaires appliquées",
}


@router.get(JOURNAL, response_class=HTMLResponse, summary="Back-office: who decided what and when (enrolments, capacities, sector map)")
async def journal(request: Request, agent: CurrentAgent, services: Services, action: str = "", page: str = "1",
                  ref: str = "") -> HTMLResponse:
    chosen = action if action in TRAIL_ACTIONS else ""
    reference = " ".join(ref.split())[:MAX_QUERY]
    if reference and not _ENROLMENT_REF.match(reference):
        errors = {"ref": ENROLMENT_REF_INVALID}
        return _page(request, "agent_journal.html", {
            "entries": [], "actions": TRAIL_ACTIONS, "action": chosen, "ref": reference, "total": 0, "errors": _ordered(errors),
            "field_errors": errors, **_pager(JOURNAL, {"action": chosen}, 1, 1)}, status_code=422)
    number = _page_number(page)
    params: dict[str, Any] = {"page": number, "limit": 50}
    if chosen:
        params["action"] = chosen
    if reference:
        params["reference"] = reference
    reply, names, schools = await asyncio.gather(services.get("enrolment", "/audit", agent.access_token, params=params),
                                                 staff_names(services, agent),
                                                 services.get("enrolment", "/schools", agent.access_token))
    body = _checked(request, reply)
    school_names = _school_names(schools.body.get("items", [])) if schools.status == 200 else {}
    entries = [{**e, "at_label": numeric_datetime(e.get("at")), "by": agent_label(names, e.get("agent_id")),
                "school": school_names.get(str(e.get("school_id")), e.get("school_id") or "")}
               for e in body.get("items", []) if isinstance(e, dict)]
    pages = int(body.get("pages") or 1)
    filters = {"action": chosen, **({"ref": reference} if reference else {})}
    return _page(request, "agent_journal.html", {
        "entries": entries, "actions": TRAIL_ACTIONS, "action": chosen, "ref": reference, "total": int(body.get("total") or 0),
        "errors": [], "field_errors": {}, **_pager(JOURNAL, filters, number, pages)})


# ---- the staff directory (« Équipe ») --------------------------------------------------------------

TEAM = "/agents/equipe"
ROLES = {"agent": "Agent", "admin": "Administrateur"}
TEAM_DONE = {"invite": "L'invitation est envoyée : l'agent choisira son mot de passe depuis l'email reçu.",
             "desactive": "Le compte est désactivé : il ne peut plus se connecter ; son nom reste dans les historiques.",
             "reactive": "Le compte est réactivé."}
NAME_MISSING = "Saisissez le prénom et le nom de l'agent."
EMAIL_INVALID = "Saisissez une adresse email valide, par exemple marie.dupont@ville.fr."


async def _team_page(request: Request, agent: CurrentAgent, services: ServiceClient, *, done: str | None = None,
                     problem: str | None = None, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                     status_code: int = 200) -> HTMLResponse:
    reply = await services.get("identity", "/staff", agent.access_token)
    members = [m for m in _checked(request, reply).get("items", []) if isinstance(m, dict) and _ID.match(str(m.get("account_id", "")))]
    return _page(request, "agent_team.html", {
        "members": members, "roles": ROLES, "is_admin": agent.role == "admin", "me": agent.account_id,
        "done": TEAM_DONE.get(done or ""), "problem": problem, "errors": _ordered(errors or {}),
        "field_errors": errors or {}, "values": values or {}}, status_code=status_code)


@router.get(TEAM, response_class=HTMLResponse, summary="Back-office: the agents, and for admins invite / deactivate / reactivate")
async def team(request: Request, agent: CurrentAgent, services: Services, fait: str = "") -> HTMLResponse:
    return await _team_page(request, agent, services, done=fait)


@router.post(TEAM + "/inviter", response_class=HTMLResponse, summary="Back-office: invite an agent (admins)")
async def invite(request: Request, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    name, email, role = " ".join(form.get("display_name", "").split()), form.get("email", "").strip(), form.get("role", "agent")
    values = {"display_name": name, "email": email, "role": role}
    errors: dict[str, str] = {}
    if not name or len(name) > 100:
        errors["nom-agent"] = NAME_MISSING
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) or len(email) > 254:
        errors["email-agent"] = EMAIL_INVALID
    if role not in ROLES:
        raise BadForm()
    if errors:
        return await _team_page(request, agent, services, errors=errors, values=values, status_code=422)
    reply = await services.send("POST", "identity", "/admin/accounts", agent.access_token,
                                json={"email": email, "display_name": name, "role": role})
    if reply.status == 201:
        return RedirectResponse(f"{TEAM}?fait=invite", status_code=303)
    if reply.status in (403, 409, 422):  # not an admin, an account already there, an address identity refuses
        field = "email-agent" if reply.status != 403 else "nom-agent"
        message = _detail(reply, "Seul un administrateur peut inviter un agent.")
        return await _team_page(request, agent, services, errors={field: message}, values=values, status_code=reply.status)
    _checked(request, reply)
    raise Unavailable()


@router.post(TEAM + "/{account_id}/{action}", response_class=HTMLResponse, summary="Back-office: deactivate or reactivate an agent (admins)")
async def switch_member(request: Request, account_id: str, action: str, form: ProtectedForm, agent: CurrentAgent,
                        services: Services) -> Response:
    if action not in ("desactiver", "reactiver"):
        raise NotFound()
    path = f"/admin/staff/{_valid_id(account_id)}/{'deactivate' if action == 'desactiver' else 'reactivate'}"
    reply = await services.send("POST", "identity", path, agent.access_token)
    if reply.status == 200:
        return RedirectResponse(f"{TEAM}?fait={'desactive' if action == 'desactiver' else 'reactive'}", status_code=303)
    if reply.status in (403, 404, 422):
        return await _team_page(request, agent, services, problem=_detail(reply, "Seul un administrateur peut le faire."),
                                status_code=reply.status)
    _checked(request, reply)
    raise Unavailable()


# ---- exports (CSV for French spreadsheet software: UTF-8 with BOM, « ; ») --------------------------

async def _relayed_csv(request: Request, reply: Any, fallback_name: str) -> Response:
    if reply is None or reply.status_code >= 500:
        raise Unavailable()
    if reply.status_code == 401:
        session.end(request)
        raise session.LoginRequired(session.login_location(request))
    if reply.status_code == 404:
        raise NotFound("Cette école n'existe pas.")
    if reply.status_code != 200:
        raise NotFound()
    disposition = reply.headers.get("content-disposition") or f'attachment; filename="{fallback_name}"'
    return Response(reply.content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition, **NO_STORE, "X-Content-Type-Options": "nosniff"})


@router.get("/agents/exports/dossiers.csv", summary="Back-office: the files of a status as CSV")
async def export_dossiers(request: Request, agent: CurrentAgent, services: Services, statut: str = "all") -> Response:
    status = statut if statut in QUEUE_STATUSES_ALL else "all"
    reply = await services.fetch("household", "/review/export.csv", agent.access_token, params={"status": status})
    return await _relayed_csv(request, reply, f"dossiers-{status}.csv")


@router.get("/agents/exports/inscriptions.csv", summary="Back-office: a school's enrolments for a year as CSV")
async def export_enrolments(request: Request, agent: CurrentAgent, services: Services, ecole: str = "", annee: str = "") -> Response:
    school, year = _valid_id(ecole), annee.strip()
    reply = await services.fetch("enrolment", f"/schools/{school}/enrolments.csv", agent.access_token,
                                 params={"school_year": year} if _YEAR.match(year) else None)
    return await _relayed_csv(request, reply, f"inscriptions-{school}.csv")


# ---- the sector map ------------------------------------------------------------------------------

async def _sector_map_page(
    request: Request, agent: CurrentAgent, services: ServiceClient, *, report: dict[str, Any] | None = None,
    applied: str | None = None, problem: str | None = None, errors: dict[str, str] | None = None, status_code: int = 200,
) -> HTMLResponse:
    current_reply = await services.get("enrolment", "/sector-map", agent.access_token)
    current = None if current_reply.status == 404 else _checked(request, current_reply)
    if current is not None:
        segments = current.get("segments")
        current = {k: current.get(k) for k in ("version", "source_name", "report")}
        current["segments"] = len(segments) if isinstance(segments, list) else 0
        current["applied_label"] = numeric_datetime(current_reply.body.get("applied_at"))
    context = {"current": current, "report": report, "applied": applied, "problem": problem, "kinds": PROBLEM_KINDS,
               "errors": _ordered(errors or {}), "field_errors": errors or {}}
    return _page(request, "agent_sector_map.html", context, status_code=status_code)


@router.get(SECTOR_MAP, response_class=HTMLResponse, summary="Back-office: the current sector map and the CSV upload form")
async def sector_map(request: Request, agent: CurrentAgent, services: Services, appliquee: str = "") -> HTMLResponse:
    return await _sector_map_page(request, agent, services, applied=appliquee if _ID.match(appliquee) else None)


async def _csv_upload(request: Request) -> tuple[str, bytes | None]:
    """The uploaded file's name and bytes (None when no file was chosen), once the CSRF pair has
    been checked: ``ProtectedForm`` reads url-encoded forms only, this one is multipart."""
    try:
        async with request.form(max_files=1, max_fields=4, max_part_size=64 * 1024) as form:
            csrf.verify(request, str(form.get(csrf.FIELD_NAME) or ""))
            upload = form.get("fichier")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return "", None
            return upload.filename, await upload.read(MAX_CSV_BYTES + 1)
    except MultiPartException as exc:
        raise BadForm() from exc


@router.post(SECTOR_MAP, response_class=HTMLResponse, summary="Back-office: import a sector-map CSV and show its report")
async def sector_map_import(request: Request, upload: Annotated[tuple[str, bytes | None], Depends(_csv_upload)],
                            agent: CurrentAgent, services: Services) -> HTMLResponse:
    name, data = upload
    error = CSV_MISSING if not data or not data.strip() else CSV_TOO_LARGE if len(data) > MAX_CSV_BYTES else None
    if error is not None:
        return await _sector_map_page(request, agent, services, errors={"fichier-carte": error}, status_code=422)
    assert data is not None
    reply = await services.send("POST", "enrolment", "/sector-map/imports", agent.access_token, content=data,
                                content_type="text/csv", params={"name": name[:120]})
    if reply.status == 422:
        return await _sector_map_page(request, agent, services, errors={"fichier-carte": _detail(reply)}, status_code=422)
    report = _checked(request, reply)
    return await _sector_map_page(request, agent, services, report={**report, "source_name": name},
                                  status_code=200 if report.get("can_apply") else 422)


@router.post(SECTOR_MAP + "/appliquer", response_class=HTMLResponse, summary="Back-office: make an imported map the current one")
async def sector_map_apply(request: Request, form: ProtectedForm, agent: CurrentAgent, services: Services) -> Response:
    import_id = _valid_id(form.get("import_id", ""))
    reply = await services.send("POST", "enrolment", f"/sector-map/imports/{import_id}/apply", agent.access_token)
    if reply.status == 200:
        return RedirectResponse(f"{SECTOR_MAP}?{urlencode({'appliquee': import_id})}", status_code=303)
    if reply.status in (404, 409):  # an unknown version, or one whose report has errors
        report = reply.body.get("report")
        return await _sector_map_page(request, agent, services, problem=_detail(reply), status_code=reply.status,
                                      report={**report, "import_id": None} if isinstance(report, dict) else None)
    _checked(request, reply)
    raise Unavailable()
