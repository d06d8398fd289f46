"""Notices shown once, after a post answered with a redirect (post/redirect/get).

A post that changed something answers 303 to the page to show next, with the notice in a short
cookie scoped to that page's path; the page reads it and clears it in the same response. A
refresh, or Back to the page later, shows the page without the notice: it said its news once.

The cookie is encrypted and authenticated (Fernet, a key of its own derived from ``secret_key``),
lives two minutes at most, and carries the notice's tone and its lines of French. ``pages.render``
takes it and ``base.html`` shows it first in the page (``role="status"``), whatever the page.

The same cookie carries what a page needs besides (``data``): a form refused for its input
(``refuse``/``refusal``: its errors and what was typed, never a password), or a form typed and not
saved yet; with ``keep`` that data survives a refresh (the notice never does).

The JSON is compressed before it is encrypted, and a value past one cookie's size is split over
up to ``MAX_CHUNKS`` cookies (``ecp_avis``, ``ecp_avis_2``…): a declaration of twelve children
with long names still travels with its redirect. ``fits`` says whether a notice fits at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from services.web import session

COOKIE_NAME = "ecp_avis"
MAX_AGE_S = 120
CHUNK_BYTES = 3800  # browsers keep 4 kB per cookie, its name and attributes included
# The gateway takes request header lines up to 16 kB (large_client_header_buffers): three chunks
# leave room for the session and CSRF cookies in the same Cookie header.
MAX_CHUNKS = 3
_PURPOSE = b"ecp-web-notice:"


def chunk_names() -> list[str]:
    """The cookies one notice may span, in order."""
    return [COOKIE_NAME] + [f"{COOKIE_NAME}_{n}" for n in range(2, MAX_CHUNKS + 1)]


def _fernet(request: Request) -> Fernet:
    secret = request.app.state.settings.secret_key.encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_PURPOSE + secret).digest()))


def _set(response: Response, path: str, value: str | None, *, secure: bool) -> None:
    """Sets the notice's cookies on ``path`` to ``value`` (in chunks); None or "" clears them all."""
    chunks = [value[i:i + CHUNK_BYTES] for i in range(0, len(value), CHUNK_BYTES)] if value else []
    for n, name in enumerate(chunk_names()):
        chunk = chunks[n] if n < len(chunks) else ""
        response.headers.append("set-cookie", session.cookie_header(name, chunk, path=path, max_age=MAX_AGE_S,
                                                                       secure=secure))


def redirect(
    request: Request, location: str, *lines: str, tone: str = "succes", data: Any = None, keep: bool = False,
) -> RedirectResponse:
    """303 to ``location`` (a path on this site), with a notice of ``lines`` for that page only.
    ``tone``: succes, info, attention or erreur (site.css's notice colours). ``data``: what the
    page needs besides (a refused form's errors and values, a form typed but not saved yet);
    ``keep``: the data stays for a refresh (the lines never do). See ``fits`` for its size."""
    response = RedirectResponse(location, status_code=303)
    value = _value(request, lines, tone, data, keep)
    if value is not None:
        path = location.split("?", 1)[0].split("#", 1)[0] or "/"
        _set(response, path, value, secure=request.app.state.settings.environment != "local")
    response.headers["Cache-Control"] = "no-store"
    return response


def fits(request: Request, *lines: str, tone: str = "succes", data: Any = None) -> bool:
    """Whether that notice fits in its cookie (else the page answers the post itself)."""
    return _value(request, lines, tone, data, False) is not None


def _value(request: Request, lines: tuple[str, ...], tone: str, data: Any, keep: bool) -> str | None:
    if not lines and data is None:
        return None
    notice = {"tone": tone, "lines": list(lines), "data": data, "keep": keep}
    packed = zlib.compress(json.dumps(notice, ensure_ascii=False, separators=(",", ":")).encode(), 9)
    value = _fernet(request).encrypt(packed).decode()
    return value if len(value) <= CHUNK_BYTES * MAX_CHUNKS else None


TONES = ("succes", "info", "attention", "erreur")


def take(request: Request) -> dict[str, Any] | None:
    """The notice left for this page ({"tone", "lines", "data"}), once: ``consume`` clears it.
    Read at most once per request (``pages.render`` gives it to the template as ``flash_notice``)."""
    if hasattr(request.state, "notice"):
        return request.state.notice  # type: ignore[no-any-return]
    request.state.notice = _read(request)
    return request.state.notice


def _read(request: Request) -> dict[str, Any] | None:
    value = ""
    for name in chunk_names():
        chunk = request.cookies.get(name)
        if not chunk:
            break
        value += chunk
    if not value:
        return None
    request.state.notice_taken = True
    try:
        # Only this service makes the value (authenticated), so its size once inflated is ours.
        notice = json.loads(zlib.decompress(_fernet(request).decrypt(value.encode(), ttl=MAX_AGE_S)))
        lines = [str(line) for line in notice["lines"]]
    except (InvalidToken, ValueError, KeyError, TypeError, zlib.error):
        return None
    return {"tone": notice.get("tone") if notice.get("tone") in TONES else "info", "lines": lines,
            "data": notice.get("data"), "keep": notice.get("keep") is True}


def consume(request: Request, response: Response) -> None:
    """Clears the notice cookie a page read (called by ``pages.render``). Its ``data`` (a form
    typed, not saved yet) stays for a refresh, without the notice; ``clear`` ends it."""
    if getattr(request.state, "notice_taken", False):
        secure = request.app.state.settings.environment != "local"
        notice = getattr(request.state, "notice", None) or {}
        kept = _value(request, (), "info", notice["data"], True) if notice.get("keep") else None
        _set(response, request.url.path, kept, secure=secure)
        response.headers["Cache-Control"] = "no-store"


def clear(request: Request, response: Response, path: str) -> None:
    """Ends what a page at ``path`` kept (its form, once saved)."""
    if request.cookies.get(COOKIE_NAME) is not None:
        _set(response, path, None, secure=request.app.state.settings.environment != "local")


@dataclass(frozen=True)
class Refusal:
    """A form refused for its input, carried by the redirect back to its page (see ``refuse``)."""

    fields: dict[str, Any]
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def refuse(request: Request, location: str, form: str, status_code: int, fields: dict[str, Any],
           headers: dict[str, str] | None = None) -> RedirectResponse | None:
    """Post/redirect/get for a refused form: 303 back to its page with what it shows (errors,
    values typed: never a password), once. None when that does not fit in the cookie: the route
    then answers with the page itself."""
    data = {"form": form, "fields": fields, "status": status_code, "headers": headers or {}}
    return redirect(request, location, data=data) if fits(request, data=data) else None


def refusal(request: Request, form: str) -> Refusal | None:
    """The refusal ``refuse`` left for this page's ``form``, if any (once)."""
    data = (take(request) or {}).get("data")
    if not isinstance(data, dict) or data.get("form") != form or not isinstance(data.get("fields"), dict):
        return None
    headers = {k: str(v) for k, v in dict(data.get("headers") or {}).items() if k == "Retry-After"}
    return Refusal(data["fields"], int(data.get("status") or 200), headers)
