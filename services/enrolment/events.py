"""Events the enrolment service publishes on `enrolment.enrolment.v1`: their models are the contract in
`schemas.contracts.enrolment`; what stays here is the service's own side of publishing them.
"""

from __future__ import annotations
from schemas.contracts.enrolment import (
    TOPIC,
    LevelCode,
    ReasonCategory,
    EnrolmentRequested,
    EnrolmentConfirmed,
    EnrolmentRefused,
    DerogationDecided,
)


# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "enrolments"

__all__ = [
    "TOPIC",
    "LevelCode",
    "ReasonCategory",
    "EnrolmentRequested",
    "EnrolmentConfirmed",
    "EnrolmentRefused",
    "DerogationDecided",
    "OUTBOX_COLLECTION",
]
