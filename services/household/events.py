"""Events the household service publishes on `household.dossier.v1`: their models are the contract in
`schemas.contracts.household`; what stays here is the service's own side of publishing them.
"""

from __future__ import annotations
from schemas.contracts.household import (
    TOPIC,
    Address,
    Child,
    Correction,
    SubmittedChild,
    HouseholdSubmitted,
    CorrectionRequested,
    DossierValidated,
    DossierRejected,
)


# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "dossiers"

__all__ = [
    "TOPIC",
    "Address",
    "Child",
    "Correction",
    "SubmittedChild",
    "HouseholdSubmitted",
    "CorrectionRequested",
    "DossierValidated",
    "DossierRejected",
    "OUTBOX_COLLECTION",
]
