"""The documents service's reactions to household's review (group ``documents-dossiers`` on
``household.dossier.v1``): the ``submitted_documents`` projection, one row per document attached
to a file under review or validated, ``{_id: document_id, dossier_id, submitted_at}``. A row lets
agents read the (clean) document and makes the owner's delete answer 409.

- ``HouseholdSubmitted``: a row for each of its documents; rows of documents no longer in the file
  are removed.
- ``DossierValidated``: the validated file relies on its documents: rows kept (re-upserted) for
  its document ids, others removed.
- ``CorrectionRequested`` / ``DossierRejected``: the file is no longer under review and the family
  may replace documents: the dossier's rows are removed.

Each effect is the same when applied twice (upserts keyed by document id, deletions by dossier
id), and the kernel consumer drops an event id its group already handled.
"""

from __future__ import annotations

from schemas.contracts import household
from services.documents.store import DocumentsStore
from services.kernel.envelope import CloudEvent
from services.kernel.runtime import ConsumerSpec

DOSSIERS_GROUP = "documents-dossiers"


def dossier_consumer(store: DocumentsStore) -> ConsumerSpec:
    async def submitted(event: CloudEvent[household.HouseholdSubmitted]) -> None:
        d = event.data
        await store.attach_to_dossier(d.dossier_id, d.document_ids, d.submitted_at)

    async def validated(event: CloudEvent[household.DossierValidated]) -> None:
        d = event.data
        await store.attach_to_dossier(d.dossier_id, d.document_ids, d.validated_at)

    async def corrections(event: CloudEvent[household.CorrectionRequested]) -> None:
        await store.release_dossier(event.data.dossier_id)

    async def rejected(event: CloudEvent[household.DossierRejected]) -> None:
        await store.release_dossier(event.data.dossier_id)

    return ConsumerSpec(
        DOSSIERS_GROUP, [household.TOPIC],
        {household.HouseholdSubmitted: submitted, household.DossierValidated: validated,
         household.CorrectionRequested: corrections, household.DossierRejected: rejected},
    )
