"""What the household service reacts to. Each handler is idempotent by construction (an upsert
keyed by the account or document id whose effect is the same when applied twice, a later verdict
never undone by an older event), on top of the kernel's dedup by event id.

- ``household-accounts`` on ``identity.account.v1``: ``AccountActivated`` (who may create a file).
- ``household-erasure`` on ``identity.account.v1``: ``AccountDeleted`` (erase the file).
- ``household-documents`` on ``documents.document.v1``: ``DocumentUploaded`` (owner and kind),
  ``DocumentScanned`` (clean / infected), ``DocumentDeleted``.
"""

from __future__ import annotations

from schemas.contracts import documents as documents_events
from schemas.contracts import identity as identity_events
from services.household.usecases import HouseholdService
from services.kernel.envelope import CloudEvent
from services.kernel.runtime import ConsumerSpec

ACCOUNTS_GROUP = "household-accounts"
ERASURE_GROUP = "household-erasure"
DOCUMENTS_GROUP = "household-documents"


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

    return [
        ConsumerSpec(ACCOUNTS_GROUP, [identity_events.TOPIC], {identity_events.AccountActivated: account_activated}),
        ConsumerSpec(ERASURE_GROUP, [identity_events.TOPIC], {identity_events.AccountDeleted: account_deleted}),
        ConsumerSpec(
            DOCUMENTS_GROUP, [documents_events.TOPIC],
            {documents_events.DocumentUploaded: uploaded, documents_events.DocumentScanned: scanned,
             documents_events.DocumentDeleted: deleted},
        ),
    ]
