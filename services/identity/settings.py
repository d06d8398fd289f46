"""Settings of the identity service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class IdentitySettings(CommonSettings):
    service_name: str = "identity"
    http_port: int = 8101
    public_prefix: str = "/api/identity"
