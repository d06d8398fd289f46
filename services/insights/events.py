"""What the insights service publishes: DossierOverdue (insights.dossier.v1) and CampaignFigures
(insights.campaign.v1), as CloudEvents built from the domain's figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.contracts.insights import CampaignFigures, DossierOverdue
from services.insights.domain import Overdue
from services.kernel.envelope import CloudEvent, new_event

SOURCE = "/services/insights"


def dossier_overdue(overdue: Overdue, now: datetime) -> CloudEvent[DossierOverdue]:
    data = DossierOverdue(dossier_id=overdue.dossier_id, waiting_since=overdue.waiting_since,
                          working_days_waiting=overdue.working_days_waiting,
                          threshold_working_days=overdue.threshold_working_days, detected_at=now)
    return new_event(data, source=SOURCE, subject=overdue.dossier_id, event_id=overdue.event_id, time=now)


def campaign_figures(figures: dict[str, Any]) -> CloudEvent[CampaignFigures]:
    data = CampaignFigures.model_validate(figures)
    return new_event(data, source=SOURCE, subject=data.campaign, time=data.generated_at)
