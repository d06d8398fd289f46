"""« Motifs de correction » (the preset correction reasons, household's list) and the review's
checklist reading it, the services faked as in test_backoffice."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

from services.web.tests.test_account import client  # noqa: F401
from services.web.tests.test_backoffice import (  # noqa: F401
    DOSSIER_ID, HOUSEHOLD, FakeServices, agent, dossier_answers, form_of, logged_in, services,
)
from services.web.tests.test_links import accessible, shown

PAGE = "/agents/motifs-de-correction"
REASONS = [{"id": "r1", "text": "Document illisible"}, {"id": "r2", "text": "Document expiré"},
           {"id": "r3", "text": "Nom différent de celui déclaré"}]
HISTORY = [
    {"at": "2027-03-15T10:00:00Z", "action": "changed", "label": "Liste modifiée", "agent_id": "agent-7f3a9c21", "version": 2,
     "added": [], "removed": [], "edited": [{"from": "Document illisble", "to": "Document illisible"}], "reordered": True},
    {"at": "2027-03-01T08:00:00Z", "action": "seeded", "label": "Liste initiale", "agent_id": None, "version": 1,
     "added": ["Document illisble", "Document expiré"], "removed": [], "edited": [], "reordered": False},
]


def refused(client: TestClient, posted: httpx.Response) -> httpx.Response:  # noqa: F811
    """A refusal: post/redirect/get back to the page, which says it once."""
    assert posted.status_code == 303 and posted.headers["location"].split("#")[0] == PAGE, posted.text
    return client.get(PAGE)


def reasons_answers(services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/correction-reasons", 200, {"version": 2, "reasons": REASONS})
    services.answer("GET", HOUSEHOLD, "/review/correction-reasons/history", 200, HISTORY)


def as_admin(client: TestClient, services: FakeServices) -> TestClient:  # noqa: F811
    logged_in(client, services, role="admin")
    reasons_answers(services)
    return client


def sent_lists(services: FakeServices) -> list[dict[str, object]]:
    return [c.json() for c in services.to(HOUSEHOLD, "/review/correction-reasons", "PUT")]


def test_an_agent_reads_the_list_in_order_and_its_history_with_names_but_gets_no_form(agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    reasons_answers(services)
    response = agent.get(PAGE)
    page, text = accessible(response), shown(response)
    assert page.h1 == ["Motifs de correction"] and response.headers["cache-control"] == "no-store"
    assert re.findall(r"<li>([^<]+)</li>", text.split('id="liste-motifs"')[1].split("</ol>")[0]) == [r["text"] for r in REASONS]
    assert "Seul un administrateur peut modifier cette liste." in text and "<form" not in text.split("</header>")[1]
    assert "<td>Marie Dupont</td>" in text and "<td>Mise en service</td>" in text
    assert "Modifié : « Document illisble » devient « Document illisible »" in text and "Ordre de la liste modifié" in text
    assert 'aria-current="page">Motifs de correction</a>' in text  # in the back-office's menu


def test_an_admin_adds_a_reason_at_the_end_with_the_version_shown(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    admin = as_admin(client, services)
    page = admin.get(PAGE)
    accessible(page)
    services.answer("PUT", HOUSEHOLD, "/review/correction-reasons", 200, {"version": 3, "reasons": REASONS})
    added = admin.post(f"{PAGE}/ajouter", data={**form_of(page, f"{PAGE}/ajouter"), "text": "  Photo   floue "})
    assert added.status_code == 303 and added.headers["location"] == f"{PAGE}#nouveau-motif"
    assert sent_lists(services) == [{"version": 2, "reasons": [*REASONS, {"text": "Photo floue"}]}]
    assert "Le motif est ajouté" in shown(admin.get(PAGE))
    assert "Le motif est ajouté" not in shown(admin.get(PAGE))  # once: a refresh does not repeat it


def test_an_admin_edits_moves_and_removes_a_reason_each_time_sending_the_whole_list(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    admin = as_admin(client, services)
    page = admin.get(PAGE)
    form = form_of(page, f"{PAGE}/r2")
    assert form["version"] == "2"
    services.answer("PUT", HOUSEHOLD, "/review/correction-reasons", 200, {"version": 3, "reasons": REASONS})
    for action, text in (("enregistrer", "Document expiré ou périmé"), ("monter", ""), ("descendre", ""), ("supprimer", "")):
        answer = admin.post(f"{PAGE}/r2", data={**form, "action": action, "text": text})
        assert answer.status_code == 303, action
    r1, r2, r3 = REASONS
    assert [body["reasons"] for body in sent_lists(services)] == [
        [r1, {"id": "r2", "text": "Document expiré ou périmé"}, r3], [r2, r1, r3], [r1, r3, r2], [r1, r3]]
    # the first has no « Monter », the last no « Descendre »; each button names its reason
    text = shown(page)
    assert "Monter<span class=\"visually-hidden\"> le motif « Document illisible »" not in text
    assert "Descendre<span class=\"visually-hidden\"> le motif « Nom différent de celui déclaré »" not in text
    assert "Supprimer<span class=\"visually-hidden\"> le motif « Document expiré »</span>" in text


def test_households_refusal_goes_next_to_the_field_and_an_empty_reason_is_refused_without_a_call(
    client: TestClient, services: FakeServices,  # noqa: F811
) -> None:
    admin = as_admin(client, services)
    page = admin.get(PAGE)
    empty = refused(admin, admin.post(f"{PAGE}/ajouter", data={**form_of(page, f"{PAGE}/ajouter"), "text": "   "}))
    assert empty.status_code == 422 and 'href="#nouveau-motif"' in empty.text and "Saisissez le motif à ajouter." in shown(empty)
    assert sent_lists(services) == []

    problem = "Le motif « DOCUMENT EXPIRÉ » figure déjà dans la liste (n° 2)."
    services.answer("PUT", HOUSEHOLD, "/review/correction-reasons", 422, {"detail": problem, "problems": [problem]})
    edit = refused(admin, admin.post(f"{PAGE}/r3", data={**form_of(page, f"{PAGE}/r3"), "action": "enregistrer", "text": "DOCUMENT EXPIRÉ"}))
    text = shown(edit)
    assert edit.status_code == 422 and 'href="#texte-r3"' in edit.text and problem in text
    assert 'value="DOCUMENT EXPIRÉ"' in text and 'aria-invalid="true"' in text  # what the admin typed, kept

    services.answer("PUT", HOUSEHOLD, "/review/correction-reasons", 409, {"detail": "La liste des motifs a été modifiée entre-temps."})
    stale = refused(admin, admin.post(f"{PAGE}/r3", data={**form_of(page, f"{PAGE}/r3"), "action": "supprimer"}))
    assert stale.status_code == 409 and "modifiée entre-temps" in shown(stale)
    gone = refused(admin, admin.post(f"{PAGE}/r9", data={**form_of(page, f"{PAGE}/r3"), "action": "supprimer"}))
    assert gone.status_code == 409 and "n'est plus dans la liste" in shown(gone)
    again = admin.get(PAGE)  # said once: a refresh shows the list as it is
    assert again.status_code == 200 and "n'est plus dans la liste" not in shown(again)


def test_an_agent_posting_a_change_gets_households_403_said_on_the_page(agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    reasons_answers(services)
    page = agent.get(PAGE)
    services.answer("PUT", HOUSEHOLD, "/review/correction-reasons", 403, {"detail": "Accès refusé."})
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text.split("</header>")[0]))
    answer = refused(agent, agent.post(f"{PAGE}/ajouter", data={**hidden, "version": "2", "text": "Photo floue"}))
    assert answer.status_code == 403 and "Seul un administrateur peut modifier la liste des motifs." in shown(answer)


def test_the_reviews_checklist_offers_households_reasons_in_their_order(agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    dossier_answers(services)
    reasons_answers(services)
    text = shown(agent.get(f"/agents/dossiers/{DOSSIER_ID}"))
    first = text.split('id="motif-0"')[1].split("</select>")[0]
    assert re.findall(r">À corriger : ([^<]+)</option>", first) == [r["text"] for r in REASONS]


def test_the_review_still_opens_when_the_reasons_do_not_answer_and_asks_for_free_text(agent: TestClient, services: FakeServices) -> None:  # noqa: F811
    dossier_answers(services)
    services.answer("GET", HOUSEHOLD, "/review/correction-reasons", 503, {"detail": "indisponible"})
    response = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    assert response.status_code == 200 and "À corriger :" not in shown(response)
    assert "écrivez le motif dans « Précision pour la famille »" in shown(response)
