"""The file's short reference on « Mon dossier », to quote it when calling the service."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.web.tests.test_dossier import HOUSEHOLD, FakeServices, family_file, logged_in_family, services  # noqa: F401
from services.web.tests.test_account import client  # noqa: F401
from services.web.tests.test_links import shown


def test_my_file_shows_its_short_reference(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file("submitted", reference="MSL-2027-000123"))
    text = shown(client.get("/dossier"))
    assert "Référence de votre dossier : <strong>MSL-2027-000123</strong>" in text


def test_a_file_without_a_reference_yet_shows_none(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file("draft"))
    assert "Référence de votre dossier" not in shown(client.get("/dossier"))
