"""Contract of the events the enrolment service publishes on `enrolment.enrolment.v1`, keyed by enrolment id
(SectorSchoolsFound: by dossier id), and on `enrolment.school.v1` (a school's capacities), keyed by school id.

They carry ids, the school, the level and the school year; never the child's name, birth date
or address (readers that need them hold their own projection of the household's file).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.kernel.envelope import EventData, event_type

TOPIC = "enrolment.enrolment.v1"
SCHOOL_TOPIC = "enrolment.school.v1"

LevelCode = Literal["TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"]
ReasonCategory = Literal["travail_des_parents", "mode_de_garde", "fratrie", "medical", "autre"]
SchoolYear = Field(pattern=r"^\d{4}-\d{4}$", description="The school year, e.g. \"2027-2028\".")


@event_type
class EnrolmentRequested(EventData):
    """A family asked to enrol a child for a school year. `status` says whether it was confirmed
    at once (an EnrolmentConfirmed follows once the certificate is stored) or waits for an agent,
    and why (`pending_reason`)."""

    event_type = "EnrolmentRequested"
    topic = TOPIC

    enrolment_id: str
    account_id: str
    child_id: str
    school_year: str = SchoolYear
    level: LevelCode
    sector_school_id: str | None = Field(description="The sector school for that level; null when the address is not on the map.")
    requested_school_id: str | None = Field(default=None, description="The school asked for by dérogation, if any.")
    reason_category: ReasonCategory | None = None
    status: Literal["confirmed", "pending_agent"]
    pending_reason: Literal["address_unknown", "no_seat", "derogation"] | None = None
    requested_at: datetime
    mid_year: bool | None = Field(default=None, description=(
        "True: enrolment for the school year in progress (a family moving in mid-year); false: for the next rentrée."))
    outside_town: bool | None = Field(default=None, description=(
        "True: the family's address is outside the town, so no sector school (pending_reason address_unknown)."))


@event_type
class EnrolmentConfirmed(EventData):
    """The child is registered in a school for a level and a year; the certificat d'inscription
    (PDF) is stored and the family can download it."""

    event_type = "EnrolmentConfirmed"
    topic = TOPIC

    enrolment_id: str
    account_id: str
    child_id: str
    school_id: str
    school_name: str
    level: LevelCode
    school_year: str = SchoolYear
    reference: str = Field(description="The enrolment's short reference printed on the certificate, e.g. INS-2027-000123 (a counter per school year; enrolments made before it keep INS-2027-3F2B8C1D).")
    certificate_available: bool = True
    confirmed_at: datetime


@event_type
class EnrolmentRefused(EventData):
    """An agent refused the enrolment, with the reason the family sees (French)."""

    event_type = "EnrolmentRefused"
    topic = TOPIC

    enrolment_id: str
    account_id: str
    child_id: str
    school_year: str = SchoolYear
    reason: str = Field(min_length=1)
    refused_at: datetime
    decided_by: str | None = Field(default=None, description="The agent who refused (a staff account id; names: identity's GET /staff).")
    reference: str | None = Field(default=None, description="The enrolment's short reference, e.g. INS-2027-000123, quoted in the family's email.")


@event_type
class DerogationDecided(EventData):
    """An agent decided an out-of-sector request. Accepted: an EnrolmentConfirmed for the requested
    school follows. Refused: `reason` says why; the enrolment goes on in the sector school."""

    event_type = "DerogationDecided"
    topic = TOPIC

    enrolment_id: str
    account_id: str
    child_id: str
    requested_school_id: str
    decision: Literal["accepted", "refused"]
    reason: str | None = Field(default=None, description="French text for the family; required when refused.")
    decided_at: datetime
    decided_by: str | None = Field(default=None, description="The agent who decided (a staff account id; names: identity's GET /staff).")
    reference: str | None = Field(default=None, description="The enrolment's short reference, e.g. INS-2027-000123, quoted in the family's email.")


class ChildSectorSchool(BaseModel):
    """The sector school a child of a submitted file would get (readers ignore fields they do not know)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    child_id: str
    school_id: str | None = Field(description=(
        "The sector school for the child's level; null when the address is not on the map, the child is not "
        "of school age, or the school named by the map lacks the level (an agent decides)."))


@event_type
class SectorSchoolsFound(EventData):
    """The sector school each child of a file just submitted (or resubmitted) would get for the
    coming school year, from the address declared and the current sector map, before any enrolment
    exists (enrolment opens once the file is validated). Keyed by dossier id on this topic; a later
    one for the same file (a resubmission) replaces it (`submitted_at` orders them)."""

    event_type = "SectorSchoolsFound"
    topic = TOPIC

    dossier_id: str
    account_id: str
    school_year: str = SchoolYear
    children: list[ChildSectorSchool]
    on_map: bool = Field(description="Whether the address is in the town and on the sector map.")
    submitted_at: datetime = Field(description="The HouseholdSubmitted's own time: which submission this answers.")
    found_at: datetime


@event_type
class SchoolCapacityChanged(EventData):
    """The number of seats of a school for a level changed: for one school year (an agent's change),
    or the default every school year has unless it has its own (`school_year` null: a school's
    creation, its default capacities, and each school's first announcement). Written with the
    change itself (the school's or the seat counter's embedded outbox)."""

    event_type = "SchoolCapacityChanged"
    topic = SCHOOL_TOPIC

    school_id: str
    school_name: str
    level: LevelCode
    school_year: str | None = Field(pattern=r"^\d{4}-\d{4}$", description=(
        "The school year the capacity is for, e.g. \"2027-2028\"; null: the default of every school year "
        "without a capacity of its own."))
    capacity: int = Field(ge=0)
    previous_capacity: int | None = Field(default=None, ge=0, description="The capacity before; null when announced for the first time.")
    changed_at: datetime
    changed_by: str | None = Field(default=None, description="The agent who changed it (a staff account id); null for the town's initial data.")
