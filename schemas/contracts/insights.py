"""Contract of the events the insights service publishes.

- `insights.dossier.v1`, keyed by dossier id: `DossierOverdue`, a file waiting for the School
  Service longer than a threshold of working days (once per file, waiting spell and threshold).
- `insights.campaign.v1`, keyed by the campaign name: `CampaignFigures`, open aggregate figures of
  the campaign for other city systems. Counts only, never a person; a count below 5 is published
  as the string "<5" so that no small group can be singled out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.kernel.envelope import EventData, event_type

DOSSIER_TOPIC = "insights.dossier.v1"
CAMPAIGN_TOPIC = "insights.campaign.v1"
TOPIC = CAMPAIGN_TOPIC

SMALL_COUNT = "<5"
# A published count: the number itself from 5 up, "<5" below.
OpenCount = int | Literal["<5"]


class Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


@event_type
class DossierOverdue(EventData):
    """A submitted file has waited for an agent's decision longer than a threshold of working days
    (weekends and French public holidays excluded). Emitted once per file, waiting spell and threshold;
    the spell starts again when the family resubmits."""

    event_type = "DossierOverdue"
    topic = DOSSIER_TOPIC

    dossier_id: str
    waiting_since: datetime = Field(description="When the file was (re)submitted: the start of this waiting spell.")
    working_days_waiting: int = Field(ge=0, description="Whole working days waited when detected (Paris calendar).")
    threshold_working_days: int = Field(ge=1, description="The threshold crossed (setting ECP_OVERDUE_WORKING_DAYS).")
    detected_at: datetime


class StatusCounts(Part):
    submitted: OpenCount
    corrections_requested: OpenCount
    validated: OpenCount
    rejected: OpenCount


class Funnel(Part):
    """Families at each step of the journey, each counted at the furthest step it reached or beyond."""

    registered: OpenCount
    activated: OpenCount
    file_started: OpenCount = Field(description="Uploaded a first supporting document.")
    submitted: OpenCount
    validated: OpenCount
    enrolled: OpenCount


class SchoolLevelFigures(Part):
    school_id: str
    level: str
    school_year: str
    requested: OpenCount = Field(description="Enrolments asked for this school (sector school, or asked by dérogation).")
    confirmed: OpenCount
    waiting: OpenCount = Field(description="Waiting for an agent's decision.")
    derogations_asked: OpenCount
    derogations_granted: OpenCount
    capacity: int | None = Field(default=None, ge=0, description=(
        "Seats of the level that school year (enrolment's SchoolCapacityChanged), null when not announced; "
        "published as is: a number of seats, not of people."))


@event_type
class CampaignFigures(EventData):
    """A snapshot of the campaign's open figures (counts only; "<5" for any count below 5)."""

    event_type = "CampaignFigures"
    topic = CAMPAIGN_TOPIC

    campaign: str = Field(description="The campaign's name (the town's), also the message key.")
    generated_at: datetime
    files_by_status: StatusCounts
    overdue_files: OpenCount
    funnel: Funnel
    schools: list[SchoolLevelFigures]
