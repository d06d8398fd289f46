"""School enrolment pages (Inscription scolaire): children, level, sector school, out-of-sector request, certificate.

Thin like ``account.py``: the enrolment service computes levels, sectors and statuses; this module
reads them (``GET /enrolments/eligible``, ``/enrolments``, ``/schools``), turns them into what the
template shows per child, and relays the family's two actions (enrol, ask for a dérogation) and
the certificate download.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web import flash, session
from services.web.account import STAFF_HOME
from services.web.clients import ServiceClient, ServiceReply, service_client
from services.web.dates import french_date
from services.web.csrf import ProtectedForm
from services.web.errors import BadForm, PageError
from services.web.pages import remember_file_reference, render
from services.web.session import CurrentUser

router = APIRouter()
Services = Annotated[ServiceClient, Depends(service_client)]

PAGE = "/inscription-scolaire"
CONFIRM = PAGE + "/confirmer"
NO_STORE = {"Cache-Control": "no-store"}

# The enrolment service's reason categories (its DerogationBody contract), in the order offered.
REASONS: dict[str, str] = {
    "travail_des_parents": "Travail des parents",
    "mode_de_garde": "Mode de garde",
    "fratrie": "Frère ou sœur dans l'école demandée",
    "medical": "Raison médicale",
    "autre": "Autre motif",
}
REASON_TEXT_MAX = 2000
# Enrolling takes a seat and writes the enrolment with its events; under load (the certificates
# rendered on the same 2 cores) that went past the client's default 5 s, which would report a
# failure for an enrolment that was in fact recorded.
ACTION_TIMEOUT_S = 30.0
DEROGATION_STATES = {
    "pending": "en cours d'examen par le Service Scolaire et Périscolaire",
    "accepted": "acceptée",
    "refused": "refusée",
}
# The certificate's name as the enrolment service builds it; anything else is not put in a header.
_CERTIFICATE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,120}\.pdf$")

SCHOOL_MISSING = "Choisissez l'école souhaitée."
SCHOOL_UNKNOWN = "Choisissez l'école souhaitée dans la liste."
REASON_MISSING = "Choisissez le motif de votre demande."
TEXT_MISSING = "Expliquez votre demande de dérogation en quelques mots."
TEXT_TOO_LONG = f"Votre explication doit faire {REASON_TEXT_MAX} caractères au plus."


class EnrolmentUnavailable(PageError):
    status_code = 503
    title = "Service momentanément indisponible"
    message = ("Le service des inscriptions scolaires ne répond pas pour le moment. Votre demande n'a pas été "
               "prise en compte : réessayez dans quelques minutes.")


class ActionUnconfirmed(PageError):
    status_code = 503
    title = "Service momentanément indisponible"
    message = ("Le service des inscriptions scolaires n'a pas répondu à temps : votre demande a peut-être été "
               "enregistrée. Rouvrez la page Inscription scolaire pour vérifier avant de la refaire.")


class EnrolmentNotFound(PageError):
    status_code = 404
    title = "Inscription introuvable"
    message = "Cette inscription n'existe pas ou ne concerne pas vos enfants. Retournez à la page Inscription scolaire."


class CertificateUnavailable(PageError):
    status_code = 503
    title = "Certificat momentanément indisponible"
    message = ("Le certificat d'inscription ne peut pas être téléchargé pour le moment. "
               "Réessayez dans quelques minutes depuis la page Inscription scolaire.")


@dataclass
class FormProblem:
    """The form that was posted and refused: which one (a child's or an enrolment's), its field
    errors in display order, and the values to write back."""

    key: str
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _checked(request: Request, reply: ServiceReply, unavailable: type[PageError] = EnrolmentUnavailable) -> ServiceReply:
    if reply.status == 401:
        raise session.log_in_again(request)
    if reply.status is None or reply.status >= 500:
        raise unavailable()
    return reply


EnrolmentData = tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, Any]]]


def asked_year(value: str | None) -> str | None:
    """The school year a page asks for (``?annee=2026`` or a form's « 2026-2027 »): its first
    year, or None for the enrolment service's default (the next rentrée)."""
    match = re.match(r"^\s*(\d{4})(?:\s*-\s*\d{4})?\s*$", value or "")
    return match.group(1) if match else None


async def _enrolment_data(request: Request, services: ServiceClient, token: str, year: str | None = None) -> EnrolmentData:
    """Eligibility (for ``year``, else the service's default), my enrolments and the schools, read at once."""
    eligible, mine, schools = await asyncio.gather(
        services.get("enrolment", "/enrolments/eligible", token, params={"school_year": year} if year else None),
        services.get("enrolment", "/enrolments", token),
        services.get("enrolment", "/schools", token),
    )
    for reply in (eligible, mine, schools):
        _checked(request, reply)
    if year and eligible.status == 422:  # a year no longer open (an old link): the default one
        return await _enrolment_data(request, services, token)
    if eligible.status != 200 or mine.status != 200 or schools.status != 200:
        raise EnrolmentUnavailable()
    remember_file_reference(request, eligible.body.get("dossier_reference"))
    enrolments = [e for e in mine.body.get("enrolments", []) if isinstance(e, dict)]
    by_id = {s["id"]: s for s in schools.body.get("items", []) if isinstance(s, dict) and "id" in s}
    return eligible.body, enrolments, by_id


def _derogation_view(derogation: dict[str, Any] | None, schools: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if not derogation:
        return None
    school = schools.get(str(derogation.get("requested_school_id")), {})
    return {
        "status": derogation.get("status"),
        "state": DEROGATION_STATES.get(str(derogation.get("status")), str(derogation.get("status"))),
        "school": school.get("name", derogation.get("requested_school_id")),
        "reason": REASONS.get(str(derogation.get("reason_category")), derogation.get("reason_label")),
        "reason_text": derogation.get("reason_text"),
        "decision_reason": derogation.get("decision_reason"),
    }


def _enrolment_view(e: dict[str, Any], schools: dict[str, dict[str, Any]]) -> dict[str, Any]:
    derogation = _derogation_view(e.get("derogation"), schools)
    level = e.get("level")
    # Schools a dérogation may ask for: they teach the child's level and are not where the child
    # already is (the service refuses those too, with a French reason).
    excluded = {e.get("sector_school_id"), e.get("school_id") if e.get("status") == "confirmed" else None}
    choices = sorted(
        (s for s in schools.values() if level in s.get("levels", []) and s["id"] not in excluded),
        key=lambda s: str(s.get("name", "")),
    )
    return {
        "id": e["id"],
        "reference": e.get("reference"),
        "status": e.get("status"),
        "status_label": e.get("status_label"),
        "confirmed": e.get("status") == "confirmed",
        "certificate_ready": bool(e.get("certificate_available")),
        "school": schools.get(str(e.get("school_id")), {}).get("name"),
        "refusal_reason": e.get("refusal_reason"),
        "derogation": derogation,
        "can_ask_derogation": e.get("status") != "refused" and (derogation or {}).get("status") != "pending" and bool(choices),
        "derogation_choices": choices,
    }


def _children(eligibility: dict[str, Any], enrolments: list[dict[str, Any]],
              schools: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    year = eligibility.get("school_year")
    this_year = [e for e in enrolments if e.get("school_year") == year]
    children = []
    for child in eligibility.get("children", []):
        current = child.get("enrolment") or {}
        enrolment = next((e for e in this_year if e.get("id") == current.get("id")), None)
        # A refused request frees the child for a new one; the family still sees why it was refused.
        refused = next((e for e in this_year
                        if e.get("child_id") == child.get("child_id") and e.get("status") == "refused"), None)
        children.append({
            "id": child.get("child_id"),
            "first_name": child.get("first_name", ""),
            "last_name": child.get("last_name", ""),
            "birth_date": french_date(child.get("birth_date")),
            "eligible": bool(child.get("eligible")),
            "message": child.get("message"),
            "level_label": child.get("level_label"),
            "sector_school": child.get("sector_school"),
            "address_on_map": bool(child.get("address_on_map")),
            "can_enrol": bool(child.get("can_enrol")),
            "enrolment": _enrolment_view(enrolment, schools) if enrolment else None,
            "refused": _enrolment_view(refused, schools) if refused and not enrolment else None,
        })
    return children


def done_line(action: str, enrolment: dict[str, Any]) -> str:
    """The notice after a successful post (post/redirect/get), shown once by the next page."""
    name = enrolment.get("child_first_name") or "votre enfant"
    if action == "inscription":
        state = enrolment.get("status_label")
        title = str(enrolment.get("school_year_title") or "")
        for_year = f", pour la {title}" if title.startswith("rentrée") else f", pour l'{title}" if title else ""
        return f"La demande d'inscription de {name} est enregistrée" + (f" : {state}" if state else "") + f"{for_year}."
    return (f"La demande de dérogation pour {name} est transmise au Service Scolaire et Périscolaire : "
            "vous serez averti·e par email de sa décision.")


def year_context(eligibility: dict[str, Any]) -> dict[str, Any]:
    """Which school year the page is about, said in words, and the others a family may choose
    (the year in progress for a family moving in, the next rentrée)."""
    shown = eligibility.get("school_year_start")
    return {
        "school_year": eligibility.get("school_year", ""),
        "school_year_start": shown or "",
        "school_year_title": eligibility.get("school_year_title") or f"année scolaire {eligibility.get('school_year', '')}",
        "school_years": [{**y, "current": y.get("school_year_start") == shown, "href": f"{PAGE}?annee={y.get('school_year_start')}"}
                         for y in eligibility.get("school_years", []) if isinstance(y, dict)],
        "address_message": eligibility.get("address_message"),
        "address_in_town": eligibility.get("address_in_town") is not False,
    }


async def _page(request: Request, user: session.Session, services: ServiceClient, *, year: str | None = None,
                problem: FormProblem | None = None, notice: str | None = None, status_code: int = 200) -> Response:
    if user.is_staff:  # agents have no children: their enrolment pages are in the back-office
        return RedirectResponse(STAFF_HOME, status_code=303)
    eligibility, enrolments, schools = await _enrolment_data(request, services, user.access_token, year)
    children = _children(eligibility, enrolments, schools)
    if problem is not None and not _form_shown(problem.key, children):
        # No field to put the errors next to: they become the page's notice.
        notice, problem = " ".join(problem.errors.values()), None
    errors = [{"id": fid, "message": message} for fid, message in problem.errors.items()] if problem else []
    context = {
        "unlocked": bool(eligibility.get("unlocked")),
        "message": eligibility.get("message"),
        **year_context(eligibility),
        "children": children,
        "reasons": REASONS,
        "problem": problem,
        "errors": errors,
        "notice": notice,
    }
    return render(request, "schooling_page.html", context, status_code=status_code, headers=NO_STORE)


REFUSED_FORM = "inscription-scolaire"


def _refused(request: Request, location: str, problem: FormProblem, status_code: int) -> Response | None:
    """Post/redirect/get for a refused enrolment or dérogation: its errors and what was typed go
    back to the page once. A text far past its limit travels cut just past it (still refused)."""
    cut = {**problem.values, "reason_text": problem.values.get("reason_text", "")[:REASON_TEXT_MAX + 1]}
    for values in (problem.values, cut):
        fields = {"key": problem.key, "errors": problem.errors, "values": values}
        redirect = flash.refuse(request, location, REFUSED_FORM, status_code, fields)
        if redirect is not None:
            return redirect
    return None


def _refusal(request: Request) -> tuple[FormProblem | None, int]:
    refused = flash.refusal(request, REFUSED_FORM)
    if refused is None:
        return None, 200
    fields = refused.fields

    def strings(name: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in dict(fields.get(name) or {}).items()}

    return FormProblem(str(fields.get("key") or ""), strings("errors"), strings("values")), refused.status_code


@router.get(PAGE, response_class=HTMLResponse, summary="School enrolment: my children, their level and sector school")
async def schooling_page(request: Request, user: CurrentUser, services: Services, annee: str = "") -> Response:
    problem, status_code = _refusal(request)
    return await _page(request, user, services, year=asked_year(annee), problem=problem, status_code=status_code)


@router.get(CONFIRM, response_class=HTMLResponse, summary="The summary of an enrolment, before confirming it")
async def confirmation_page(request: Request, user: CurrentUser, services: Services, enfant: str = "",
                            annee: str = "") -> Response:
    if user.is_staff:
        return RedirectResponse(STAFF_HOME, status_code=303)
    eligibility, enrolments, schools = await _enrolment_data(request, services, user.access_token, asked_year(annee))
    child = next((c for c in _children(eligibility, enrolments, schools) if c["id"] == enfant), None)
    if child is None or not child["can_enrol"]:
        # Enrolled meanwhile (another tab), or not a child of this file: the page says where it stands.
        return RedirectResponse(f"{PAGE}#enfant-{enfant}" if child else PAGE, status_code=303)
    context = {"child": child, **year_context(eligibility)}
    return render(request, "schooling_confirm.html", context, headers=NO_STORE)


@router.post(PAGE, response_class=HTMLResponse, summary="Enrol a child in the sector school")
async def enrol(request: Request, form: ProtectedForm, user: CurrentUser, services: Services) -> Response:
    child_id, school_year = form.get("child_id", "").strip(), form.get("school_year", "").strip()
    if not child_id or len(child_id) > 64 or not school_year or len(school_year) > 12:
        raise BadForm()
    reply = _checked(request, await services.send(
        "POST", "enrolment", "/enrolments", user.access_token, json={"child_id": child_id, "school_year": school_year},
        timeout=ACTION_TIMEOUT_S), ActionUnconfirmed)
    year = asked_year(school_year)
    if reply.status == 201:
        return flash.redirect(request, f"{PAGE}{f'?annee={year}' if year else ''}#enfant-{child_id}", done_line("inscription", reply.body))
    detail = str(reply.body.get("detail") or "Cette inscription n'a pas pu être enregistrée.")
    problem = FormProblem(child_id, {f"inscrire-{child_id}": detail})
    location = f"{PAGE}{f'?annee={year}' if year else ''}#enfant-{child_id}"
    return _refused(request, location, problem, reply.status or 503) or await _page(
        request, user, services, year=year, problem=problem, status_code=reply.status or 503)


def _form_shown(key: str, children: list[dict[str, Any]]) -> bool:
    """Whether the page still shows the form ``key`` names (a child's enrol form, an enrolment's
    dérogation form): another tab may have enrolled the child or sent the request meanwhile."""
    for child in children:
        if child["id"] == key and child["can_enrol"]:
            return True
        enrolment = child["enrolment"] or {}
        if enrolment.get("id") == key and enrolment.get("can_ask_derogation"):
            return True
    return False


def _derogation_errors(enrolment_id: str, values: dict[str, str], school_ids: set[str] | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not values["requested_school_id"]:
        errors[f"ecole-{enrolment_id}"] = SCHOOL_MISSING
    elif school_ids is not None and values["requested_school_id"] not in school_ids:
        errors[f"ecole-{enrolment_id}"] = SCHOOL_UNKNOWN
    if values["reason_category"] not in REASONS:
        errors[f"motif-{enrolment_id}"] = REASON_MISSING
    if not values["reason_text"]:
        errors[f"precisions-{enrolment_id}"] = TEXT_MISSING
    elif len(values["reason_text"]) > REASON_TEXT_MAX:
        errors[f"precisions-{enrolment_id}"] = TEXT_TOO_LONG
    return errors


@router.post(PAGE + "/{enrolment_id}/derogation", response_class=HTMLResponse,
             summary="Ask for another school than the sector one (dérogation)")
async def ask_derogation(enrolment_id: str, request: Request, form: ProtectedForm, user: CurrentUser,
                         services: Services) -> Response:
    values = {name: form.get(name, "").strip() for name in ("requested_school_id", "reason_category", "reason_text")}
    schools = _checked(request, await services.get("enrolment", "/schools", user.access_token))
    known = {s.get("id") for s in schools.body.get("items", []) if isinstance(s, dict)} if schools.status == 200 else None
    errors = _derogation_errors(enrolment_id, values, known)
    if errors:
        problem = FormProblem(enrolment_id, errors, values)
        return _refused(request, PAGE, problem, 422) or await _page(request, user, services, problem=problem, status_code=422)
    reply = _checked(request, await services.send(
        "POST", "enrolment", f"/enrolments/{enrolment_id}/derogation", user.access_token, json=values,
        timeout=ACTION_TIMEOUT_S), ActionUnconfirmed)
    if reply.status == 200:
        year = asked_year(str(reply.body.get("school_year", "")))
        return flash.redirect(request, f"{PAGE}{f'?annee={year}' if year else ''}#enfant-{reply.body.get('child_id', '')}",
                              done_line("derogation", reply.body))
    if reply.status == 404:
        raise EnrolmentNotFound()
    detail = str(reply.body.get("detail") or "Cette demande de dérogation n'a pas pu être enregistrée.")
    # The service names no field: its only reason about the text asks to explain, the others
    # (same school, level not taught, a request already pending) are about the school asked for.
    field_id = f"precisions-{enrolment_id}" if "expliquez" in detail.lower() else f"ecole-{enrolment_id}"
    problem = FormProblem(enrolment_id, {field_id: detail}, values)
    return _refused(request, PAGE, problem, reply.status or 503) or await _page(
        request, user, services, problem=problem, status_code=reply.status or 503)


@router.get(PAGE + "/{enrolment_id}/certificat", summary="Download the certificat d'inscription (PDF)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def certificate(enrolment_id: str, request: Request, user: CurrentUser, services: Services) -> Response:
    link = await services.get("enrolment", f"/enrolments/{enrolment_id}/certificate", user.access_token)
    if link.status == 401:
        raise session.log_in_again(request)
    if link.status == 404:
        raise EnrolmentNotFound()
    if link.status == 409:  # not confirmed, or the PDF is still being written
        context = {"message": str(link.body.get("detail") or "Le certificat d'inscription n'est pas encore prêt."),
                   "retry": request.url.path}
        return render(request, "schooling_certificate_pending.html", context, status_code=409,
                      headers={**NO_STORE, "Retry-After": "10"})
    url = link.body.get("url")
    if link.status != 200 or not isinstance(url, str):
        raise CertificateUnavailable()
    pdf = await services.fetch_url(url)
    if pdf is None or pdf.status_code != 200 or not pdf.content.startswith(b"%PDF"):
        raise CertificateUnavailable()
    filename = str(link.body.get("filename", ""))
    if not _CERTIFICATE_NAME.match(filename):
        filename = "certificat-inscription.pdf"
    return Response(pdf.content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })
