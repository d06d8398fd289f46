"""Events the enrolment service publishes on `enrolment.enrolment.v1` and `enrolment.school.v1`: their models are the contract in
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
    SCHOOL_TOPIC,
    SchoolCapacityChanged,
    ChildSectorSchool,
    SectorSchoolsFound,
)


# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "enrolments"
# A school's default capacities and each year's seat counter carry their SchoolCapacityChanged.
CAPACITY_OUTBOX_COLLECTIONS = ["schools", "seats"]
# What a submitted file's children would get (SectorSchoolsFound), one document per file.
SECTOR_OUTBOX_COLLECTION = "sector_findings"

__all__ = [
    "TOPIC",
    "LevelCode",
    "ReasonCategory",
    "EnrolmentRequested",
    "EnrolmentConfirmed",
    "EnrolmentRefused",
    "DerogationDecided",
    "SCHOOL_TOPIC",
    "SchoolCapacityChanged",
    "ChildSectorSchool",
    "SectorSchoolsFound",
    "OUTBOX_COLLECTION",
    "CAPACITY_OUTBOX_COLLECTIONS",
    "SECTOR_OUTBOX_COLLECTION",
]
