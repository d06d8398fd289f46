"""Settings of the insights service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from schemas.contracts import documents, enrolment, household, identity, insights
from services.kernel.settings import CommonSettings


class InsightsSettings(CommonSettings):
    service_name: str = "insights"
    http_port: int = 8106
    public_prefix: str = "/api/insights"

    # The faust app id: also its consumer group and the prefix of its changelog topics
    # ("insights-<table>-changelog"); schemas/topics.yaml grants the principal exactly these.
    app_id: str = "insights"
    # Where faust keeps its tables between changelog writes: memory, rebuilt from the changelog
    # topics at every start (no local state to lose or to back up).
    table_store: str = "memory://"
    # The source topics (tests and benchmarks point a second app at their own copies).
    account_topic: str = identity.TOPIC
    dossier_topic: str = household.TOPIC
    document_topic: str = documents.TOPIC
    enrolment_topic: str = enrolment.TOPIC
    school_topic: str = enrolment.SCHOOL_TOPIC
    overdue_topic: str = insights.DOSSIER_TOPIC
    figures_topic: str = insights.CAMPAIGN_TOPIC

    timezone: str = "Europe/Paris"
    # Days a per-day window of files submitted and decided is kept (faust drops older windows).
    day_windows_kept: int = 400
    # A submitted file waiting longer than this many working days (weekends and French public
    # holidays excluded) is overdue: one DossierOverdue per file, waiting spell and threshold.
    overdue_working_days: int = 5
    overdue_check_interval_s: float = 60.0
    # The first check waits this long after the tables are rebuilt, so that the marks of the
    # DossierOverdue events sent just before a restart are read back first (no second event).
    overdue_first_check_delay_s: float = 15.0
    # CampaignFigures snapshots on insights.campaign.v1 this often.
    figures_interval_s: float = 600.0
    campaign: str = "montclair-sur-loire"
