"""An in-memory stand-in for IdentityStore, enough for the use cases' rules (no I/O): accounts,
rate-limit counters with the same fixed windows, refresh tokens and one-time links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.identity.domain import AccountState, LinkStatus, OneTimeLink
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.identity.store import IdentityStore
from services.identity.tokens import KeyRing, generate_signing_key
from services.identity.usecases import IdentityService

SECRET = "test-secret"


class FakeStore:
    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, dict[str, Any]] = {}
        self.writes = 0

    # accounts
    async def by_email(self, email: str) -> dict[str, Any] | None:
        return next((a for a in self.accounts.values() if a.get("email") == email and a["state"] != AccountState.DELETED), None)

    async def by_id(self, account_id: str) -> dict[str, Any] | None:
        account = self.accounts.get(account_id)
        return account if account is not None and account["state"] != AccountState.DELETED else None

    async def link_status(self, kind: str, link_hash: str, now: datetime) -> tuple[LinkStatus, dict[str, Any] | None]:
        for account in self.accounts.values():
            for link in account.get(f"{kind}_links", []):
                if link["hash"] == link_hash:
                    return OneTimeLink(**link).status_at(now), account
        return LinkStatus.UNKNOWN, None

    async def add_reset_link(self, account_id: str, link: OneTimeLink, events: list[dict[str, Any]]) -> None:
        self.writes += 1
        self.accounts[account_id].setdefault("reset_links", []).append({"hash": link.hash, "expires_at": link.expires_at})

    async def add_activation_link(self, account_id: str, link: OneTimeLink, events: list[dict[str, Any]]) -> bool:
        self.writes += 1
        self.accounts[account_id].setdefault("activation_links", []).append({"hash": link.hash, "expires_at": link.expires_at})
        return True

    async def write_decoy(self, kind: str, link: OneTimeLink, entries: list[dict[str, Any]]) -> None:
        self.writes += 1

    async def reset_password(self, account_id: str, link_hash: str, password_hash: str, now: datetime, events: list[dict[str, Any]]) -> bool:
        self.accounts[account_id].update(password_hash=password_hash, reset_links=[])
        return True

    async def change_password(self, account_id: str, old_hash: str, new_hash: str, now: datetime, events: list[dict[str, Any]]) -> bool:
        self.accounts[account_id]["password_hash"] = new_hash
        return True

    async def rehash_password(self, account_id: str, old_hash: str, new_hash: str) -> None:
        self.accounts[account_id]["password_hash"] = new_hash

    async def erase(self, account_id: str, now: datetime, events: list[dict[str, Any]]) -> bool:
        self.accounts[account_id] = {"_id": account_id, "state": AccountState.DELETED}
        return True

    async def events_published(self, account_id: str) -> bool:
        return True

    # sessions
    async def insert_refresh_token(self, token_hash: str, **fields: Any) -> None:
        pass

    async def revoke_all(self, account_id: str) -> None:
        pass

    async def touch(self, account_id: str, now: datetime) -> None:
        self.accounts[account_id]["last_login_at"] = now

    # rate limits, with the store's own fixed windows
    _counter = staticmethod(IdentityStore._window)

    async def hit(self, key: str, window: timedelta, now: datetime, *, scope: str | None = None) -> tuple[int, datetime]:
        counter, ends = self._counter(key, window, now)
        doc = self.counters.setdefault(counter, {"count": 0, "scope": scope})
        doc["count"] += 1
        return doc["count"], ends

    async def unhit(self, key: str, window: timedelta, now: datetime) -> None:
        counter, _ = self._counter(key, window, now)
        if self.counters.get(counter, {}).get("count", 0) > 0:
            self.counters[counter]["count"] -= 1

    async def clear_limits(self, scope: str) -> None:
        self.counters = {k: v for k, v in self.counters.items() if v.get("scope") != scope}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def fast_passwords() -> Passwords:
    """argon2id with tiny parameters: the rules, not the cost, are under test."""
    return Passwords(memory_kib=8, time_cost=1, parallelism=1)


async def service_with_account(email: str, password: str, **settings: Any) -> tuple[IdentityService, FakeStore, str]:
    store, clock, passwords = FakeStore(), Clock(), fast_passwords()
    account_id = "acc-1"
    store.accounts[account_id] = {
        "_id": account_id, "email": email, "display_name": "Camille Martin", "role": "family",
        "state": AccountState.ACTIVE, "password_hash": await passwords.hash(password),
    }
    keyring = KeyRing([generate_signing_key(SECRET, clock.now - timedelta(hours=1))], SECRET)
    service = IdentityService(store, IdentitySettings(**settings), passwords, keyring, clock=clock)  # type: ignore[arg-type]
    return service, store, account_id
