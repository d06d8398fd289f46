"""Settings of the web pages (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings

# Good for a local run only; main.py warns when another environment still uses it.
LOCAL_SECRET_KEY = "ecp-local-web-secret-not-for-production"


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
    insights_url: str = "http://127.0.0.1:8106"
    # Signs the forms' CSRF tokens (csrf.py), ECP_SECRET_KEY. Shared by every replica of the web
    # service, so a page rendered by one is accepted by another; changing it voids open forms.
    secret_key: str = LOCAL_SECRET_KEY
    # pdf.js (deploy/web-assets/fetch-pdfjs.sh), served at /static/pdfjs/ for the back-office's
    # PDF viewer, ECP_PDFJS_DIR. Empty or without pdf.min.mjs: PDFs show in the browser's own
    # viewer (an iframe), as they do without JavaScript.
    pdfjs_dir: str = ""

    def service_urls(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "household": self.household_url,
            "documents": self.documents_url,
            "notifier": self.notifier_url,
            "enrolment": self.enrolment_url,
            "insights": self.insights_url,
        }
