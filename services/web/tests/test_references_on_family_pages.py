"""The file's short reference on « Mon dossier », and in the header of every family page once
the family has a file, to quote it when calling the service."""

from __future__ import annotations

from fastapi.testclient import TestClient

import pytest

from services.web.tests.test_dossier import HOUSEHOLD, FakeServices, family_file, logged_in_family, proofs_answers, services  # noqa: F401
from services.web.tests.test_account import client  # noqa: F401
from services.web.tests.test_links import shown


def test_my_file_shows_its_short_reference(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file("submitted", reference="MSL-2027-000123"))
    text = shown(client.get("/dossier"))
    assert "Référence de votre dossier : <strong>MSL-2027-000123</strong>" in text


def test_a_file_without_a_reference_yet_shows_none(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file("draft"))
    assert "Référence de votre dossier" not in shown(client.get("/dossier"))


HEADER_REFERENCE = 'Dossier n° <strong class="ref">MSL-2027-000123</strong>'


@pytest.mark.parametrize("path", ["/entourage", "/pieces-justificatives", "/dossier"])
def test_every_file_page_shows_the_files_reference_in_its_header(
        client: TestClient, services: FakeServices, path: str) -> None:  # noqa: F811
    proofs_answers(services, family_file("draft", reference="MSL-2027-000123"))
    text = shown(client.get(path))
    header = text.split("</header>", 1)[0]
    assert HEADER_REFERENCE in header


@pytest.mark.parametrize("path", ["/entourage", "/dossier"])
def test_no_reference_in_the_header_before_the_file_has_one(client: TestClient, services: FakeServices, path: str) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Aucun dossier."})
    assert "Dossier n°" not in shown(client.get(path))
