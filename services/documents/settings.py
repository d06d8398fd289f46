"""Settings of the documents service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class DocumentsSettings(CommonSettings):
    service_name: str = "documents"
    http_port: int = 8103
    public_prefix: str = "/api/documents"
    clamd_host: str = "127.0.0.1"
    clamd_port: int = 3310
