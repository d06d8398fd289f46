"""What the household service reacts to. Each handler is idempotent by construction (an upsert
keyed by the account or document id whose effect is the same when applied twice, a later verdict
never undone by an older event), so the three projection groups keep no processed event ids
(``idempotent_handlers``: two database commands a batch saved); the erasure group, whose
handler writes the file's erasure, keeps the kernel's dedup by event id.

- ``household-accounts`` on ``identity.account.v1``: ``AccountActivated`` (who may create a file).
- ``household-erasure`` on ``identity.account.v1``: ``AccountDeleted`` (erase the file).
- ``household-documents`` on ``documents.document.v1``: ``DocumentUploaded`` (owner and kind),
  ``DocumentScanned`` (clean / infected), ``DocumentDeleted``.
- ``household-enrolments`` on ``enrolment.enrolment.v1``: ``EnrolmentRequested``,
  ``DerogationDecided``, ``EnrolmentConfirmed``, ``EnrolmentRefused``: the school each child of a
  file is enrolled in or asks for (the queue's « école » filter). An enrolment's events rank
  (requested, then dérogation decided, then confirmed or refused): an older one replayed late
  never undoes a later one. ``SectorSchoolsFound`` (a file just submitted): the sector school each
  child would get, a rank-0 state a real enrolment of that child always overrides.
"""

from __future__ import annotations

from schemas.contracts import documents as documents_events
from schemas.contracts import enrolment as enrolment_events
from schemas.contracts import identity as identity_events
from services.household.usecases import HouseholdService
from services.kernel.envelope import CloudEvent
from services.kernel.runtime import ConsumerSpec

ACCOUNTS_GROUP = "household-accounts"
ERASURE_GROUP = "household-erasure"
DOCUMENTS_GROUP = "household-documents"
ENROLMENTS_GROUP = "household-enrolments"


def consumer_specs(household: HouseholdService) -> list[ConsumerSpec]:
    store = household.store

    async def account_activated(event: CloudEvent[identity_events.AccountActivated]) -> None:
        # Staff accounts (agent, admin) have no family file; older events carry no role: family.
        if getattr(event.data, "role", "family") != "family":
            return
        await store.account_activated(event.data.account_id, event.data.activated_at, event.data.email)

    async def account_deleted(event: CloudEvent[identity_events.AccountDeleted]) -> None:
        await household.erase_account(event.data.account_id, event.data.deleted_at)

    async def uploaded(event: CloudEvent[documents_events.DocumentUploaded]) -> None:
        d = event.data
        await store.document_uploaded(d.document_id, d.account_id, d.kind)

    async def scanned(event: CloudEvent[documents_events.DocumentScanned]) -> None:
        d = event.data
        await store.document_scanned(d.document_id, d.account_id, d.kind, d.result)

    async def deleted(event: CloudEvent[documents_events.DocumentDeleted]) -> None:
        d = event.data
        await store.document_deleted(d.document_id, d.account_id, d.kind)

    async def enrolment_requested(event: CloudEvent[enrolment_events.EnrolmentRequested]) -> None:
        d = event.data
        # A dérogation's file belongs to the school asked for while it is decided.
        await store.enrolment_seen(d.enrolment_id, d.account_id, d.child_id, rank=1, state="requested",
                                   school_id=d.requested_school_id or d.sector_school_id, sector_school_id=d.sector_school_id)

    async def derogation_decided(event: CloudEvent[enrolment_events.DerogationDecided]) -> None:
        d = event.data
        if d.decision == "refused":
            await store.derogation_refused(d.enrolment_id, d.account_id, d.child_id)
        else:  # an EnrolmentConfirmed for that school follows
            await store.enrolment_seen(d.enrolment_id, d.account_id, d.child_id, rank=2, state="requested",
                                       school_id=d.requested_school_id)

    async def enrolment_confirmed(event: CloudEvent[enrolment_events.EnrolmentConfirmed]) -> None:
        d = event.data
        await store.enrolment_seen(d.enrolment_id, d.account_id, d.child_id, rank=3, state="confirmed", school_id=d.school_id)

    async def enrolment_refused(event: CloudEvent[enrolment_events.EnrolmentRefused]) -> None:
        d = event.data
        await store.enrolment_seen(d.enrolment_id, d.account_id, d.child_id, rank=3, state="refused")

    async def sector_schools_found(event: CloudEvent[enrolment_events.SectorSchoolsFound]) -> None:
        d = event.data
        await store.sector_schools_found(d.account_id, [(c.child_id, c.school_id) for c in d.children], d.submitted_at)

    return [
        ConsumerSpec(ACCOUNTS_GROUP, [identity_events.TOPIC], {identity_events.AccountActivated: account_activated},
                     idempotent_handlers=True),
        ConsumerSpec(ERASURE_GROUP, [identity_events.TOPIC], {identity_events.AccountDeleted: account_deleted}),
        ConsumerSpec(
            DOCUMENTS_GROUP, [documents_events.TOPIC],
            {documents_events.DocumentUploaded: uploaded, documents_events.DocumentScanned: scanned,
             documents_events.DocumentDeleted: deleted},
            idempotent_handlers=True,
        ),
        ConsumerSpec(
            ENROLMENTS_GROUP, [enrolment_events.TOPIC],
            {enrolment_events.EnrolmentRequested: enrolment_requested, enrolment_events.DerogationDecided: derogation_decided,
             enrolment_events.EnrolmentConfirmed: enrolment_confirmed, enrolment_events.EnrolmentRefused: enrolment_refused,
             enrolment_events.SectorSchoolsFound: sector_schools_found},
            idempotent_handlers=True,
        ),
    ]
