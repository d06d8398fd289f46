"""CSRF protection for every page form: a signed double-submit token.

- The browser holds a random value in a cookie that scripts cannot read (HttpOnly) and that
  other sites' requests never carry (SameSite=Strict; Secure outside a local run).
- Each form carries, in a hidden field, the HMAC of that value under the web service's
  ``secret_key``. A POST is accepted only when the field is the HMAC of the cookie it came with.

Why signed and not a plain copy: an attacker able to plant a cookie (a sibling subdomain, a
man-in-the-middle on plain HTTP) still cannot forge the matching field without the key. Why a
cookie and not a server-side session: the pages stay stateless, so any replica can check a post.

Use: render forms with ``pages.render`` (the template calls ``csrf_field()``), and take the posted
fields through ``ProtectedForm`` (or a ``protected_form_of(...)`` with a longer form's limits),
which rejects the request before the route runs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Response

from services.web.errors import PageError
from services.web.forms import MAX_FIELDS, MAX_FORM_BYTES, read_form

COOKIE_NAME = "ecp_csrf"
# Browsers only accept a "__Host-" cookie when it is Secure, host-only and on path "/": it then
# cannot be overwritten from a subdomain. Used wherever the cookie is Secure.
SECURE_COOKIE_NAME = "__Host-ecp_csrf"
FIELD_NAME = "csrf_token"
_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
_PURPOSE = b"ecp-web-csrf:"  # domain separation: the same key may sign other things later


class CsrfRejected(PageError):
    status_code = 403
    title = "Formulaire expiré"
    message = (
        "Ce formulaire n'a pas pu être vérifié : il a peut-être expiré, ou il a été ouvert dans "
        "un autre onglet. Revenez à la page précédente, rechargez-la, puis réessayez."
    )


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.environment != "local")


def _cookie_name(request: Request) -> str:
    return SECURE_COOKIE_NAME if _secure(request) else COOKIE_NAME


def _sign(value: str, key: str) -> str:
    return hmac.new(key.encode(), _PURPOSE + value.encode(), hashlib.sha256).hexdigest()


def _cookie_value(request: Request) -> str | None:
    value = request.cookies.get(_cookie_name(request))
    return value if value is not None and _VALUE.match(value) else None


def form_token(request: Request) -> str:
    """The hidden field's value for forms rendered in this response.

    Reuses the browser's cookie when it sent one, so pages open in several tabs stay valid; else
    draws a new value that ``set_cookie`` then sends. A link followed from a webmail is a
    cross-site navigation, which carries no SameSite=Strict cookie: a new value is set then, and
    the form rendered with it matches.
    """
    cached: str | None = getattr(request.state, "csrf_token", None)
    if cached is not None:
        return cached
    value = _cookie_value(request)
    if value is None:
        value = secrets.token_urlsafe(32)
        request.state.csrf_new_cookie = value
    token = _sign(value, request.app.state.settings.secret_key)
    request.state.csrf_token = token
    return token


def set_cookie(request: Request, response: Response) -> None:
    """Sends the cookie if ``form_token`` drew a new value for this response."""
    value: str | None = getattr(request.state, "csrf_new_cookie", None)
    if value is None:
        return
    # A session cookie (no Max-Age): a form left open for days fails with a page saying to reload.
    response.set_cookie(
        _cookie_name(request), value, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def verify(request: Request, submitted: str | None) -> None:
    """Raises ``CsrfRejected`` unless ``submitted`` is the HMAC of the request's cookie."""
    value = _cookie_value(request)
    if value is None or not submitted:
        raise CsrfRejected()
    if not hmac.compare_digest(_sign(value, request.app.state.settings.secret_key), submitted):
        raise CsrfRejected()


def protected_form_of(*, max_fields: int = MAX_FIELDS, max_bytes: int = MAX_FORM_BYTES) -> Callable[[Request], Awaitable[dict[str, str]]]:
    """A dependency for page POSTs: the posted fields (within these limits), once the CSRF pair
    has been checked."""

    async def protected_form(request: Request) -> dict[str, str]:
        form = await read_form(request, max_fields=max_fields, max_bytes=max_bytes)
        verify(request, form.get(FIELD_NAME))
        return form

    return protected_form


ProtectedForm = Annotated[dict[str, str], Depends(protected_form_of())]
