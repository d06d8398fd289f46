"""Retention (issue #18, item 8): each service's scheduled purge, run against the real database
server (a scratch database) with its clock moved past each retention period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.enrolment.domain import certificate_key
from services.enrolment.settings import EnrolmentSettings
from services.enrolment.store import EnrolmentStore
from services.enrolment.usecases import EnrolmentService
from services.household.settings import HouseholdSettings
from services.household.store import HouseholdStore
from services.household.usecases import HouseholdService
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.identity.store import IdentityStore
from services.identity.tokens import KeyRing, generate_signing_key
from services.identity.usecases import IdentityService
from services.notifier.settings import NotifierSettings
from services.notifier.store import NotifierStore

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class MovableClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def account(account_id: str, state: str, *, role: str = "family", **dates: datetime) -> dict[str, Any]:
    return {"_id": account_id, "email": f"{account_id}@example.org", "display_name": "Camille Martin", "role": role,
            "state": state, "created_at": START, "password_hash": "x", "outbox": [], **dates}


async def test_identity_erases_never_activated_and_dormant_family_accounts_then_their_tombstones(db: Any) -> None:
    store, clock = IdentityStore(db), MovableClock()
    await store.ensure_indexes()
    settings = IdentitySettings()
    keyring = KeyRing([generate_signing_key("s", START)], "s")
    identity = IdentityService(store, settings, Passwords(8, 1, 1), keyring, clock=clock)
    await db.accounts.insert_many([
        account("pending", "pending_activation"),
        account("dormant", "active", activated_at=START, last_login_at=START),
        account("never-logged-in", "active", activated_at=START),
        account("in-use", "active", activated_at=START),
        account("agent", "active", role="agent", activated_at=START, last_login_at=START),
    ])
    clock.now = START + timedelta(days=settings.pending_account_retention_days - 1)
    assert await identity.purge() == {}
    clock.now = START + timedelta(days=settings.pending_account_retention_days + 1)
    assert await identity.purge() == {"never_activated": 1}
    await store.touch("in-use", START + timedelta(days=400))
    clock.now = START + timedelta(days=settings.dormant_account_retention_days + 1)
    assert await identity.purge() == {"dormant": 2}
    states = {d["_id"]: d["state"] async for d in db.accounts.find({}, {"state": 1})}
    assert states == {"pending": "deleted", "dormant": "deleted", "never-logged-in": "deleted", "in-use": "active", "agent": "active"}
    erased = await db.accounts.find_one({"_id": "dormant"})
    assert "email" not in erased and "display_name" not in erased
    reasons = {e["key"]: e["value"] for d in [erased, await db.accounts.find_one({"_id": "pending"})] for e in d["outbox"]}
    assert b'"reason":"dormant"' in reasons["dormant"] and b'"reason":"never_activated"' in reasons["pending"]
    # The tombstones stay a year (once their AccountDeleted is published), then go.
    await db.accounts.update_many({}, {"$set": {"outbox_pending": False}})
    clock.now += timedelta(days=settings.deleted_account_tombstone_days + 1)
    assert (await identity.purge())["tombstones"] == 3
    assert {d["_id"] async for d in db.accounts.find({}, {"_id": 1})} == {"in-use", "agent"}


async def test_the_notifier_forgets_its_delivery_log_and_recipient_tombstones_after_their_periods(db: Any) -> None:
    store, settings = NotifierStore(db), NotifierSettings()
    await store.ensure_indexes()
    await db.deliveries.insert_many([
        {"_id": "old", "account_id": "a", "created_at": START, "to": "x@example.org"},
        {"_id": "old-unpublished", "account_id": "a", "created_at": START, "outbox_pending": True},
        {"_id": "recent", "account_id": "a", "created_at": START + timedelta(days=300)},
    ])
    await db.recipients.insert_many([{"_id": "gone", "deleted": True, "deleted_at": START}, {"_id": "here", "email": "y@example.org"}])
    later = START + timedelta(days=settings.delivery_log_retention_days + 1)
    assert await store.purge(deliveries_before=later - timedelta(days=settings.delivery_log_retention_days),
                             tombstones_before=later - timedelta(days=settings.recipient_tombstone_days)) == {
        "deliveries": 1, "recipient_tombstones": 1}
    assert {d["_id"] async for d in db.deliveries.find()} == {"old-unpublished", "recent"}
    assert {d["_id"] async for d in db.recipients.find()} == {"here"}


async def test_household_anonymises_a_file_past_its_retention_then_deletes_its_audit(db: Any) -> None:
    store, clock, settings = HouseholdStore(db), MovableClock(), HouseholdSettings()
    await store.ensure_indexes()
    household = HouseholdService(store, clock=clock)
    await db.dossiers.insert_many([
        {"_id": "d-old", "account_id": "a-old", "status": "validated", "updated_at": START, "version": 1, "outbox": [],
         "address": {"street": "rue des Lilas"}, "children": [{"first_name": "Lou"}], "guardians": [], "history": []},
        {"_id": "d-new", "account_id": "a-new", "status": "draft", "updated_at": START + timedelta(days=500), "version": 1,
         "outbox": [], "children": [{"first_name": "Noé"}], "history": []},
    ])
    clock.now = START + timedelta(days=settings.dossier_retention_days + 1)
    assert await household.purge(updated_before=clock.now - timedelta(days=settings.dossier_retention_days),
                                 audit_before=clock.now - timedelta(days=settings.audit_retention_days)) == {"files_anonymised": 1}
    old = await db.dossiers.find_one({"_id": "d-old"})
    assert old["status"] == "erased" and not {"address", "children", "account_id"} & set(old)
    assert (await db.dossiers.find_one({"_id": "d-new"}))["children"] == [{"first_name": "Noé"}]
    clock.now += timedelta(days=settings.audit_retention_days + 1)
    assert await household.purge(updated_before=START, audit_before=clock.now - timedelta(days=settings.audit_retention_days)) == {
        "audits_deleted": 1}
    assert await db.dossiers.find_one({"_id": "d-old"}) is None


class RemovedObjects:
    """Stands in for S3 here (the database is what is under test): records what is removed."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    async def remove(self, key: str) -> None:
        self.removed.append(key)


async def test_enrolment_anonymises_enrolments_years_after_their_school_year_and_ages_out_its_audit(db: Any) -> None:
    store, clock, objects = EnrolmentStore(db), MovableClock(), RemovedObjects()
    settings = EnrolmentSettings()
    enrolment = EnrolmentService(store, objects, settings, clock=clock)  # type: ignore[arg-type]
    child = {"child_id": "c1", "first_name": "Lou", "last_name": "Martin", "birth_date": "2020-03-02"}
    await db.enrolments.insert_many([
        {"_id": "e-2025", "account_id": "a", "school_year": 2025, "status": "confirmed", "child": child, "slot": "c1:2025",
         "certificate": {"key": certificate_key("e-2025")}, "outbox": []},
        {"_id": "e-2026", "account_id": "a", "school_year": 2026, "status": "confirmed", "child": child, "slot": "c1:2026", "outbox": []},
    ])
    await db.trail.insert_many([{"_id": "t-old", "at": START}, {"_id": "t-new", "at": START + timedelta(days=2000)}])
    # The 2025-2026 school year ends on 31 August 2026; kept two full years after: to 31 August 2028.
    clock.now = datetime(2028, 8, 31, 12, tzinfo=UTC)
    assert await enrolment.purge() == {}
    clock.now = datetime(2028, 9, 1, 12, tzinfo=UTC)
    assert await enrolment.purge() == {"enrolments_anonymised": 1}
    gone = await db.enrolments.find_one({"_id": "e-2025"})
    assert gone["account_id"] is None and gone["child"] == {"child_id": None} and gone["school_year"] == 2025
    assert (await db.enrolments.find_one({"_id": "e-2026"}))["child"] == child
    assert objects.removed == [certificate_key("e-2025")]
    clock.now = START + timedelta(days=settings.audit_retention_days + 1)
    assert (await enrolment.purge())["trail_entries"] == 1
    assert {t["_id"] async for t in db.trail.find()} == {"t-new"}
