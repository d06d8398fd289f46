"""The agents' « Inscriptions à décider » say which school year each request is for: the year in
progress (a family moving in mid-year) or the next rentrée (services faked, no I/O)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.web.tests.test_account import client  # noqa: F401
from services.web.tests.test_backoffice import ENROLMENT, SCHOOLS, FakeServices, agent, enrolment, services  # noqa: F401

ADDRESS = {"number": "3", "street": "rue des Lilas", "postcode": "45190", "town": "Montclair-sur-Loire"}


def test_each_request_to_decide_says_whether_it_is_for_the_year_in_progress_or_the_next_rentree(
    agent: TestClient, services: FakeServices  # noqa: F811
) -> None:
    services.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)
    for school in SCHOOLS:
        services.answer("GET", ENROLMENT, f"/schools/{school['id']}/enrolments", 200, {
            "school": school, "school_year": "2026-2027", "enrolments": [], "levels": []})
    services.answer("GET", ENROLMENT, "/pending-decisions", 200, {"items": [
        enrolment("e-now", school_year="2026-2027", mid_year=True, address=ADDRESS, kind="address_unknown", on_map=False),
        enrolment("e-next", child_first_name="Tom", address=ADDRESS, kind="address_unknown", on_map=False),
    ], "total": 2, "page": 1, "pages": 1})
    page = agent.get("/agents/inscriptions")
    assert page.status_code == 200
    assert "Léa Martin – CP (2026-2027, inscription en cours d'année)" in page.text
    assert "Tom Martin – CP (2027-2028, rentrée 2027)" in page.text
