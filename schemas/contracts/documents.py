"""Contract of the events the documents service publishes on `documents.document.v1`, keyed by document id.

Each carries the owner's account id and the document's kind, so household can project which
document proves what without calling this service. Nothing here names the file or its content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from services.kernel.envelope import EventData, event_type

TOPIC = "documents.document.v1"

Kind = Literal["child_identity", "guardian_identity", "proof_of_address", "sworn_statement", "other"]


@event_type
class DocumentUploaded(EventData):
    """A family stored a document; it waits for its virus scan (not visible to agents yet)."""

    event_type = "DocumentUploaded"
    topic = TOPIC

    document_id: str
    account_id: str
    kind: Kind
    content_type: Literal["application/pdf", "image/jpeg", "image/png"] = Field(
        description="What is stored, decided from the content (a HEIC photo is stored as JPEG)."
    )
    size: int = Field(ge=1, description="Bytes stored.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the stored bytes.")
    uploaded_at: datetime


@event_type
class DocumentScanned(EventData):
    """The virus scan's verdict. `clean`: agents may read it once its file is submitted.
    `infected`: the object was deleted and `reason` tells the family why (in French).
    `quarantined` (« à vérifier »): the scan reached a limit or could not finish, so the file is
    not known to be harmless; it is kept but no one can open it, and `reason` says so."""

    event_type = "DocumentScanned"
    topic = TOPIC

    document_id: str
    account_id: str
    kind: Kind
    result: Literal["clean", "infected", "quarantined"]
    reason: str | None = Field(default=None, description="French text for the family when infected or quarantined.")
    scanned_at: datetime


@event_type
class DocumentDeleted(EventData):
    """The document's object is gone: deleted by its owner, by the account's erasure, or at the end
    of its retention period. Projections forget it."""

    event_type = "DocumentDeleted"
    topic = TOPIC

    document_id: str
    account_id: str
    kind: Kind
    reason: Literal["owner", "account_erased", "retention"]
    deleted_at: datetime
