"""Database access of the identity service (motor). Every write that causes events carries
them in the same single-document update (the embedded outbox)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from services.identity.domain import AccountState, LinkStatus, OneTimeLink
from services.identity.tokens import SigningKey
from services.kernel.mongo import Database, is_duplicate_key, update_and_read
from services.kernel.outbox import new_document_with_events, with_events

ACCOUNTS = "accounts"
REFRESH_TOKENS = "refresh_tokens"
RATE_LIMITS = "rate_limits"
SIGNING_KEYS = "signing_keys"
# Where a reset or a resend for an address without an account writes its link and event, so
# both answers do the same database work; nothing there is ever read or relayed.
TIMING_DECOYS = "timing_decoys"
DECOY_ID = "decoy"
KEEP_LINKS = 5  # a resend adds a link without killing the earlier ones still valid


class EmailTaken(Exception):
    pass


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.accounts = db[ACCOUNTS]
        self.refresh_tokens = db[REFRESH_TOKENS]
        self.rate_limits = db[RATE_LIMITS]
        self.signing_keys = db[SIGNING_KEYS]
        self.timing_decoys = db[TIMING_DECOYS]

    async def ensure_indexes(self) -> None:
        await self.accounts.create_index("email", unique=True, sparse=True)
        for field in ("activation_links.hash", "used_activation_hashes", "reset_links.hash", "used_reset_hashes"):
            await self.accounts.create_index(field)
        for field in ("activation_links.hash", "reset_links.hash"):
            await self.timing_decoys.create_index(field)  # the same index upkeep as a real link
        await self.refresh_tokens.create_index("family")
        await self.refresh_tokens.create_index("account_id")
        await self.rate_limits.create_index("scope", sparse=True)

    # accounts

    async def insert_account(self, document: dict[str, Any], events: list[dict[str, Any]]) -> None:
        try:
            await self.accounts.insert_one(new_document_with_events(document, events))
        except Exception as exc:
            if is_duplicate_key(exc):
                raise EmailTaken from exc
            raise

    async def by_email(self, email: str) -> dict[str, Any] | None:
        return await self.accounts.find_one({"email": email, "state": {"$ne": AccountState.DELETED}})

    async def by_id(self, account_id: str) -> dict[str, Any] | None:
        return await self.accounts.find_one({"_id": account_id, "state": {"$ne": AccountState.DELETED}})

    async def staff(self) -> list[dict[str, Any]]:
        """Agents and admins, active or deactivated (deactivated ones still name their decisions)."""
        cursor = self.accounts.find(
            {"role": {"$in": ["agent", "admin"]}, "state": {"$ne": AccountState.DELETED}},
            {"email": 1, "display_name": 1, "role": 1, "state": 1, "created_at": 1, "deactivated_at": 1},
        ).sort("display_name", 1)
        return [a async for a in cursor]

    async def set_staff_state(self, account_id: str, from_state: str, to_state: str, now: datetime) -> bool:
        """Switches a staff account between active and deactivated, only from the state read."""
        changes: dict[str, Any] = {"$set": {"state": to_state}}
        if to_state == AccountState.DEACTIVATED:
            changes["$set"]["deactivated_at"] = now
        else:
            changes["$unset"] = {"deactivated_at": ""}
        result = await self.accounts.update_one(
            {"_id": account_id, "role": {"$in": ["agent", "admin"]}, "state": from_state}, changes)
        return result.modified_count == 1

    async def append_events(self, account_id: str, events: list[dict[str, Any]]) -> None:
        await self.accounts.update_one({"_id": account_id}, with_events({"$set": {}}, events))

    async def add_activation_link(self, account_id: str, link: OneTimeLink, events: list[dict[str, Any]]) -> bool:
        result = await self.accounts.update_one(
            {"_id": account_id, "state": AccountState.PENDING_ACTIVATION},
            with_events({"$push": {"activation_links": {"$each": [asdict(link)], "$slice": -KEEP_LINKS}}}, events),
        )
        return result.modified_count == 1

    async def link_status(self, kind: str, link_hash: str, now: datetime) -> tuple[LinkStatus, dict[str, Any] | None]:
        """Where a link stands; ``kind`` is "activation" or "reset"."""
        account = await self.accounts.find_one({f"{kind}_links.hash": link_hash, "state": {"$ne": AccountState.DELETED}})
        if account is not None:
            link = next(l for l in account[f"{kind}_links"] if l["hash"] == link_hash)
            return OneTimeLink(**link).status_at(now), account
        used = await self.accounts.find_one({f"used_{kind}_hashes": link_hash}, {"_id": 1, "state": 1})
        if used is not None and used.get("state") != AccountState.DELETED:
            return LinkStatus.USED, used
        return LinkStatus.UNKNOWN, None

    async def activate(
        self, account_id: str, link_hash: str, all_hashes: list[str], now: datetime, events: list[dict[str, Any]]
    ) -> bool:
        """Activates with a still-valid link; False if it was used or expired meanwhile. Every
        link of the account is remembered as used, so an older email's link says so too."""
        result = await self.accounts.update_one(
            {
                "_id": account_id,
                "state": AccountState.PENDING_ACTIVATION,
                "activation_links": {"$elemMatch": {"hash": link_hash, "expires_at": {"$gt": now}}},
            },
            with_events(
                {
                    "$set": {"state": AccountState.ACTIVE, "activated_at": now},
                    "$unset": {"activation_links": ""},
                    "$push": {"used_activation_hashes": {"$each": all_hashes}},
                },
                events,
            ),
        )
        return result.modified_count == 1

    async def write_decoy(self, kind: str, link: OneTimeLink, events: list[dict[str, Any]]) -> None:
        """The write ``add_activation_link`` / ``add_reset_link`` would make, on the decoy
        document: a link (kept to the same few) and the events, blanked to the same size and
        never relayed. The key is blanked too: for a resend to an account already active it is
        that account's id, which this document would otherwise keep past the account's erasure."""
        blanked = [{**e, "key": "0" * len(e["key"] or ""), "value": bytes(len(e["value"]))} for e in events]
        await self.timing_decoys.update_one(
            {"_id": DECOY_ID},
            {"$push": {f"{kind}_links": {"$each": [asdict(link)], "$slice": -KEEP_LINKS},
                       "events": {"$each": blanked, "$slice": -KEEP_LINKS}}},
            upsert=True,
        )

    async def add_reset_link(self, account_id: str, link: OneTimeLink, events: list[dict[str, Any]]) -> None:
        await self.accounts.update_one(
            {"_id": account_id, "state": {"$ne": AccountState.DELETED}},
            with_events({"$push": {"reset_links": {"$each": [asdict(link)], "$slice": -KEEP_LINKS}}}, events),
        )

    async def reset_password(
        self, account_id: str, link_hash: str, password_hash: str, now: datetime, events: list[dict[str, Any]]
    ) -> bool:
        """Sets the password with a still-valid reset link and consumes every reset link."""
        result = await self.accounts.update_one(
            {
                "_id": account_id,
                "state": {"$ne": AccountState.DELETED},
                "reset_links": {"$elemMatch": {"hash": link_hash, "expires_at": {"$gt": now}}},
            },
            with_events(
                {
                    "$set": {"password_hash": password_hash, "password_changed_at": now, "reset_links": []},
                    "$push": {"used_reset_hashes": link_hash},
                },
                events,
            ),
        )
        return result.modified_count == 1

    async def change_password(
        self, account_id: str, old_hash: str, new_hash: str, now: datetime, events: list[dict[str, Any]]
    ) -> bool:
        """Compare-and-set on the hash, so two concurrent changes cannot both win."""
        result = await self.accounts.update_one(
            {"_id": account_id, "password_hash": old_hash, "state": AccountState.ACTIVE},
            with_events({"$set": {"password_hash": new_hash, "password_changed_at": now, "reset_links": []}}, events),
        )
        return result.modified_count == 1

    async def rehash_password(self, account_id: str, old_hash: str, new_hash: str) -> None:
        await self.accounts.update_one({"_id": account_id, "password_hash": old_hash}, {"$set": {"password_hash": new_hash}})

    async def erase(self, account_id: str, now: datetime, events: list[dict[str, Any]]) -> bool:
        """RGPD erasure: keep only a tombstone (id, state, dates) carrying the AccountDeleted event."""
        result = await self.accounts.update_one(
            {"_id": account_id, "state": {"$ne": AccountState.DELETED}},
            with_events(
                {
                    "$set": {"state": AccountState.DELETED, "deleted_at": now},
                    "$unset": {
                        "email": "", "display_name": "", "password_hash": "", "activation_links": "",
                        "reset_links": "", "used_activation_hashes": "", "used_reset_hashes": "",
                    },
                },
                events,
            ),
        )
        if result.modified_count == 1:
            await self.refresh_tokens.delete_many({"account_id": account_id})
        return result.modified_count == 1

    async def touch(self, account_id: str, now: datetime) -> None:
        """The account was used (a login or a refresh): it is not dormant."""
        await self.accounts.update_one({"_id": account_id}, {"$set": {"last_login_at": now}})

    async def past_retention(self, *, pending_before: datetime, unused_before: datetime, limit: int = 200) -> list[tuple[str, str]]:
        """(account id, reason) of accounts to erase: never activated since ``pending_before``;
        family accounts last used (or, never used, activated) before ``unused_before``. Three
        queries rather than one $or, which the local database answers by a full scan."""
        found = [
            (d["_id"], "never_activated")
            async for d in self.accounts.find(
                {"state": AccountState.PENDING_ACTIVATION, "created_at": {"$lt": pending_before}}, {"_id": 1}).limit(limit)
        ]
        family_active = {"state": AccountState.ACTIVE, "role": "family"}
        for query in ({"last_login_at": {"$lt": unused_before}},
                      {"last_login_at": {"$exists": False}, "activated_at": {"$lt": unused_before}}):
            found += [(d["_id"], "dormant") async for d in self.accounts.find({**family_active, **query}, {"_id": 1}).limit(limit)]
        return found

    async def purge_tombstones(self, deleted_before: datetime) -> int:
        result = await self.accounts.delete_many(
            {"state": AccountState.DELETED, "deleted_at": {"$lt": deleted_before}, "outbox_pending": {"$ne": True}})
        return result.deleted_count

    async def purge_refresh_tokens(self, now: datetime) -> int:
        result = await self.refresh_tokens.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count

    async def events_published(self, account_id: str) -> bool:
        """True once the relay has published every event queued on the account."""
        doc = await self.accounts.find_one({"_id": account_id}, {"outbox_pending": 1})
        return doc is None or not doc.get("outbox_pending")

    # refresh tokens: one document per token, hashed; a login starts a family (a chain)

    async def insert_refresh_token(
        self, token_hash: str, *, family: str, account_id: str, role: str, now: datetime, ttl: timedelta
    ) -> None:
        await self.refresh_tokens.insert_one(
            {
                "_id": token_hash, "family": family, "account_id": account_id, "role": role,
                "created_at": now, "expires_at": now + ttl, "used": False, "revoked": False,
            }
        )

    async def use_refresh_token(self, token_hash: str, now: datetime) -> tuple[str, dict[str, Any] | None]:
        """Marks the token used; returns ("ok", doc), ("reused", doc) or ("invalid", None)."""
        doc = await update_and_read(
            self.refresh_tokens,
            {"_id": token_hash, "used": False, "revoked": False, "expires_at": {"$gt": now}},
            {"$set": {"used": True, "used_at": now}},
        )
        if doc is not None:
            return "ok", doc
        known = await self.refresh_tokens.find_one({"_id": token_hash})
        if known is not None and known["used"] and not known["revoked"]:
            return "reused", known
        return "invalid", None

    async def revoke_family(self, family: str) -> None:
        await self.refresh_tokens.update_many({"family": family}, {"$set": {"revoked": True}})

    async def revoke_all(self, account_id: str) -> None:
        await self.refresh_tokens.update_many({"account_id": account_id}, {"$set": {"revoked": True}})

    # rate limits: fixed windows, one counter document per (key, window)

    @staticmethod
    def _window(key: str, window: timedelta, now: datetime) -> tuple[str, datetime]:
        seconds = int(window.total_seconds())
        start = int(now.timestamp()) // seconds * seconds
        return f"{key}:{start}", datetime.fromtimestamp(start + seconds, tz=now.tzinfo)

    async def hit(self, key: str, window: timedelta, now: datetime, *, scope: str | None = None) -> tuple[int, datetime]:
        """Counts one attempt; returns the count in the current window and when it ends.
        ``scope`` (an account's email hash) lets ``clear_limits`` find the account's counters."""
        counter, ends = self._window(key, window, now)
        # The count read back may include a concurrent attempt's: it errs on the side of limiting.
        doc = await update_and_read(
            self.rate_limits,
            {"_id": counter},
            {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": ends, **({"scope": scope} if scope else {})}},
            upsert=True,
        )
        return int(doc["count"]) if doc else 1, ends

    async def unhit(self, key: str, window: timedelta, now: datetime) -> None:
        """Takes back one attempt of the current window (one that turned out not to count)."""
        counter, _ = self._window(key, window, now)
        await self.rate_limits.update_one({"_id": counter, "count": {"$gt": 0}}, {"$inc": {"count": -1}})

    async def clear_limits(self, scope: str) -> None:
        await self.rate_limits.delete_many({"scope": scope})

    async def purge_rate_limits(self, now: datetime) -> None:
        await self.rate_limits.delete_many({"expires_at": {"$lt": now}})

    # signing keys

    async def signing_keys_list(self) -> list[SigningKey]:
        return [
            SigningKey(
                kid=d["_id"], private_pem=d["private_pem"], public_jwk=d["public_jwk"],
                created_at=d["created_at"], signs_from=d["signs_from"],
            )
            async for d in self.signing_keys.find({"retired": {"$ne": True}})
        ]

    async def insert_signing_key(self, key: SigningKey) -> None:
        await self.signing_keys.insert_one(
            {
                "_id": key.kid, "private_pem": key.private_pem, "public_jwk": key.public_jwk,
                "created_at": key.created_at, "signs_from": key.signs_from,
            }
        )

    async def retire_signing_keys(self, kids: list[str]) -> None:
        await self.signing_keys.update_many({"_id": {"$in": kids}}, {"$set": {"retired": True}})
