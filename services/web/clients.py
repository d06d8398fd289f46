"""Calls from the pages to the services' APIs (directly at their own addresses, not the gateway).

``IdentityClient`` for the account flows (no token yet); ``ServiceClient`` for everything a
logged-in family or agent does, with the user's bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request

from services.kernel.logging import get_logger
from services.web.errors import PageError

log = get_logger(__name__)


class IdentityUnavailable(PageError):
    status_code = 503
    title = "Service momentanément indisponible"
    message = (
        "Le service des comptes ne répond pas pour le moment. Votre demande n'a pas été prise en "
        "compte : réessayez dans quelques minutes."
    )


@dataclass(frozen=True)
class IdentityAnswer:
    """One of the answers identity documents for the call (anything else raises IdentityUnavailable)."""

    status: int
    detail: str
    # Pydantic-style errors ({"loc": [...], "msg": ..., "type": ...}) of a 422.
    errors: list[dict[str, Any]] = field(default_factory=list)
    retry_after: str | None = None
    # A wrong login: how many more tries identity allows for this address before its 429.
    attempts_left: int | None = None

    def field_error(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.errors if name in e.get("loc", ())), None)


class IdentityClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, *, headers: dict[str, str]) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._headers = headers

    async def activate(self, token: str) -> IdentityAnswer:
        return await self._post("/auth/activation", {"token": token}, {200, 400, 409, 410, 422})

    async def resend_activation(self, email: str) -> IdentityAnswer:
        return await self._post("/auth/activation/resend", {"email": email}, {202, 422, 429})

    async def confirm_reset(self, token: str, new_password: str) -> IdentityAnswer:
        return await self._post(
            "/auth/password-reset/confirm", {"token": token, "new_password": new_password}, {200, 400, 409, 410, 422}
        )

    async def request_reset(self, email: str) -> IdentityAnswer:
        return await self._post("/auth/password-reset", {"email": email}, {202, 422, 429})

    async def register(self, email: str, password: str, display_name: str) -> IdentityAnswer:
        body = {"email": email, "password": password, "display_name": display_name}
        return await self._post("/auth/register", body, {202, 422, 429})

    async def login(self, email: str, password: str) -> tuple[IdentityAnswer | None, dict[str, Any]]:
        """200: (None, the token pair); else (the answer: 401, 403 not activated, 422, 429), {})."""
        response = await self._send("/auth/login", {"email": email, "password": password})
        if response.status_code == 200:
            return None, _token_pair(response, "/auth/login")
        return self._answer("/auth/login", response, {401, 403, 422, 429}), {}

    async def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """The new pair, or None when identity refuses the refresh token (401: expired, revoked)."""
        response = await self._send("/auth/refresh", {"refresh_token": refresh_token})
        if response.status_code == 200:
            return _token_pair(response, "/auth/refresh")
        if response.status_code in (401, 422):
            return None
        log.warning("identity answered unexpectedly", path="/auth/refresh", status=response.status_code)
        raise IdentityUnavailable()

    async def logout(self, refresh_token: str) -> None:
        """Revokes the refresh token's chain; a token identity no longer knows is already logged out."""
        response = await self._send("/auth/logout", {"refresh_token": refresh_token})
        if response.status_code not in (204, 401, 422):
            log.warning("identity answered unexpectedly", path="/auth/logout", status=response.status_code)

    async def _send(self, path: str, body: dict[str, str]) -> httpx.Response:
        try:
            return await self._http.post(f"{self._base_url}{path}", json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            # Unreachable or too slow: the user gets a French 503 page, the log gets the cause.
            log.warning("identity unreachable", path=path, error=type(exc).__name__)
            raise IdentityUnavailable() from exc

    async def _post(self, path: str, body: dict[str, str], expected: set[int]) -> IdentityAnswer:
        return self._answer(path, await self._send(path, body), expected)

    def _answer(self, path: str, response: httpx.Response, expected: set[int]) -> IdentityAnswer:
        try:
            payload = response.json()
            detail = str(payload["detail"])
        except (ValueError, KeyError, TypeError):
            payload, detail = {}, ""
        if response.status_code not in expected or not detail:
            log.warning("identity answered unexpectedly", path=path, status=response.status_code)
            raise IdentityUnavailable()
        errors = payload.get("errors")
        return IdentityAnswer(
            status=response.status_code,
            detail=detail,
            errors=errors if isinstance(errors, list) else [],
            retry_after=response.headers.get("retry-after"),
            attempts_left=payload["attempts_left"] if isinstance(payload.get("attempts_left"), int) else None,
        )


def _token_pair(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        payload = response.json()
        pair = {"access_token": str(payload["access_token"]), "refresh_token": str(payload["refresh_token"]),
                "expires_in": int(payload["expires_in"])}
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("identity answered unexpectedly", path=path, status=response.status_code)
        raise IdentityUnavailable() from exc
    return pair


@dataclass(frozen=True)
class ServiceReply:
    """A service's answer to a family read: its status and JSON body (``None`` when unreachable)."""

    status: int | None
    body: dict[str, Any] = field(default_factory=dict)


class ServiceClient:
    """Calls to the services with the user's bearer token (identity, household, documents, enrolment)."""

    def __init__(self, http: httpx.AsyncClient, urls: dict[str, str], *, headers: dict[str, str]) -> None:
        self._http = http
        self._urls = {name: url.rstrip("/") for name, url in urls.items()}
        self._headers = headers

    def _auth(self, access_token: str) -> dict[str, str]:
        if not access_token:  # a public read (the certificate check): no user, no header
            return dict(self._headers)
        return {**self._headers, "Authorization": f"Bearer {access_token}"}

    async def get(self, service: str, path: str, access_token: str, *, params: dict[str, Any] | None = None) -> ServiceReply:
        """Never raises: a page decides what an unreachable service means for it (status None)."""
        return await self.send("GET", service, path, access_token, params=params)

    async def send(
        self, method: str, service: str, path: str, access_token: str, *,
        json: Any = None, params: dict[str, Any] | None = None,
        files: dict[str, tuple[str, Any, str]] | None = None, data: dict[str, str] | None = None,
        content: bytes | None = None, content_type: str | None = None, timeout: float | None = None,
    ) -> ServiceReply:
        """Any JSON call (or a multipart upload with ``files``); never raises, like ``get``.

        The body of a JSON list answer is put under ``"items"`` so ``body`` stays a dict."""
        headers = self._auth(access_token)
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            response = await self._http.request(
                method, f"{self._urls[service]}{path}", headers=headers, json=json, params=params,
                files=files, data=data, content=content,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            body = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("service unreachable", service=service, path=path, method=method, error=type(exc).__name__)
            return ServiceReply(None)
        if isinstance(body, list):
            body = {"items": body}
        return ServiceReply(response.status_code, body if isinstance(body, dict) else {})

    async def fetch(self, service: str, path: str, access_token: str, *,
                    params: dict[str, Any] | None = None) -> httpx.Response | None:
        """A raw GET (a PDF, a CSV): the response whatever its status, None when unreachable."""
        try:
            return await self._http.get(f"{self._urls[service]}{path}", headers=self._auth(access_token), params=params)
        except httpx.HTTPError as exc:
            log.warning("service unreachable", service=service, path=path, error=type(exc).__name__)
            return None

    async def fetch_url(self, url: str) -> httpx.Response | None:
        """A GET on a presigned object-store link (documents, certificates) the page relays."""
        try:
            return await self._http.get(url, timeout=httpx.Timeout(30.0, connect=2.0))
        except httpx.HTTPError as exc:
            log.warning("object store unreachable", error=type(exc).__name__)
            return None


def _forwarded_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, attribute in (("X-Request-ID", "request_id"), ("X-Correlation-ID", "correlation_id")):
        value = getattr(request.state, attribute, None)
        if value:
            headers[name] = value
    # Identity trusts X-Forwarded-For from this address: its per-address limits then count the
    # user's address, not the web service's (which every page user shares).
    if request.client is not None:
        headers["X-Forwarded-For"] = request.client.host
    return headers


def identity_client(request: Request) -> IdentityClient:
    """Dependency: a client bound to this request's ids, so identity's logs show the same request."""
    return IdentityClient(request.app.state.http, request.app.state.settings.identity_url,
                          headers=_forwarded_headers(request))


def service_client(request: Request) -> ServiceClient:
    """Dependency: the family reads, with this request's ids."""
    return ServiceClient(request.app.state.http, request.app.state.settings.service_urls(),
                         headers=_forwarded_headers(request))
