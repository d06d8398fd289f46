"""Access-token verification shared by every service: JWTs signed by identity, checked offline.

Identity publishes its public keys at ``/.well-known/jwks.json``. A verifier caches them by key id
(``kid``) and fetches them again when it meets an unknown kid (a rotation), at most every few
seconds. ``require_role`` is the FastAPI dependency a route uses to demand a valid token and role.

A deleted account's tokens are refused before they expire: each process keeps the accounts
deleted recently (``RevokedAccounts``), fed from identity's ``AccountDeleted`` events by the
runtime (every process reads them, no consumer group), and the verifier consults it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.kernel.envelope import TYPE_PREFIX

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
# True when the account's tokens must be refused although validly signed (a deleted account).
RevocationCheck = Callable[[str], Awaitable[bool]]
REVOKING_EVENT = "AccountDeleted"


class RevokedAccounts:
    """Accounts deleted within the last ``keep`` (at least an access token's lifetime): a token of
    theirs may still be unexpired, so it is refused. Older entries are forgotten."""

    def __init__(self, keep: timedelta, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._keep = keep
        self._now = clock
        self._until: dict[str, datetime] = {}

    def revoke(self, account_id: str, revoked_at: datetime) -> None:
        until, now = revoked_at + self._keep, self._now()
        if until > now:
            self._until[account_id] = max(until, self._until.get(account_id, until))
        if len(self._until) > 1024:  # entries never looked up again are dropped here
            self._until = {a: u for a, u in self._until.items() if u > now}

    async def is_revoked(self, account_id: str) -> bool:
        until = self._until.get(account_id)
        if until is not None and until <= self._now():
            del self._until[account_id]
            return False
        return until is not None

    def take(self, raw_event: bytes) -> bool:
        """Reads one message of the account topic; True if it revoked an account. Any other
        message (or a malformed one: the owning consumers dead-letter those) is ignored."""
        try:
            event = json.loads(raw_event)
            if str(event.get("type", "")).removeprefix(TYPE_PREFIX) != REVOKING_EVENT:
                return False
            data = event["data"]
            deleted_at = datetime.fromisoformat(str(data["deleted_at"]).replace("Z", "+00:00"))
            self.revoke(str(data["account_id"]), deleted_at if deleted_at.tzinfo else deleted_at.replace(tzinfo=UTC))
            return True
        except (ValueError, KeyError, TypeError, AttributeError):
            return False


class TokenVerifier:
    def __init__(
        self, fetch_jwks: JwksFetcher, *, refetch_interval_s: float = 5.0, leeway_s: float = 5.0,
        revoked: RevocationCheck | None = None,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._revoked = revoked
        self._keys: dict[str, Any] = {}
        self._last_fetch = float("-inf")
        self._refetch_interval_s = refetch_interval_s
        self._leeway_s = leeway_s
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, jwks_url: str, client: httpx.AsyncClient, *, revoked: RevocationCheck | None = None) -> TokenVerifier:
        async def fetch() -> dict[str, Any]:
            response = await client.get(jwks_url, timeout=3.0)
            response.raise_for_status()
            return response.json()

        return cls(fetch, revoked=revoked)

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
        if self._revoked is not None and await self._revoked(claims["sub"]):
            raise InvalidToken("account deleted")
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
