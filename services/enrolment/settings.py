"""Settings of the enrolment service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from datetime import date

from services.kernel.settings import CommonSettings


class EnrolmentSettings(CommonSettings):
    service_name: str = "enrolment"
    http_port: int = 8105
    public_prefix: str = "/api/enrolment"

    # Enrolments are for September of this year until this day (inclusive, "MM-DD"), then for
    # September of next year.
    enrolment_cutoff: str = "08-31"
    # Pretend today is this date (tests, rehearsals); None: the real date.
    enrolment_today: date | None = None

    # Printed on the certificate.
    town_name: str = "Montclair-sur-Loire"
    town_postcode: str = "45190"
    mayor_name: str = "Hélène Dufresne"

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
    def cutoff(self) -> tuple[int, int]:
        month, day = self.enrolment_cutoff.split("-")
        return int(month), int(day)
