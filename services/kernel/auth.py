"""Access-token verification shared by every service: JWTs signed by identity, checked offline.

Identity publishes its public keys at ``/.well-known/jwks.json``. A verifier caches them by key id
(``kid``) and fetches them again when it meets an unknown kid (a rotation), at most every few
seconds. ``require_role`` is the FastAPI dependency a route uses to demand a valid token and role.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ISSUER = "ecp-identity"
AUDIENCE = "ecp"
ALGORITHM = "EdDSA"
ROLES = ("family", "agent", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account and its role, from a verified access token."""

    account_id: str
    role: str
    token_id: str


class InvalidToken(Exception):
    """The token is missing, malformed, expired, signed by an unknown key or for someone else."""


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class TokenVerifier:
    def __init__(self, fetch_jwks: JwksFetcher, *, refetch_interval_s: float = 5.0, leeway_s: float = 5.0) -> None:
        self._fetch_jwks = fetch_jwks
        self._keys: dict[str, Any] = {}
        self._last_fetch = float("-inf")
        self._refetch_interval_s = refetch_interval_s
        self._leeway_s = leeway_s
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, jwks_url: str, client: httpx.AsyncClient) -> TokenVerifier:
        async def fetch() -> dict[str, Any]:
            response = await client.get(jwks_url, timeout=3.0)
            response.raise_for_status()
            return response.json()

        return cls(fetch)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._last_fetch < self._refetch_interval_s:
                return
            self._last_fetch = time.monotonic()
            jwks = await self._fetch_jwks()
            self._keys = {k["kid"]: jwt.PyJWK.from_dict(k).key for k in jwks.get("keys", []) if "kid" in k}

    async def verify(self, token: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if not isinstance(kid, str):
            raise InvalidToken("token without key id")
        if kid not in self._keys:
            try:
                await self._refresh()
            except (httpx.HTTPError, ValueError) as exc:
                raise InvalidToken("signing keys unavailable") from exc
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway_s,
                options={"require": ["exp", "iat", "sub", "jti", "role"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if claims["role"] not in ROLES:
            raise InvalidToken("unknown role")
        return Principal(account_id=claims["sub"], role=claims["role"], token_id=claims["jti"])


_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/identity/auth/login")

UNAUTHENTICATED = "Votre session a expiré ou n'est pas valide. Veuillez vous reconnecter."
FORBIDDEN = "Vous n'avez pas accès à cette page."


async def current_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return await verifier.verify(credentials.credentials)
    except InvalidToken:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"}
        ) from None


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: a verified token whose role is one of ``roles`` (401 without one, 403 otherwise)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return principal

    return dependency


def session_router() -> Any:
    """`GET /session`: who this service sees the caller as. With ``?require=ROLE`` it answers 403
    unless the token carries that role, so pages and other systems can check access up front."""
    from fastapi import APIRouter, Query
    from pydantic import BaseModel

    class Session(BaseModel):
        account_id: str
        role: str

    router = APIRouter(tags=["session"])

    @router.get(
        "/session",
        response_model=Session,
        summary="The account and role of the caller's access token, as verified by this service",
        responses={401: {"description": "No valid token"}, 403: {"description": "The token lacks the required role"}},
    )
    async def session(
        principal: Principal = Depends(current_principal),
        require: str | None = Query(default=None, pattern="^(family|agent|admin)$"),
    ) -> Session:
        if require is not None and principal.role != require:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return Session(account_id=principal.account_id, role=principal.role)

    return router
