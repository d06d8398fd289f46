"""Settings of the web pages (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class WebSettings(CommonSettings):
    service_name: str = "web"
    http_port: int = 8100
    town_name: str = "Ville de Montclair-sur-Loire"
    # The services' own addresses: pages call their APIs directly, not through the gateway.
    identity_url: str = "http://127.0.0.1:8101"
    household_url: str = "http://127.0.0.1:8102"
    documents_url: str = "http://127.0.0.1:8103"
    notifier_url: str = "http://127.0.0.1:8104"
    enrolment_url: str = "http://127.0.0.1:8105"

    def service_urls(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "household": self.household_url,
            "documents": self.documents_url,
            "notifier": self.notifier_url,
            "enrolment": self.enrolment_url,
        }
