"""Wiring of the web pages: settings, HTTP client to the services, security headers.
Run with ``python -m services.web.main``."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kernel import telemetry
from services.kernel.app import create_service_app
from services.kernel.health import ReadinessCheck
from services.kernel.logging import get_logger
from services.kernel.service import serve
from services.web import account, api, backoffice, correction_reasons, dashboard, dossier, my_account, pages, schooling, session, verification
from services.web.errors import PageError
from services.web.settings import LOCAL_SECRET_KEY, WebSettings

log = get_logger(__name__)

# pdf.js is ES modules: a browser runs a module script only when served with a JavaScript type
# (no sniffing). The same one whatever the machine's /etc/mime.types says: RFC 9239's.
mimetypes.add_type("text/javascript", ".mjs")

# Every asset is self-hosted: no inline script or style, no third-party origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A route may set its own, stricter-or-different policy (a document preview that
                # the back-office frames needs frame-ancestors 'self'); every other page gets this.
                if not any(name.lower() == b"content-security-policy" for name, _ in headers):
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def _upstream_check(client: httpx.AsyncClient, name: str, base_url: str) -> ReadinessCheck:
    async def probe() -> None:
        response = await client.get(f"{base_url}/healthz")
        response.raise_for_status()

    return ReadinessCheck(name, probe)


def mount_pdfjs(app: FastAPI, directory: str) -> bool:
    """Serves pdf.js at /static/pdfjs/ when ``directory`` holds it; says whether it does. Mounted
    before /static, which would otherwise answer 404 for it."""
    if not directory or not (Path(directory) / "pdf.min.mjs").is_file():
        log.info("pdf.js not found: the back-office shows PDFs in the browser's own viewer", pdfjs_dir=directory)
        return False
    app.mount("/static/pdfjs", StaticFiles(directory=directory), name="pdfjs")
    return True


def create_app() -> FastAPI:
    settings = WebSettings()

    async def startup(app: FastAPI) -> Sequence[ReadinessCheck]:
        app.state.settings = settings
        if settings.environment != "local" and settings.secret_key == LOCAL_SECRET_KEY:
            # Not fatal (deployments that have not set it yet keep serving), but with a known key
            # the CSRF tokens only rest on the cookie's SameSite: set ECP_SECRET_KEY.
            log.warning("web secret_key is the local default: set ECP_SECRET_KEY", environment=settings.environment)
        # The services' spans join the page request's trace.
        app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(5.0, connect=2.0), event_hooks={"request": [telemetry.inject_into_request]}
        )
        return [_upstream_check(app.state.http, name, url) for name, url in settings.service_urls().items()]

    async def shutdown(app: FastAPI) -> None:
        await app.state.http.aclose()

    app = create_service_app(
        settings,
        title="Espace Citoyen Premium – pages web",
        description="Server-rendered pages for families and agents.",
        routers=[api.router, account.router, dossier.router, schooling.router, my_account.router, backoffice.router, correction_reasons.router, dashboard.router,
                 verification.router],
        startup=startup,
        shutdown=shutdown,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(session.SessionCookieMiddleware)  # writes the session cookie a route set
    # CSRF rejections, identity unreachable, unreadable forms: French pages, never a stack trace.
    app.add_exception_handler(PageError, pages.page_error)
    app.add_exception_handler(session.LoginRequired, session.login_redirect)
    app.state.pdf_viewer = mount_pdfjs(app, settings.pdfjs_dir)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app


if __name__ == "__main__":
    serve("services.web.main:create_app", WebSettings())
