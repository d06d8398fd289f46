"""Events the documents service publishes on `documents.document.v1`: their models are the contract in
`schemas.contracts.documents`; what stays here is the service's own side of publishing them.
"""

from __future__ import annotations
from schemas.contracts.documents import (
    TOPIC,
    Kind,
    DocumentUploaded,
    DocumentScanned,
    DocumentDeleted,
)


# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "documents"

__all__ = [
    "TOPIC",
    "Kind",
    "DocumentUploaded",
    "DocumentScanned",
    "DocumentDeleted",
    "OUTBOX_COLLECTION",
]
