"""Contract of the events the household service publishes on `household.dossier.v1`, keyed by dossier id.

A dossier is a family's file ("Déclarer mon entourage"): the home address, one or two legal
guardians, the children, and which document proves what. Other services react to its review:
documents (which documents agents may read, which may not be deleted), enrolment (unlock), the
notifier (emails to the family).
"""

from __future__ import annotations

from datetime import date, datetime
from pydantic import BaseModel, ConfigDict, Field

from services.kernel.envelope import EventData, event_type

TOPIC = "household.dossier.v1"

class Part(BaseModel):
    """Shared shape of the nested parts of an event (readers ignore fields they do not know)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Address(Part):
    number: str = Field(description="Street number, with its suffix if any (\"12\", \"12 bis\").")
    street: str = Field(description="Street name as on the sector map, e.g. \"rue des Lilas\".")
    postcode: str = Field(pattern=r"^\d{5}$")
    town: str


class Child(Part):
    child_id: str
    first_name: str
    last_name: str
    birth_date: date


class SubmittedChild(Part):
    """What a submitted file says of a child that another service may need before validation: its
    id and birth date (the level comes from the birth year), not its name."""

    child_id: str
    birth_date: date


class Correction(Part):
    """One thing the family must correct, shown next to the item concerned."""

    item: str = Field(description="What it concerns: a document id, or a field path such as \"address.postcode\".")
    reason: str = Field(description="French text for the family.")


@event_type
class HouseholdSubmitted(EventData):
    """The family submitted (or resubmitted) its file for review by the School Service."""

    event_type = "HouseholdSubmitted"
    topic = TOPIC

    dossier_id: str
    account_id: str
    submitted_at: datetime
    resubmission: bool = False
    document_ids: list[str] = Field(description="Every document attached to the file as submitted.")
    reference: str | None = Field(default=None, description="The file's short reference shown to the family and agents, e.g. MSL-2027-000123.")
    address: Address | None = Field(default=None, description=(
        "The home address as declared (not yet checked): enrolment finds the children's sector schools from it. "
        "Null in events published before it was added."))
    children: list[SubmittedChild] | None = Field(default=None, description=(
        "Each child's id and birth date as declared. Null in events published before it was added."))


@event_type
class CorrectionRequested(EventData):
    """An agent asked the family to correct items, each with its reason."""

    event_type = "CorrectionRequested"
    topic = TOPIC

    dossier_id: str
    account_id: str
    corrections: list[Correction] = Field(min_length=1)
    requested_at: datetime
    reference: str | None = Field(default=None, description="The file's short reference shown to the family and agents, e.g. MSL-2027-000123.")


@event_type
class DossierValidated(EventData):
    """The School Service validated the file: what enrolment needs to unlock each child."""

    event_type = "DossierValidated"
    topic = TOPIC

    dossier_id: str
    account_id: str
    address: Address
    children: list[Child] = Field(min_length=1)
    document_ids: list[str]
    validated_at: datetime
    reference: str | None = Field(default=None, description="The file's short reference shown to the family and agents, e.g. MSL-2027-000123.")


@event_type
class DossierRejected(EventData):
    """The School Service rejected the file, with the reason the family sees."""

    event_type = "DossierRejected"
    topic = TOPIC

    dossier_id: str
    account_id: str
    reason: str = Field(min_length=1)
    rejected_at: datetime
    reference: str | None = Field(default=None, description="The file's short reference shown to the family and agents, e.g. MSL-2027-000123.")
