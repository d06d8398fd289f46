"""Rendering pages: the templates, the CSRF cookie, and the French error pages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from services.web import csrf, flash, session
from services.web.errors import PageError

FAMILY_LINKS = (
    ("/mon-espace", "Mon espace"),
    ("/dossier", "Mon dossier"),
    ("/entourage", "Mon entourage"),
    ("/pieces-justificatives", "Mes pièces justificatives"),
    ("/mon-compte", "Mon compte"),
)
STAFF_LINKS = (
    ("/agents/dossiers", "Dossiers à instruire"),
    ("/agents/inscriptions", "Inscriptions"),
    ("/agents/tableau-de-bord", "Tableau de bord"),
    ("/agents/carte-scolaire", "Carte scolaire"),
    ("/agents/journal", "Journal des décisions"),
    ("/agents/motifs-de-correction", "Motifs de correction"),
    ("/agents/equipe", "Équipe"),
)

# The rule identity applies to a new password, as every password form states it.
PASSWORD_RULE = ("12 caractères minimum, sans votre nom ni celui de la ville. "
                 "Une phrase de plusieurs mots sans rapport entre eux est idéale.")

# select_autoescape: every .html template escapes what it prints.
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    def csrf_field() -> Markup:
        # Called by templates that render a form: only those pages set the CSRF cookie.
        return Markup('<input type="hidden" name="{}" value="{}">').format(
            csrf.FIELD_NAME, escape(csrf.form_token(request))
        )

    response = templates.TemplateResponse(
        request,
        name,
        {"town_name": request.app.state.settings.town_name, "csrf_field": csrf_field,
         "navigation": navigation(request), "signed_in": signed_in(request), "flash_notice": flash.take(request),
         "file_reference": getattr(request.state, "file_reference", None),
         "password_rule": PASSWORD_RULE,
         **(context or {})},
        status_code=status_code,
        headers=dict(headers or {}),
    )
    if getattr(request.state, "csrf_token", None) is not None:
        csrf.set_cookie(request, response)
        # A page with a form holds a per-browser token (and, here, a link's jeton): never cached.
        response.headers["Cache-Control"] = "no-store"
    flash.consume(request, response)  # a notice read by this page is shown once
    return response


def remember_file_reference(request: Request, reference: object) -> None:
    """The family's file reference, read from the answer the page already asked for (household's
    file, or enrolment's eligibility), shown in the header of the page rendered for this request."""
    if isinstance(reference, str) and reference:
        request.state.file_reference = reference


def signed_in(request: Request) -> bool:
    """Whether the header offers « Se déconnecter » (a session this request read or started)."""
    if hasattr(request.state, "session"):
        return request.state.session is not None
    return session.read(request) is not None


def navigation(request: Request) -> list[dict[str, str]]:
    """The header's links for whoever is logged in (nothing for a visitor); ``current`` marks
    the link of the page shown, for aria-current."""
    user = getattr(request.state, "session", None) or session.read(request)
    if user is None:
        return []
    links = STAFF_LINKS if user.is_staff else FAMILY_LINKS
    here = request.url.path
    return [{"href": href, "label": label, "current": "page" if here == href else ""} for href, label in links]


async def page_error(request: Request, exc: Exception) -> HTMLResponse:
    """Exception handler: a PageError becomes a French page with its status."""
    assert isinstance(exc, PageError)
    return render(
        request, "error.html", {"title": exc.title, "message": exc.message}, status_code=exc.status_code
    )
