"""What each identity request does: domain rules, then one store write carrying its events.

Failures are exceptions the API maps to HTTP answers; their messages are French and never say
whether an email address has an account.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.identity import events
from services.identity.domain import (
    AccountState,
    LinkStatus,
    Role,
    activation_url,
    issue_link,
    new_secret_token,
    normalise_email,
    password_problems,
    reset_url,
    token_hash,
)
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.identity.store import EmailTaken, IdentityStore
from services.identity.tokens import KeyRing, generate_signing_key
from services.kernel.envelope import EventData, new_event
from services.kernel.logging import get_logger
from services.kernel.outbox import outbox_entry

SOURCE = "/services/identity"
log = get_logger(__name__)


class IdentityError(Exception):
    """Base of the answers a request can get besides success."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class PolicyViolation(IdentityError):
    pass


class InvalidCredentials(IdentityError):
    pass


class NotActivated(IdentityError):
    pass


class LinkExpired(IdentityError):
    pass


class LinkUsed(IdentityError):
    pass


class LinkUnknown(IdentityError):
    pass


class TooManyAttempts(IdentityError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class AlreadyExists(IdentityError):
    pass


class Deactivated(IdentityError):
    """A staff account an admin deactivated: the right password, but no session."""


class StaffNotFound(IdentityError):
    pass


DEACTIVATED = "Votre compte a été désactivé. Adressez-vous à un administrateur du Service Scolaire et Périscolaire."


NEUTRAL_REGISTRATION = (
    "Si cette adresse peut être utilisée, un email vous a été envoyé. Cliquez sur le lien qu'il "
    "contient pour finaliser la création de votre espace. Pensez à vérifier vos courriers indésirables."
)
NEUTRAL_RESEND = (
    "Si un compte en attente d'activation existe pour cette adresse, un nouveau lien vient de lui être "
    "envoyé. Les liens déjà reçus restent valables jusqu'à leur expiration."
)
NEUTRAL_RESET = (
    "Si un compte existe pour cette adresse, un email contenant un lien pour choisir un nouveau mot de "
    "passe vient de lui être envoyé. Ce lien est valable une heure."
)
WRONG_CREDENTIALS = "Adresse email ou mot de passe incorrect."
TOO_MANY = "Trop de tentatives. Réessayez dans quelques minutes."


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class IdentityService:
    def __init__(
        self,
        store: IdentityStore,
        settings: IdentitySettings,
        passwords: Passwords,
        keyring: KeyRing,
        *,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.passwords = passwords
        self.keyring = keyring
        self._events_queued = events_queued
        self._now = clock

    def _entries(self, *datas: EventData, subject: str, correlation_id: str | None) -> list[dict[str, Any]]:
        return [
            outbox_entry(new_event(d, source=SOURCE, subject=subject, correlation_id=correlation_id), d.topic)
            for d in datas
        ]

    async def _limit(self, key: str, allowed: int, window: timedelta, *, scope: str | None = None) -> int:
        """Counts one attempt; returns how many more this window allows (0: this was the last)."""
        count, ends = await self.store.hit(key, window, self._now(), scope=scope)
        if count > allowed:
            raise TooManyAttempts(TOO_MANY, int((ends - self._now()).total_seconds()))
        return allowed - count

    def _guess_counters(self, email: str, client: str) -> list[tuple[str, int, str | None]]:
        """What a password guess counts against (key, allowed, the account scope a reset clears):
        the client address (every account), the account from that address (so a stranger
        elsewhere cannot lock its owner out) and, much higher, the account from anywhere (a
        guess spread over many addresses)."""
        account = token_hash(email)
        s = self.settings
        return [
            (f"login-ip:{client}", s.login_attempts_per_address, None),
            (f"login-account:{account}:{client}", s.login_attempts_per_account, account),
            (f"login-account:{account}", s.login_failures_per_account_any_address, account),
        ]

    async def _count_guess(self, email: str, client: str) -> int:
        """Counts one password guess before it is checked (so parallel guesses cannot overrun a
        limit); 429 past any counter. Returns the tries left for the account from this address."""
        window = timedelta(minutes=self.settings.login_window_minutes)
        left = [await self._limit(key, allowed, window, scope=scope) for key, allowed, scope in self._guess_counters(email, client)]
        return left[1]

    async def _right_guess(self, email: str, client: str) -> None:
        """A right password is not a failure: its count is taken back."""
        window = timedelta(minutes=self.settings.login_window_minutes)
        for key, _, _ in self._guess_counters(email, client):
            await self.store.unhit(key, window, self._now())

    # registration and activation

    async def register(
        self, email: str, password: str, display_name: str, *, client: str, correlation_id: str | None = None
    ) -> str:
        """Creates a pending account and emails its activation link; the answer never tells
        whether the address already had an account (its owner is emailed instead)."""
        email = normalise_email(email)
        display_name = " ".join(display_name.split())
        problems = password_problems(password, email=email, display_name=display_name,
                                     local_words=self.settings.password_local_words)
        if problems:
            raise PolicyViolation(problems[0], field="password")
        await self._limit(f"register-ip:{client}", self.settings.registrations_per_address_per_hour, timedelta(hours=1))
        password_hash = await self.passwords.hash(password)  # in both branches: same timing
        now = self._now()
        existing = await self.store.by_email(email)
        if existing is None:
            account_id = str(uuid.uuid4())
            token, link = issue_link(now, timedelta(hours=self.settings.activation_link_ttl_hours))
            document = {
                "_id": account_id, "email": email, "display_name": display_name, "password_hash": password_hash,
                "role": Role.FAMILY, "state": AccountState.PENDING_ACTIVATION, "created_at": now,
                "activation_links": [{"hash": link.hash, "expires_at": link.expires_at}],
            }
            entries = self._entries(
                events.AccountRegistered(account_id=account_id, email=email, display_name=display_name, registered_at=now),
                events.ActivationLinkIssued(
                    account_id=account_id, email=email, display_name=display_name,
                    link=activation_url(self.settings.public_base_url, token), expires_at=link.expires_at,
                ),
                subject=account_id, correlation_id=correlation_id,
            )
            try:
                await self.store.insert_account(document, entries)
            except EmailTaken:
                existing = await self.store.by_email(email)  # a concurrent registration won
        if existing is not None:
            await self.store.append_events(
                existing["_id"],
                self._entries(
                    events.ExistingAccountRegistrationAttempted(
                        account_id=existing["_id"], email=email, display_name=existing["display_name"], attempted_at=now
                    ),
                    subject=existing["_id"], correlation_id=correlation_id,
                ),
            )
        self._events_queued()
        return NEUTRAL_REGISTRATION

    async def resend_activation(self, email: str, *, correlation_id: str | None = None) -> str:
        email = normalise_email(email)
        await self._limit(f"resend:{token_hash(email)}", self.settings.resends_per_hour, timedelta(hours=1))
        account = await self.store.by_email(email)
        pending = account is not None and account["state"] == AccountState.PENDING_ACTIVATION
        # The same work whether or not there is a pending account (its timing must not tell):
        # a link and its event are built and written, to a decoy when there is no one to send to.
        subject = account or {"_id": str(uuid.uuid4()), "display_name": ""}
        token, link = issue_link(self._now(), timedelta(hours=self.settings.activation_link_ttl_hours))
        entries = self._entries(
            events.ActivationLinkIssued(
                account_id=subject["_id"], email=email, display_name=subject["display_name"],
                link=activation_url(self.settings.public_base_url, token), expires_at=link.expires_at,
            ),
            subject=subject["_id"], correlation_id=correlation_id,
        )
        if pending:
            await self.store.add_activation_link(subject["_id"], link, entries)
        else:
            await self.store.write_decoy("activation", link, entries)
        self._wake_relay_after_answer()
        return NEUTRAL_RESEND

    def _wake_relay_after_answer(self) -> None:
        """Publishing the link (for an existing account only) would run while this answer is
        sent and slow it down, telling the account exists: the relay is woken once it has gone."""
        asyncio.get_running_loop().call_later(self.settings.neutral_answer_relay_delay_s, self._events_queued)

    async def activate(self, token: str, *, correlation_id: str | None = None) -> None:
        link_hash = token_hash(token)
        now = self._now()
        status, account = await self.store.link_status("activation", link_hash, now)
        if status == LinkStatus.USED or (account is not None and account["state"] == AccountState.ACTIVE):
            raise LinkUsed("Ce lien a déjà été utilisé : votre espace est activé, vous pouvez vous connecter.")
        if status == LinkStatus.EXPIRED:
            raise LinkExpired("Ce lien a expiré. Demandez un nouveau lien d'activation.", can_resend=True)
        if status == LinkStatus.UNKNOWN or account is None:
            raise LinkUnknown(
                "Ce lien n'est pas valide. Vérifiez qu'il est complet ou demandez un nouveau lien d'activation.",
                can_resend=True,
            )
        entries = self._entries(
            events.AccountActivated(
                account_id=account["_id"], email=account["email"], display_name=account["display_name"],
                activated_at=now, role=account["role"],
            ),
            subject=account["_id"], correlation_id=correlation_id,
        )
        all_hashes = [link["hash"] for link in account.get("activation_links", [])]
        if not await self.store.activate(account["_id"], link_hash, all_hashes, now, entries):
            raise LinkUsed("Ce lien a déjà été utilisé : votre espace est activé, vous pouvez vous connecter.")
        self._events_queued()

    # sessions

    async def login(self, email: str, password: str, *, client: str) -> TokenPair:
        email = normalise_email(email)
        attempts_left = await self._count_guess(email, client)
        account = await self.store.by_email(email)
        if not await self.passwords.verify(account["password_hash"] if account else None, password) or account is None:
            # Counted per address typed, account or not: telling what is left reveals nothing.
            raise InvalidCredentials(WRONG_CREDENTIALS, attempts_left=attempts_left)
        await self._right_guess(email, client)
        if account["state"] == AccountState.DEACTIVATED:
            raise Deactivated(DEACTIVATED)
        if account["state"] == AccountState.PENDING_ACTIVATION:
            raise NotActivated(
                "Votre espace n'est pas encore activé. Cliquez sur le lien reçu par email, ou demandez un nouveau lien.",
                can_resend=True,
            )
        if self.passwords.needs_rehash(account["password_hash"]):
            await self.store.rehash_password(account["_id"], account["password_hash"], await self.passwords.hash(password))
        return await self._issue_tokens(account["_id"], account["role"], family=str(uuid.uuid4()))

    async def _issue_tokens(self, account_id: str, role: str, *, family: str) -> TokenPair:
        now = self._now()
        ttl = timedelta(minutes=self.settings.access_token_ttl_minutes)
        refresh = new_secret_token()
        await self.store.insert_refresh_token(
            token_hash(refresh), family=family, account_id=account_id, role=role, now=now,
            ttl=timedelta(days=self.settings.refresh_token_ttl_days),
        )
        await self.store.touch(account_id, now)  # not dormant (retention)
        access = self.keyring.sign_access_token(account_id=account_id, role=role, now=now, ttl=ttl)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=int(ttl.total_seconds()))

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotates the refresh token. Presenting one already used revokes its whole chain."""
        outcome, doc = await self.store.use_refresh_token(token_hash(refresh_token), self._now())
        if outcome == "reused" and doc is not None:
            await self.store.revoke_family(doc["family"])
        if outcome != "ok" or doc is None:
            raise InvalidCredentials("Votre session a expiré. Veuillez vous reconnecter.")
        account = await self.store.by_id(doc["account_id"])
        if account is None or account["state"] != AccountState.ACTIVE:
            raise InvalidCredentials("Votre session a expiré. Veuillez vous reconnecter.")
        return await self._issue_tokens(account["_id"], account["role"], family=doc["family"])

    async def logout(self, refresh_token: str) -> None:
        outcome, doc = await self.store.use_refresh_token(token_hash(refresh_token), self._now())
        if doc is not None:
            await self.store.revoke_family(doc["family"])

    # passwords

    async def request_reset(self, email: str, *, correlation_id: str | None = None) -> str:
        email = normalise_email(email)
        await self._limit(f"reset:{token_hash(email)}", self.settings.reset_requests_per_hour, timedelta(hours=1))
        account = await self.store.by_email(email)
        # The same work whether or not the account exists (see resend_activation).
        await self._send_password_link(
            account or {"_id": str(uuid.uuid4()), "email": email, "display_name": ""},
            timedelta(minutes=self.settings.reset_link_ttl_minutes), "reset", correlation_id, decoy=account is None,
        )
        return NEUTRAL_RESET

    async def _send_password_link(
        self, account: dict[str, Any], ttl: timedelta, purpose: str, correlation_id: str | None, *, decoy: bool = False
    ) -> None:
        token, link = issue_link(self._now(), ttl)
        entries = self._entries(
            events.PasswordResetLinkIssued(
                account_id=account["_id"], email=account["email"], display_name=account["display_name"],
                link=reset_url(self.settings.public_base_url, token), expires_at=link.expires_at, purpose=purpose,  # type: ignore[arg-type]
            ),
            subject=account["_id"], correlation_id=correlation_id,
        )
        if decoy:
            await self.store.write_decoy("reset", link, entries)
        else:
            await self.store.add_reset_link(account["_id"], link, entries)
        self._wake_relay_after_answer()

    async def confirm_reset(self, token: str, new_password: str, *, correlation_id: str | None = None) -> None:
        link_hash = token_hash(token)
        now = self._now()
        status, account = await self.store.link_status("reset", link_hash, now)
        if status == LinkStatus.USED:
            raise LinkUsed("Ce lien a déjà été utilisé. Demandez un nouveau lien si nécessaire.")
        if status == LinkStatus.EXPIRED:
            raise LinkExpired("Ce lien a expiré (il est valable une heure). Demandez un nouveau lien.")
        if status == LinkStatus.UNKNOWN or account is None:
            raise LinkUnknown("Ce lien n'est pas valide. Vérifiez qu'il est complet ou demandez un nouveau lien.")
        problems = password_problems(new_password, email=account["email"], display_name=account["display_name"],
                                     local_words=self.settings.password_local_words)
        if problems:
            raise PolicyViolation(problems[0], field="new_password")
        entries = self._entries(
            events.PasswordChanged(account_id=account["_id"], changed_at=now, via="reset"),
            subject=account["_id"], correlation_id=correlation_id,
        )
        # A staff invitation (or a reset of a never-activated account) proves the mailbox too.
        if not await self.store.reset_password(account["_id"], link_hash, await self.passwords.hash(new_password), now, entries):
            raise LinkUsed("Ce lien a déjà été utilisé. Demandez un nouveau lien si nécessaire.")
        await self.store.revoke_all(account["_id"])
        # Whoever proved the mailbox is the owner: guesses counted against the account go.
        await self.store.clear_limits(token_hash(account["email"]))
        self._events_queued()

    async def _check_current_password(
        self, account_id: str, password: str, client: str, *, field: str, wrong: str
    ) -> dict[str, Any]:
        """The account, if ``password`` is its password; a guess counted like a login's."""
        account = await self.store.by_id(account_id)
        if account is None:
            raise InvalidCredentials(wrong, field=field)
        attempts_left = await self._count_guess(account["email"], client)
        if not await self.passwords.verify(account["password_hash"], password):
            raise InvalidCredentials(wrong, field=field, attempts_left=attempts_left)
        await self._right_guess(account["email"], client)
        return account

    async def change_password(
        self, account_id: str, current: str, new: str, *, client: str, correlation_id: str | None = None
    ) -> None:
        account = await self._check_current_password(
            account_id, current, client, field="current_password", wrong="Le mot de passe actuel est incorrect.")
        problems = password_problems(new, email=account["email"], display_name=account["display_name"],
                                     local_words=self.settings.password_local_words)
        if problems:
            raise PolicyViolation(problems[0], field="new_password")
        now = self._now()
        entries = self._entries(
            events.PasswordChanged(account_id=account_id, changed_at=now, via="change"),
            subject=account_id, correlation_id=correlation_id,
        )
        if not await self.store.change_password(account_id, account["password_hash"], await self.passwords.hash(new), now, entries):
            raise InvalidCredentials("Le mot de passe a changé entre-temps. Veuillez réessayer.")
        await self.store.revoke_all(account_id)
        self._events_queued()

    # account

    async def delete_account(self, account_id: str, password: str, *, client: str, correlation_id: str | None = None) -> None:
        await self._check_current_password(account_id, password, client, field="password", wrong="Le mot de passe est incorrect.")
        now = self._now()
        entries = self._entries(
            events.AccountDeleted(account_id=account_id, deleted_at=now), subject=account_id, correlation_id=correlation_id
        )
        await self.store.erase(account_id, now, entries)
        self._events_queued()
        # The answer waits for AccountDeleted to be on the broker, then for the services'
        # revocation feeds to read it (20-70 ms measured): the next request made with the
        # account's tokens, right after this answer, is refused.
        deadline = asyncio.get_running_loop().time() + self.settings.deletion_publish_wait_s
        while not await self.store.events_published(account_id):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("account deleted; AccountDeleted not yet published", account_id=account_id)
                return
            await asyncio.sleep(0.02)
        await asyncio.sleep(self.settings.deletion_settle_s)

    async def purge(self) -> dict[str, int]:
        """The retention policy (docs/rgpd.md): accounts never activated or dormant are erased
        as if their owner asked (AccountDeleted tells every service), old tombstones and expired
        refresh tokens are deleted (rate-limit counters go every 30 s: main.py). Idempotent: run by every replica."""
        now, s = self._now(), self.settings
        counts = {"never_activated": 0, "dormant": 0}
        for account_id, reason in await self.store.past_retention(
            pending_before=now - timedelta(days=s.pending_account_retention_days),
            unused_before=now - timedelta(days=s.dormant_account_retention_days),
        ):
            entries = self._entries(
                events.AccountDeleted(account_id=account_id, deleted_at=now, reason=reason),  # type: ignore[arg-type]
                subject=account_id, correlation_id=None,
            )
            if await self.store.erase(account_id, now, entries):
                counts[reason] += 1
        if any(counts.values()):
            self._events_queued()
        counts["tombstones"] = await self.store.purge_tombstones(now - timedelta(days=s.deleted_account_tombstone_days))
        counts["refresh_tokens"] = await self.store.purge_refresh_tokens(now)
        return {k: v for k, v in counts.items() if v}

    async def create_staff(
        self, email: str, display_name: str, role: Role, *, correlation_id: str | None = None
    ) -> str:
        """An agent or admin account, active at once; its owner sets a password from an emailed link."""
        if role == Role.FAMILY:
            raise PolicyViolation("Les comptes famille se créent par l'inscription en ligne.", field="role")
        email = normalise_email(email)
        now = self._now()
        account_id = str(uuid.uuid4())
        document = {
            "_id": account_id, "email": email, "display_name": " ".join(display_name.split()),
            "password_hash": None, "role": role, "state": AccountState.ACTIVE, "created_at": now, "activated_at": now,
        }
        entries = self._entries(
            events.AccountRegistered(account_id=account_id, email=email, display_name=document["display_name"], registered_at=now),
            events.AccountActivated(
                account_id=account_id, email=email, display_name=document["display_name"], activated_at=now, role=role.value
            ),
            subject=account_id, correlation_id=correlation_id,
        )
        try:
            await self.store.insert_account(document, entries)
        except EmailTaken:
            raise AlreadyExists("Un compte existe déjà pour cette adresse.", field="email") from None
        await self._send_password_link(
            document, timedelta(hours=self.settings.staff_invitation_ttl_hours), "staff_invitation", correlation_id
        )
        return account_id

    async def staff_directory(self) -> list[dict[str, Any]]:
        return await self.store.staff()

    async def set_staff_active(self, account_id: str, active: bool, *, by: str) -> dict[str, Any]:
        """Deactivates (no login, refresh tokens revoked, history kept) or reactivates an agent."""
        if account_id == by and not active:
            raise PolicyViolation("Vous ne pouvez pas désactiver votre propre compte.")
        account = await self.store.by_id(account_id)
        if account is None or account.get("role") not in (Role.AGENT, Role.ADMIN):
            raise StaffNotFound("Ce compte d'agent n'existe pas.")
        target = AccountState.ACTIVE if active else AccountState.DEACTIVATED
        source = AccountState.DEACTIVATED if active else AccountState.ACTIVE
        if account["state"] != target:
            if not await self.store.set_staff_state(account_id, source, target, self._now()):
                raise StaffNotFound("Ce compte d'agent n'existe pas ou a changé entre-temps.")
            if not active:
                await self.store.revoke_all(account_id)  # its open sessions end with their access token
        log.info("staff account " + ("reactivated" if active else "deactivated"), account_id=account_id, by=by)
        return {**account, "state": target}

    async def profile(self, account_id: str) -> dict[str, Any] | None:
        return await self.store.by_id(account_id)


KEY_RELOAD_INTERVAL = timedelta(seconds=30)


async def rotate_keys(store: IdentityStore, settings: IdentitySettings, now: datetime) -> tuple[str, list[str]]:
    """Adds a key that signs once every identity instance has reloaded and published it, and
    retires the keys no unexpired token can still be signed with. Nobody is logged out."""
    new = generate_signing_key(settings.key_encryption_secret, now, signs_from=now + 2 * KEY_RELOAD_INTERVAL)
    keys = sorted(await store.signing_keys_list(), key=lambda k: k.signs_from)
    access_ttl = timedelta(minutes=settings.access_token_ttl_minutes)
    # A key stopped signing when its successor started; its tokens die access_ttl later.
    retired = [
        older.kid for older, newer in zip(keys, keys[1:], strict=False) if newer.signs_from + access_ttl + timedelta(minutes=1) < now
    ]
    await store.insert_signing_key(new)
    if retired:
        await store.retire_signing_keys(retired)
    return new.kid, retired


async def load_keyring(store: IdentityStore, settings: IdentitySettings, now: datetime) -> KeyRing:
    """The signing keys, creating the first one on a new installation."""
    keys = await store.signing_keys_list()
    if not keys:
        key = generate_signing_key(settings.key_encryption_secret, now)
        try:
            await store.insert_signing_key(key)
        except Exception:
            pass  # another replica created one at the same moment
        keys = await store.signing_keys_list()
    return KeyRing(keys, settings.key_encryption_secret)
