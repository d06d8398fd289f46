"""The public certificate check (« Vérifier un certificat d'inscription »): a school director types
the code printed on a certificat d'inscription and reads back the school, the level, the school
year and the child's initials, nothing more. No login; the gateway rate limits ``/verifier/``.

Thin: the enrolment service decides whether a code is a current certificate (``GET
/verifications/{code}``); this page shows its answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.clients import ServiceClient, service_client
from services.web.errors import PageError
from services.web.pages import render

router = APIRouter()
Services = Annotated[ServiceClient, Depends(service_client)]

PAGE = "/verifier"
# Not a page anyone should find again by the browser's history or a cache: a code is a secret.
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


class VerificationUnavailable(PageError):
    status_code = 503
    title = "Vérification momentanément indisponible"
    message = "La vérification des certificats ne répond pas pour le moment : réessayez dans quelques minutes."


@router.get(PAGE, response_class=HTMLResponse, summary="The form where a school director types a certificate's code")
async def verification_form(request: Request, code: Annotated[str, Query(max_length=40)] = "") -> Response:
    if code.strip():
        return RedirectResponse(f"{PAGE}/{code.strip()}", status_code=303)
    return render(request, "verification.html", {"code": "", "result": None, "problem": None}, headers=HEADERS)


@router.get(PAGE + "/{code}", response_class=HTMLResponse,
            summary="Whether a printed certificat d'inscription is genuine: school, level, year, child's initials")
async def verification(code: str, request: Request, services: Services) -> Response:
    typed = code[:40]
    reply = await services.get("enrolment", f"/verifications/{typed}", "")
    if reply.status == 200:
        return render(request, "verification.html", {"code": reply.body.get("code", typed), "result": reply.body, "problem": None},
                      headers=HEADERS)
    if reply.status in (404, 422):
        problem = str(reply.body.get("detail") or "Aucun certificat d'inscription en vigueur ne correspond à ce code.")
        return render(request, "verification.html", {"code": typed, "result": None, "problem": problem},
                      status_code=404, headers=HEADERS)
    raise VerificationUnavailable()
