"""« Tableau de bord de la campagne » and the queue's « En retard » marks, the services faked."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from services.web.charts import bar_chart
from services.web.tests.test_account import client  # noqa: F401
from services.web.tests.test_backoffice import (  # noqa: F401
    DOSSIER_ID, ENROLMENT, HOUSEHOLD, QUEUE_PAGE, FakeServices, agent, logged_in, services,
)
from services.web.tests.test_links import accessible, shown, title

INSIGHTS = 8106
FILES = {
    "generated_at": "2027-03-16T09:00:00Z",
    "by_status": {"submitted": 12, "corrections_requested": 3, "validated": 40, "rejected": 2},
    "per_day": [{"day": "2027-03-14", "submitted": 9, "decided": 4}, {"day": "2027-03-15", "submitted": 6, "decided": 11}],
    "decision_delays": [{"week": "2027-W11", "files": 15, "p50_hours": 20.5, "p90_hours": 71.0}],
    "backlog": [{"status": "submitted", "waiting_for": "agent", "files": 12, "oldest_waiting_since": "2027-03-02T08:00:00Z",
                 "oldest_age_hours": 337.0},
                {"status": "corrections_requested", "waiting_for": "family", "files": 3, "oldest_waiting_since": None,
                 "oldest_age_hours": None}],
    "corrections": {"files_submitted": 57, "files_sent_back": 5, "share_sent_back": 0.0877,
                    "top_items": [{"item": "document:proof_of_address", "count": 4}, {"item": "address.postcode", "count": 1}]},
    "overdue": 1, "overdue_threshold_working_days": 5,
}
SCHOOLS = {"generated_at": "2027-03-16T09:00:00Z", "rows": [
    {"school_year": "2027-2028", "school_id": "elem-jaures", "level": "CP", "requested": 30, "confirmed": 27, "waiting": 2,
     "derogations_asked": 1, "derogations_granted": 0, "school_name": "École élémentaire Jean-Jaurès", "capacity": 30},
    {"school_year": "2027-2028", "school_id": "elem-new", "level": "CE1", "requested": 1, "confirmed": 0, "waiting": 1,
     "derogations_asked": 0, "derogations_granted": 0, "school_name": None, "capacity": None}]}
FUNNEL = {"generated_at": "2027-03-16T09:00:00Z",
          "reached": {"registered": 80, "activated": 75, "file_started": 70, "submitted": 57, "validated": 40, "enrolled": 27},
          "stopped_at": {"registered": 5, "activated": 5, "file_started": 13, "submitted": 17, "validated": 13, "enrolled": 27},
          "per_day": []}


def answered(services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", INSIGHTS, "/files", 200, FILES)
    services.answer("GET", INSIGHTS, "/schools", 200, SCHOOLS)
    services.answer("GET", INSIGHTS, "/funnel", 200, FUNNEL)


def test_the_dashboard_draws_each_chart_on_the_server_beside_the_table_of_its_figures(
        agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    answered(services)
    response = agent.get("/agents/tableau-de-bord")
    page = accessible(response)
    assert page.h1 == ["Tableau de bord de la campagne"] and title(response).startswith("Tableau de bord de la campagne")
    text = shown(response)
    assert response.headers["cache-control"] == "no-store"
    assert len(re.findall(r'<svg [^>]*role="img"', text)) == 4 == text.count("<table class=\"data\">") - 3
    assert '<th scope="row">En attente d\'examen</th><td>12</td>' in text
    assert "<td>École élémentaire Jean-Jaurès</td>" not in text and '<th scope="row">École élémentaire Jean-Jaurès</th>' in text
    assert "<td>27</td><td>2</td><td>1</td><td>0</td><td>30</td>" in text  # confirmed, waiting, dérogations, capacity (insights')
    # A school enrolment has not announced yet: its id, and no capacity.
    assert '<th scope="row">elem-new</th><td>CE1</td><td>2027-2028</td><td>1</td><td>0</td><td>1</td><td>0</td><td>0</td><td>—</td>' in text
    # The capacities are insights' own: enrolment is not asked.
    assert not [c for c in services.calls if c.port == ENROLMENT and c.path == "/schools"]
    assert "Pièce : justificatif de domicile" in text and "Champ : address.postcode" in text
    assert "1 dossier attend une décision du Service depuis plus de 5 jours ouvrés" in text
    assert '<th scope="row">15/03/2027</th><td>6</td><td>11</td>' in text


def test_a_family_gets_the_403_page_on_the_dashboard(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    logged_in(client, services, role="family")
    assert client.get("/agents/tableau-de-bord").status_code == 403
    assert [c for c in services.calls if c.port == INSIGHTS] == []


def test_the_queue_marks_the_files_waiting_too_long(agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, QUEUE_PAGE)
    services.answer("GET", INSIGHTS, "/overdue", 200, {"threshold_working_days": 5, "files": [
        {"dossier_id": DOSSIER_ID, "waiting_since": "2027-03-02T08:00:00Z", "working_days_waiting": 9}]})
    text = shown(agent.get("/agents/dossiers"))
    assert text.count("En retard") == 1
    row = text[text.index("MSL-2027-000123"):text.index("MSL-2027-000124")]
    assert "En retard" in row


def test_the_queue_is_shown_without_marks_when_insights_does_not_answer(agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, QUEUE_PAGE)
    services.down.add(INSIGHTS)
    response = agent.get("/agents/dossiers")
    assert response.status_code == 200 and "En retard" not in shown(response) and "MSL-2027-000123" in shown(response)


def test_bars_scale_to_the_largest_value_and_keep_each_series_colour() -> None:
    chart = bar_chart("x", "Titre", "Description", ["A", "B"], [("un", [10, 5]), ("deux", [0, 20])])
    widths = [[bar.width for bar in row.bars] for row in chart.rows]
    assert widths[1][1] == max(w for row in widths for w in row) and widths[1][0] == 0
    assert abs(widths[0][0] - 2 * widths[0][1]) <= 1  # rounded to whole pixels
    assert chart.rows[0].bars[0].colour != chart.rows[0].bars[1].colour and [name for name, _ in chart.legend] == ["A", "B"]
