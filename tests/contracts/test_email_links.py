"""Every portal link an email carries is a page the web service really serves.

The paths are the notifier's settings and the pages are the web service's routes: this test
reads both (the routes registered by ``services.web.main:create_app()``, not a copied list), so
renaming a page on either side fails here rather than in a family's mailbox.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from services.notifier import domain
from services.notifier.render import Renderer
from services.notifier.render_samples import SAMPLE_TIME, sample_data
from services.notifier.settings import NotifierSettings
from services.web.main import create_app

SETTINGS = NotifierSettings(public_base_url="https://portail.example.fr")
# Links that come with the event (activation, reset) are identity's; this one is no page of ours.
EVENT_LINK = "https://identite.invalid/lien?jeton=EXEMPLE"
URL = re.compile(r"""https?://[^\s"'<>]+""")


@pytest.fixture(scope="module")
def web_app() -> FastAPI:
    return create_app()


def serves_page(app: FastAPI, path: str) -> bool:
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [], "query_string": b""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def portal_paths_in_emails() -> dict[str, set[str]]:
    """Each portal path linked from an email, with the templates linking it."""
    renderer = Renderer(SETTINGS)
    found: dict[str, set[str]] = {}
    for mail in domain.MAILS:
        data = sample_data(mail)
        if "link" in data:
            data["link"] = EVENT_LINK
        rendered = renderer.render(mail, data, SAMPLE_TIME)
        for url in URL.findall(rendered.text + rendered.html):
            if url.startswith(SETTINGS.public_base_url):
                found.setdefault(urlsplit(url).path or "/", set()).add(mail.template)
    return found


def test_the_check_tells_a_page_from_a_missing_one(web_app: FastAPI) -> None:
    assert serves_page(web_app, "/connexion")
    assert not serves_page(web_app, "/mot-de-passe/oublie")


def test_emails_link_the_pages_the_settings_name() -> None:
    linked = set(portal_paths_in_emails())
    # The certificate's link names its enrolment (the sample's).
    confirmed = next(m for m in domain.MAILS if m.template == "enrolment_confirmed")
    certificate = SETTINGS.certificate_path.format(enrolment_id=sample_data(confirmed)["enrolment_id"])
    assert {SETTINGS.login_path, SETTINGS.forgot_password_path, SETTINGS.household_path,
            SETTINGS.enrolment_path, certificate} <= linked


def test_every_portal_link_in_an_email_is_a_page_of_the_web_service(web_app: FastAPI) -> None:
    missing = {path: sorted(templates) for path, templates in portal_paths_in_emails().items() if not serves_page(web_app, path)}
    assert not missing, f"emails link pages the web service does not serve: {missing}"
