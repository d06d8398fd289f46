"""Settings of the enrolment service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class EnrolmentSettings(CommonSettings):
    service_name: str = "enrolment"
    http_port: int = 8105
    public_prefix: str = "/api/enrolment"
