"""Inscription scolaire: the year a family enrols for (the year in progress or the next rentrée),
an address outside the town, and the public certificate check (services faked, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web.tests.test_account import ENROLMENT, client, logged_in  # noqa: F401
from services.web.tests.test_schooling import SCHOOLS, FakeServicesWithFiles, child

YEARS = [
    {"school_year": "2026-2027", "school_year_start": 2026, "in_progress": True, "title": "année scolaire en cours 2026-2027"},
    {"school_year": "2027-2028", "school_year_start": 2027, "in_progress": False, "title": "rentrée 2027 (année scolaire 2027-2028)"},
]
OUT_OF_TOWN = ("Votre adresse (75011 Paris) n'est pas à Montclair-sur-Loire : aucune école de secteur de la commune ne lui "
               "correspond. Vous pouvez tout de même demander l'inscription : le Service Scolaire et Périscolaire l'examinera "
               "et vous répondra.")


@dataclass
class RecordingServices(FakeServicesWithFiles):
    """Also records each call's query string (the year asked for)."""

    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.queries.append((request.url.path, dict(request.url.params)))
        return super().handler(request)


@pytest.fixture
def services() -> RecordingServices:
    return RecordingServices()


def eligibility(year: dict[str, Any], children: list[dict[str, Any]], *, in_town: bool = True) -> dict[str, Any]:
    return {"unlocked": True, "message": None, "school_year": year["school_year"], "school_year_start": year["school_year_start"],
            "school_year_title": year["title"], "school_years": YEARS, "children": children,
            "address_in_town": in_town, "address_message": None if in_town else OUT_OF_TOWN}


def answers(services: RecordingServices, body: dict[str, Any]) -> None:
    services.answer(ENROLMENT, "/enrolments/eligible", 200, body)
    services.answer(ENROLMENT, "/enrolments", 200, {"enrolments": []})
    services.answer(ENROLMENT, "/schools", 200, SCHOOLS)


def test_a_family_chooses_the_year_in_progress_or_the_next_rentree_and_the_page_says_which(
    client: TestClient, services: RecordingServices
) -> None:
    logged_in(client, services)
    answers(services, eligibility(YEARS[0], [child("c1", "Noé", level="CM2", label="CM2")]))
    page = client.get("/inscription-scolaire", params={"annee": "2026"})
    assert page.status_code == 200
    assert ("/enrolments/eligible", {"school_year": "2026"}) in services.queries
    assert '<a href="/inscription-scolaire?annee=2026" aria-current="page">Année scolaire en cours 2026-2027</a>' in page.text
    assert '<a href="/inscription-scolaire?annee=2027">Rentrée 2027 (année scolaire 2027-2028)</a>' in page.text
    assert "pour : <strong>année scolaire en cours 2026-2027</strong>" in page.text
    assert "<dt>Niveau en 2026-2027</dt><dd>CM2</dd>" in page.text
    assert '<input type="hidden" name="annee" value="2026">' in page.text

    confirm = client.get("/inscription-scolaire/confirmer", params={"enfant": "c1", "annee": "2026"})
    assert "<dd>Année scolaire en cours 2026-2027</dd>" in confirm.text
    assert '<input type="hidden" name="school_year" value="2026-2027">' in confirm.text


def test_the_year_question_says_vos_enfants_for_two_children_and_votre_enfant_for_one(
    client: TestClient, services: RecordingServices
) -> None:
    logged_in(client, services)
    answers(services, eligibility(YEARS[0], [child("c1", "Noé", level="CM2", label="CM2"), child("c2", "Zoé", level="CP", label="CP")]))
    two = client.get("/inscription-scolaire", params={"annee": "2026"})
    assert "Pour quelle année scolaire inscrire vos enfants ?" in two.text and "inscrire votre enfant" not in two.text
    answers(services, eligibility(YEARS[0], [child("c1", "Noé", level="CM2", label="CM2")]))
    one = client.get("/inscription-scolaire", params={"annee": "2026"})
    assert "Pour quelle année scolaire inscrire votre enfant ?" in one.text


def test_an_address_outside_the_town_is_told_why_it_has_no_sector_school(client: TestClient, services: RecordingServices) -> None:
    logged_in(client, services)
    answers(services, eligibility(YEARS[1], [child("c1", "Lou", sector=None)], in_town=False))
    page = client.get("/inscription-scolaire")
    assert OUT_OF_TOWN.replace("'", "&#39;") in page.text
    assert "Aucune : votre adresse n'est pas dans la commune." in page.text
    confirm = client.get("/inscription-scolaire/confirmer", params={"enfant": "c1"})
    assert "votre adresse n'est pas dans la commune, elle n'a pas d'école de secteur" in confirm.text


def test_the_public_check_shows_school_level_year_and_initials_without_login(client: TestClient, services: RecordingServices) -> None:
    services.answer(ENROLMENT, "/verifications/7KQD-M2XF-9PHA", 200, {
        "code": "7KQD-M2XF-9PHA", "valid": True, "school_name": "École élémentaire Jean-Jaurès", "level": "CP",
        "level_label": "CP", "school_year": "2027-2028", "child_initials": "L. M."})
    page = client.get("/verifier/7KQD-M2XF-9PHA")
    assert page.status_code == 200 and "authentique" in page.text
    for shown in ("École élémentaire Jean-Jaurès", "<dd>CP</dd>", "2027-2028", "L. M."):
        assert shown in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    (call,) = [c for c in services.calls if c[1] == "/verifications/7KQD-M2XF-9PHA"]
    assert call[3] is None  # no user, no token sent

    services.answer(ENROLMENT, "/verifications/0000-0000-0000", 404, {"detail": "Aucun certificat d'inscription en vigueur ne correspond à ce code."})
    unknown = client.get("/verifier/0000-0000-0000")
    assert unknown.status_code == 404 and "Aucun certificat" in unknown.text
    assert client.get("/verifier", params={"code": " 7kqd-m2xf-9pha "}, follow_redirects=False).headers["location"] == "/verifier/7kqd-m2xf-9pha"


def test_the_notice_after_enrolling_says_which_year_the_child_is_enrolled_for() -> None:
    from services.web.schooling import done_line

    mid_year = {"child_first_name": "Noé", "status_label": "inscription confirmée", "school_year_title": YEARS[0]["title"]}
    assert done_line("inscription", mid_year) == (
        "La demande d'inscription de Noé est enregistrée : inscription confirmée, pour l'année scolaire en cours 2026-2027.")
    rentree = {**mid_year, "school_year_title": YEARS[1]["title"]}
    assert done_line("inscription", rentree).endswith(", pour la rentrée 2027 (année scolaire 2027-2028).")
