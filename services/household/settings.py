"""Settings of the household service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class HouseholdSettings(CommonSettings):
    service_name: str = "household"
    http_port: int = 8102
    public_prefix: str = "/api/household"
    # Retention (docs/rgpd.md): a file unchanged this long is anonymised; an anonymised file's
    # audit (decisions, dates, agents) is kept this long after, then deleted.
    dossier_retention_days: float = 2 * 365
    audit_retention_days: float = 5 * 365
    # The documents service's API, read on behalf of an agent for download links.
    documents_url: str = "http://127.0.0.1:8103"
    # The town's code at the head of each file's short reference (« MSL-2027-000123 »).
    reference_prefix: str = "MSL"
    # How often the queue's totals are brought up to date for files a stopped process left
    # uncounted (each write counts its own file at once; this only finishes interrupted ones).
    count_settle_interval_s: float = 30
