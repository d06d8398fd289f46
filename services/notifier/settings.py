"""Settings of the notifier service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class NotifierSettings(CommonSettings):
    service_name: str = "notifier"
    http_port: int = 8104
    public_prefix: str = "/api/notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
