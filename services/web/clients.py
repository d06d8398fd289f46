"""Calls from the pages to the identity service's API (directly at its own address)."""

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

    async def _post(self, path: str, body: dict[str, str], expected: set[int]) -> IdentityAnswer:
        try:
            response = await self._http.post(f"{self._base_url}{path}", json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            # Unreachable or too slow: the user gets a French 503 page, the log gets the cause.
            log.warning("identity unreachable", path=path, error=type(exc).__name__)
            raise IdentityUnavailable() from exc
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
        )


def identity_client(request: Request) -> IdentityClient:
    """Dependency: a client bound to this request's ids, so identity's logs show the same request."""
    headers: dict[str, str] = {}
    for name, attribute in (("X-Request-ID", "request_id"), ("X-Correlation-ID", "correlation_id")):
        value = getattr(request.state, attribute, None)
        if value:
            headers[name] = value
    # Identity trusts X-Forwarded-For from this address: its per-address limits then count the
    # user's address, not the web service's (which every page user shares).
    if request.client is not None:
        headers["X-Forwarded-For"] = request.client.host
    return IdentityClient(request.app.state.http, request.app.state.settings.identity_url, headers=headers)
