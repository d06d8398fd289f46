"""Rendering pages: the templates, the CSRF cookie, and the French error pages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from services.web import csrf
from services.web.errors import PageError

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
        {"town_name": request.app.state.settings.town_name, "csrf_field": csrf_field, **(context or {})},
        status_code=status_code,
        headers=dict(headers or {}),
    )
    if getattr(request.state, "csrf_token", None) is not None:
        csrf.set_cookie(request, response)
        # A page with a form holds a per-browser token (and, here, a link's jeton): never cached.
        response.headers["Cache-Control"] = "no-store"
    return response


async def page_error(request: Request, exc: Exception) -> HTMLResponse:
    """Exception handler: a PageError becomes a French page with its status."""
    assert isinstance(exc, PageError)
    return render(
        request, "error.html", {"title": exc.title, "message": exc.message}, status_code=exc.status_code
    )
