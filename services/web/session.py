"""The logged-in session: identity's token pair, encrypted in a cookie (no server-side state).

- After login the browser holds one cookie with the access token, the refresh token and the
  access token's expiry, encrypted and authenticated with Fernet (AES-128-CBC + HMAC-SHA256)
  under a key derived from ``secret_key``: the refresh token is never readable in the cookie,
  and a cookie changed by hand is simply not a session.
- HttpOnly, SameSite=Lax (a link to /mon-espace from an email still finds the session), Path=/,
  Secure and named ``__Host-ecp_session`` outside a local run. It lives as long as the refresh
  token (30 days); logging out clears it and revokes the refresh token at identity.
- ``current_user`` (a dependency) refreshes transparently through identity ``/auth/refresh``
  when the access token has expired (or is about to), and rotates the cookie; with no session,
  or one identity refuses, it redirects to ``/connexion?suite=<the page>``.

Routes never set the cookie themselves: they put the new value in ``request.state`` (``start``,
``end``, or a refresh) and ``SessionCookieMiddleware`` writes it on whatever response goes out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web.clients import IdentityClient, identity_client
from services.web.errors import PageError

COOKIE_NAME = "ecp_session"
SECURE_COOKIE_NAME = "__Host-ecp_session"
MAX_AGE_S = 30 * 24 * 3600  # identity's refresh token lifetime
REFRESH_MARGIN_S = 30  # refresh a little before expiry: the token must still be valid at the service
_PURPOSE = b"ecp-web-session:"  # a different key from the CSRF signatures'
_STATE_KEY = "session_cookie"  # request.state: the value to send ("" clears the cookie)
LOGIN_PAGE = "/connexion"
HOME_AFTER_LOGIN = "/mon-espace"
STAFF_ROLES = ("agent", "admin")


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_at: float

    def expired(self, now: float) -> bool:
        return now >= self.expires_at - REFRESH_MARGIN_S

    def _claim(self, name: str) -> str:
        """A claim of the access token, read without checking the signature: it only chooses
        which links and pages to show; every service verifies the token itself."""
        try:
            payload = self.access_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return str(claims.get(name, ""))
        except (IndexError, ValueError, TypeError, AttributeError):
            return ""

    @property
    def role(self) -> str:
        return self._claim("role")

    @property
    def account_id(self) -> str:
        """The token's subject (the back-office marks the files the agent holds)."""
        return self._claim("sub")

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class LoginRequired(Exception):
    """Raised by ``current_user``; ``login_redirect`` answers with a redirect to the login page."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


async def login_redirect(request: Request, exc: Exception) -> RedirectResponse:
    """Exception handler: 303 to the login page, which comes back here after login."""
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.location, status_code=303)


def _fernet(request: Request) -> Fernet:
    secret = request.app.state.settings.secret_key.encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_PURPOSE + secret).digest()))


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.environment != "local")


def cookie_name(request: Request) -> str:
    return SECURE_COOKIE_NAME if _secure(request) else COOKIE_NAME


def read(request: Request) -> Session | None:
    """The session the browser sent, or None (absent, tampered, made with another key)."""
    value = request.cookies.get(cookie_name(request))
    if not value:
        return None
    try:
        data = json.loads(_fernet(request).decrypt(value.encode(), ttl=MAX_AGE_S))
        return Session(str(data["a"]), str(data["r"]), float(data["e"]))
    except (InvalidToken, ValueError, KeyError, TypeError):
        return None


def start(request: Request, pair: dict[str, Any]) -> Session:
    """Records identity's token pair (login or refresh) as the cookie to send."""
    session = Session(pair["access_token"], pair["refresh_token"], time.time() + int(pair["expires_in"]))
    payload = json.dumps({"a": session.access_token, "r": session.refresh_token, "e": session.expires_at})
    setattr(request.state, _STATE_KEY, _fernet(request).encrypt(payload.encode()).decode())
    request.state.session_secure = _secure(request)
    request.state.session = session
    return session


def end(request: Request) -> None:
    """The response clears the cookie."""
    setattr(request.state, _STATE_KEY, "")
    request.state.session_secure = _secure(request)
    request.state.session = None


def safe_next(suite: str | None) -> str | None:
    """``suite`` when it is a path on this site, else None (no open redirect)."""
    if not suite or len(suite) > 512 or not suite.startswith("/") or suite.startswith("//"):
        return None
    if "\\" in suite or any(ord(c) < 0x21 or ord(c) == 0x7F for c in suite):
        return None
    parts = urlsplit(suite)
    if parts.scheme or parts.netloc:
        return None
    return suite


def login_location(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{LOGIN_PAGE}?suite={quote(here, safe='')}"


async def current_user(request: Request, identity: Annotated[IdentityClient, Depends(identity_client)]) -> Session:
    """Dependency for the pages of a logged-in family: a session with a valid access token."""
    session = read(request)
    if session is None:
        raise LoginRequired(login_location(request))
    if session.expired(time.time()):
        pair = await identity.refresh(session.refresh_token)
        if pair is None:  # expired, revoked (logout, password change), or reused
            end(request)
            raise LoginRequired(login_location(request))
        session = start(request, pair)
    request.state.session = session
    return session


CurrentUser = Annotated[Session, Depends(current_user)]


def log_in_again(request: Request) -> LoginRequired:
    """For a session identity no longer honours (account erased, sessions revoked): the cookie is
    cleared and the raised exception redirects to the login page, which comes back here."""
    end(request)
    return LoginRequired(login_location(request))


class StaffOnly(PageError):
    status_code = 403
    title = "Accès réservé aux agents"
    message = "Cette page est réservée aux agents du Service Scolaire et Périscolaire."


async def current_agent(user: CurrentUser) -> Session:
    """Dependency for the back-office pages: a logged-in agent or administrator (else a French 403)."""
    if not user.is_staff:
        raise StaffOnly()
    return user


CurrentAgent = Annotated[Session, Depends(current_agent)]


class SessionCookieMiddleware:
    """Writes the session cookie a route asked for (``start``/``end``) on its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                value = state.get(_STATE_KEY)
                if value is not None:
                    secure = state.get("session_secure", False)
                    headers = list(message.get("headers", []))
                    headers.append((b"set-cookie", _cookie_header(value, secure).encode("latin-1")))
                    # A response that changes the session must never be stored by a cache.
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie_header(value: str, secure: bool) -> str:
    name = SECURE_COOKIE_NAME if secure else COOKIE_NAME
    return cookie_header(name, value, path="/", max_age=MAX_AGE_S, secure=secure)


def cookie_header(name: str, value: str, *, path: str, max_age: int, secure: bool) -> str:
    """A Set-Cookie value the pages' way: HttpOnly, SameSite=Lax; an empty value clears it."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = path
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    morsel["max-age"] = max_age if value else 0
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()
