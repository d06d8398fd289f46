"""Settings of the enrolment service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from datetime import date

from services.kernel.settings import CommonSettings


class EnrolmentSettings(CommonSettings):
    service_name: str = "enrolment"
    http_port: int = 8105
    public_prefix: str = "/api/enrolment"
    # Retention (docs/rgpd.md): an enrolment and its certificate, this many full years after its
    # school year ended; the agents' audit trail; the projection of validated files.
    enrolment_retention_years: int = 2
    audit_retention_days: float = 5 * 365
    dossier_projection_days: float = 2 * 365

    # The enrolment campaigns ("MM-DD"): the school year in progress takes enrolments (a family
    # moving in mid-year) until this day inclusive; the next rentrée's from this day on. Both are
    # offered in between. September to December fall in the school year's first calendar year.
    enrolment_current_year_until: str = "06-30"
    enrolment_next_year_opens: str = "09-01"
    # Pretend today is this date (tests, rehearsals); None: the real date.
    enrolment_today: date | None = None

    # Printed on the certificate; an address is in the town (and on its sector map) when its town
    # is this one and its postcode one of these (empty: town_postcode alone).
    town_name: str = "Montclair-sur-Loire"
    town_postcode: str = "45190"
    town_postcodes: list[str] = []
    # The certificate's signature block: « Pour le Maire et par délégation, <title>, <name> ».
    certificate_signatory_name: str = "Claire Vasseur"
    certificate_signatory_title: str = "L'adjointe au Maire chargée de l'éducation"

    # Presigned certificate links: signed for the host the client uses, valid at most 5 minutes.
    public_endpoint: str = "127.0.0.1:9000"
    public_secure: bool = False
    download_link_ttl_s: int = 300
    s3_server_side_encryption: bool = True

    # Reference data loaded at start when the database has none (schools.json, sector_map.csv).
    load_sample_data: bool = True
    # Certificates are rendered after the confirmation's response, by a worker woken at once; it
    # also looks for due certificates this often (another replica's, a crash's, a failure's).
    certificate_retry_interval_s: float = 10.0
    # A render is leased to one worker this long; a worker that died or failed leaves it to be
    # taken again once the lease is over (so this is also the delay before a failed one is retried).
    certificate_lease_s: float = 30.0
    # Seats taken for an enrolment that was never written (a crash in between) are given back by
    # a repair pass this often, once their hold is older than the grace (no request lasts that long).
    seat_repair_interval_s: float = 300.0
    seat_hold_grace_s: float = 600.0

    @property
    def current_year_until(self) -> tuple[int, int]:
        return _month_day(self.enrolment_current_year_until)

    @property
    def next_year_opens(self) -> tuple[int, int]:
        return _month_day(self.enrolment_next_year_opens)

    def verification_url(self, code: str) -> str:
        """The public page (web, through the gateway) where a school director checks a certificate."""
        return f"{self.public_base_url.rstrip('/')}/verifier/{code}"

    @property
    def postcodes(self) -> list[str]:
        return self.town_postcodes or [self.town_postcode]


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)
