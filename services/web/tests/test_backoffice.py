"""Agents' back-office pages, the services faked.

Identity, household, documents, enrolment and the object store are one ``httpx.MockTransport``:
each answer is chosen per (method, port, path) and every call is recorded with its query, body
and bearer token, so tests also prove when a service is *not* called.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi.testclient import TestClient

# The test app with app.state.http on this module's ``services`` fixture (its fake transport).
from services.web.tests.test_account import client  # noqa: F401
from services.web.tests.test_links import Page, accessible, shown, title

IDENTITY, HOUSEHOLD, DOCUMENTS, ENROLMENT, OBJECT_STORE = 8101, 8102, 8103, 8105, 9000
DOSSIER_ID, DOC_PDF, DOC_PNG, DOC_GONE = "d-1", "doc-pdf", "doc-png", "doc-gone"
ENROL_OFF_MAP, ENROL_NO_SEAT, ENROL_DEROGATION = "e-offmap", "e-noseat", "e-derog"
PDF = b"%PDF-1.4\n% justificatif\n%%EOF\n"
PRESET_REASONS = ("Document illisible", "Document expiré", "Justificatif de domicile de plus de 3 mois")


def access_token(role: str) -> str:
    """A token shaped like identity's: the pages read its role claim (never trusting it: services do)."""
    claims = base64.urlsafe_b64encode(json.dumps({"role": role, "sub": "agent-me"}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFZERTQSJ9.{claims}.signature"


@dataclass
class Call:
    method: str
    port: int
    path: str
    query: dict[str, list[str]]
    body: bytes
    content_type: str
    authorization: str | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeServices:
    answers: dict[tuple[str, int, str], tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    down: set[int] = field(default_factory=set)

    def answer(self, method: str, port: int, path: str, status: int, body: Any = None,
               headers: dict[str, str] | None = None) -> None:
        self.answers[(method, port, path)] = (status, body, headers or {})

    def handler(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        self.calls.append(Call(request.method, port, request.url.path, parse_qs(request.url.query.decode()), request.content,
                               request.headers.get("content-type", ""), request.headers.get("authorization")))
        if port in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        status, payload, headers = self.answers[(request.method, port, request.url.path)]
        if isinstance(payload, bytes):
            return httpx.Response(status, content=payload, headers=headers)
        if payload is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=payload, headers=headers)

    def to(self, port: int, path: str, method: str = "POST") -> list[Call]:
        return [c for c in self.calls if c.port == port and c.path == path and c.method == method]

    def service_calls(self) -> list[Call]:
        return [c for c in self.calls if c.port != IDENTITY]


STAFF = [{"account_id": "agent-7f3a9c21", "display_name": "Marie Dupont", "email": "marie.dupont@ville.fr", "role": "agent", "active": True},
         {"account_id": "agent-me", "display_name": "Anne Agent", "email": "agent@ville.fr", "role": "agent", "active": True},
         {"account_id": "agent-old", "display_name": "Paul Ancien", "email": "paul@ville.fr", "role": "agent", "active": False}]


@pytest.fixture
def services() -> FakeServices:
    fake = FakeServices()
    fake.answer("GET", IDENTITY, "/staff", 200, STAFF)  # the directory that names agents in every history
    fake.answer("GET", 8106, "/overdue", 200, {"threshold_working_days": 5, "files": []})  # insights: the queue's marks
    fake.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)  # the queue's « École » filter
    fake.answer("GET", HOUSEHOLD, "/review/correction-reasons", 200, {  # the review's preset reasons (household's list)
        "version": 3, "reasons": [{"id": f"r{n}", "text": t} for n, t in enumerate(PRESET_REASONS)]})
    return fake


def logged_in(client: TestClient, services: FakeServices, role: str = "agent") -> None:
    services.answer("POST", IDENTITY, "/auth/login", 200, {
        "access_token": access_token(role), "refresh_token": "refresh-1", "token_type": "Bearer", "expires_in": 600})
    form = Page(client.get("/connexion").text).hidden()
    assert client.post("/connexion", data={**form, "email": "agent@ville.fr", "password": "un mot de passe"}).status_code == 303


@pytest.fixture
def agent(client: TestClient, services: FakeServices) -> TestClient:
    logged_in(client, services)
    return client


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    """The named fields of the form posting to ``action``, as a browser sends them untouched."""
    start = page.text.index(f'action="{action}"')
    form = page.text[start:page.text.index("</form>", start)]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields.update({name: "" for name in re.findall(r'<textarea[^>]* name="([^"]+)"', form)})
    return fields


# ---- fake answers --------------------------------------------------------------------------------

def review(status: str = "submitted") -> dict[str, Any]:
    return {
        "id": DOSSIER_ID, "account_id": "acc-1", "status": status, "status_label": "Transmis au Service Scolaire, en attente d'examen",
        "version": 3, "submitted_at": "2027-03-14T08:05:00Z", "resubmission": False,
        "address": {"number": "12 bis", "street": "rue des Lilas", "postcode": "45190", "town": "Montclair-sur-Loire",
                    "proof_document_id": DOC_PDF},
        "guardians": [{"guardian_id": "g1", "first_name": "Camille", "last_name": "Martin", "relationship": "mère",
                       "identity_document_id": DOC_PNG}],
        "children": [{"child_id": "c1", "first_name": "Léa", "last_name": "Martin", "birth_date": "2021-03-14",
                      "identity_document_id": DOC_GONE}],
        "recommended": [], "corrections": [],
        "documents": [
            {"document_id": DOC_PDF, "requirement": "proof_of_address", "label": "le justificatif de domicile",
             "url": "http://127.0.0.1:9000/ecp-documents/pdf?sig=1", "filename": "facture.pdf", "content_type": "application/pdf"},
            {"document_id": DOC_PNG, "requirement": "guardian_identity", "label": "la pièce d'identité de Camille Martin",
             "url": "http://127.0.0.1:9000/ecp-documents/png?sig=1", "filename": "cni.png", "content_type": "image/png"},
            {"document_id": DOC_GONE, "requirement": "child_identity", "label": "la pièce d'identité de l'enfant Léa Martin",
             "url": None, "note": "Ce document contenait un virus et a été supprimé."},
        ],
        "timeline": [],
    }


AUDIT = [
    {"at": "2027-03-14T08:05:00Z", "action": "submitted", "label": "Dossier transmis", "actor": "family", "agent_id": None},
    {"at": "2027-03-15T10:00:00Z", "action": "corrections_requested", "label": "Corrections demandées", "actor": "agent",
     "agent_id": "agent-7f3a9c21", "corrections": [{"item": DOC_PDF, "reason": "Facture de plus de trois mois."}]},
]


def dossier_answers(services: FakeServices, status: str = "submitted", **over: Any) -> None:
    services.answer("GET", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}", 200, {**review(status), **over})
    services.answer("GET", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/audit", 200, AUDIT)
    services.answer("GET", ENROLMENT, "/sector-map/lookup", 200, {
        "in_town": True, "found": True, "street_known": True,
        "segment": {"street": "rue des Lilas", "maternelle_id": "mat-tilleuls", "elementaire_id": "elem-jaures"}})
    services.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)


def enrolment(eid: str, **over: Any) -> dict[str, Any]:
    base = {"id": eid, "reference": f"INS-2027-{eid.upper()}", "child_id": "c1", "child_first_name": "Léa", "child_last_name": "Martin",
            "school_year": "2027-2028", "level": "CP", "level_label": "CP", "status": "pending_agent",
            "pending_reason": "address_unknown", "status_label": "adresse à vérifier par le service", "school_id": None,
            "sector_school_id": None, "derogation": None, "created_at": "2027-03-20T09:00:00Z", "certificate_available": False}
    return {**base, **over}


SCHOOLS = [
    {"id": "elem-jaures", "name": "École élémentaire Jean-Jaurès", "address": "2 place de la Mairie", "type": "elementaire",
     "levels": ["CP", "CE1"], "capacity": {"CP": 60, "CE1": 60}, "capacities": {}},
    {"id": "mat-tilleuls", "name": "École maternelle Les Tilleuls", "address": "4 rue des Tilleuls", "type": "maternelle",
     "levels": ["PS"], "capacity": {"PS": 56}, "capacities": {}},
]


def enrolment_answers(services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)
    for school, levels in (("elem-jaures", [("CP", "CP", 60, 60, 2)]), ("mat-tilleuls", [("PS", "petite section", 56, 10, 1)])):
        services.answer("GET", ENROLMENT, f"/schools/{school}/enrolments", 200, {
            "school": next(s for s in SCHOOLS if s["id"] == school), "school_year": "2027-2028", "enrolments": [],
            "levels": [{"level": lv, "label": label, "capacity": cap, "seats_taken": taken, "confirmed": taken, "pending": pending,
                        "free": cap - taken} for lv, label, cap, taken, pending in levels]})
    address = {"number": "3", "street": "rue Imaginaire", "postcode": "45190", "town": "Montclair-sur-Loire"}
    services.answer("GET", ENROLMENT, "/pending-decisions", 200, {"items": [
        enrolment(ENROL_OFF_MAP, address=address, kind="address_unknown", on_map=False),
        enrolment(ENROL_NO_SEAT, pending_reason="no_seat", school_id="elem-jaures", sector_school_id="elem-jaures",
                  status_label="plus de place disponible dans l'école de secteur : décision du service",
                  address={**address, "street": "rue des Lilas"}, kind="no_seat", on_map=True),
        enrolment(ENROL_DEROGATION, status="confirmed", pending_reason=None, school_id="elem-jaures", sector_school_id="elem-jaures",
                  derogation={"requested_school_id": "prim-curie", "reason_category": "fratrie", "reason_label": "frère ou sœur dans l'école demandée",
                              "reason_text": "Son frère est en CE2 à Marie-Curie.", "status": "pending"},
                  address={**address, "number": "8", "street": "rue des Lilas"}, kind="derogation", on_map=True),
    ], "total": 43, "page": 1, "pages": 3})


# ---- access --------------------------------------------------------------------------------------

BACK_OFFICE_PAGES = ["/agents/dossiers", f"/agents/dossiers/{DOSSIER_ID}", "/agents/inscriptions", "/agents/carte-scolaire",
                     f"/agents/documents/{DOC_PDF}/apercu"]


@pytest.mark.parametrize("path", BACK_OFFICE_PAGES)
def test_a_family_account_gets_the_french_403_and_no_service_is_called(client: TestClient, services: FakeServices, path: str) -> None:
    logged_in(client, services, role="family")
    response = client.get(path)
    assert response.status_code == 403
    assert "Accès réservé aux agents" in shown(response)
    assert services.service_calls() == []


@pytest.mark.parametrize("path", BACK_OFFICE_PAGES)
def test_a_visitor_is_sent_to_the_login_page_and_comes_back_after(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/connexion?suite=%2Fagents%2F")


@pytest.mark.parametrize("path", [f"/agents/dossiers/{DOSSIER_ID}/valider", f"/agents/dossiers/{DOSSIER_ID}/refuser",
                                  f"/agents/dossiers/{DOSSIER_ID}/corrections", f"/agents/inscriptions/{ENROL_OFF_MAP}/decision",
                                  f"/agents/inscriptions/{ENROL_DEROGATION}/derogation", "/agents/carte-scolaire/appliquer"])
def test_every_decision_without_the_csrf_pair_is_refused_before_any_call(agent: TestClient, services: FakeServices, path: str) -> None:
    response = agent.post(path, data={"reason": "Motif", "decision": "refuse", "import_id": "map-1", "version": "3"})
    assert response.status_code == 403 and "Formulaire expiré" in shown(response)
    assert services.service_calls() == []


def test_a_sector_map_upload_without_the_csrf_pair_is_refused_before_any_call(agent: TestClient, services: FakeServices) -> None:
    response = agent.post("/agents/carte-scolaire", files={"fichier": ("carte.csv", b"street;number_from\n", "text/csv")})
    assert response.status_code == 403
    assert services.service_calls() == []


# ---- the queue -----------------------------------------------------------------------------------

QUEUE_PAGE = {"items": [
    {"id": DOSSIER_ID, "reference": "MSL-2027-000123", "status": "submitted", "submitted_at": "2027-03-14T08:05:00Z",
     "resubmission": True, "children_count": 1, "family": "Camille Martin", "version": 3,
     "assignment": {"agent_id": "agent-7f3a9c21", "until": "2027-03-14T09:05:00Z"}},
    {"id": "d-2", "reference": "MSL-2027-000124", "status": "submitted", "submitted_at": "2027-03-14T08:06:00Z",
     "children_count": 2, "family": "Alex Durand", "version": 2, "assignment": {"agent_id": "agent-me", "until": "2027-03-14T09:05:00Z"}},
    {"id": "d-3", "reference": "MSL-2027-000125", "status": "submitted", "submitted_at": "2027-03-14T08:07:00Z",
     "children_count": 1, "family": "Sam Petit", "version": 2, "assignment": None},
], "total": 45, "page": 2, "pages": 3}


def test_the_queue_lists_references_families_who_examines_each_and_its_total(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, QUEUE_PAGE)
    response = agent.get("/agents/dossiers", params={"page": "2"})
    page = accessible(response)
    assert page.h1 == ["Dossiers à instruire"] and title(response).startswith("Dossiers à instruire")
    assert response.headers["cache-control"] == "no-store"
    text = shown(response)
    assert "<caption>" in text and '<th scope="col">Référence</th>' in text and '<th scope="col">Famille</th>' in text
    assert "14/03/2027 à 9 h 05" in text  # 08:05 UTC, read in the town's time
    assert "<td>Camille Martin</td>" in text and "(transmis à nouveau)" in text and "MSL-2027-000123" in text
    assert "En cours d'examen par Marie Dupont" in text and "<td>Par vous</td>" in text and "<td>Libre</td>" in text
    assert "45 dossiers, page 2 sur 3." in text
    assert f"/agents/dossiers/{DOSSIER_ID}" in page.links
    assert "/agents/dossiers?q=&statut=submitted&attribution=&tri=anciens&delai=&page=1" in page.links
    assert "/agents/dossiers?q=&statut=submitted&attribution=&tri=anciens&delai=&page=3" in page.links
    assert services.to(HOUSEHOLD, "/review/queue", "GET")[0].query == {
        "status": ["submitted"], "limit": ["20"], "page": ["2"], "sort": ["oldest"]}
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}", "GET") == []  # one call for the whole page


def test_the_queue_searches_and_filters_as_asked(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, {"items": [], "total": 0, "page": 1, "pages": 1})
    response = agent.get("/agents/dossiers", params={"q": "  Léa   Martin ", "statut": "all", "attribution": "moi", "tri": "recents"})
    assert response.status_code == 200 and "Aucun dossier ne correspond." in shown(response)
    query = services.to(HOUSEHOLD, "/review/queue", "GET")[0].query
    assert query == {"status": ["all"], "limit": ["20"], "page": ["1"], "sort": ["newest"], "q": ["Léa Martin"], "assigned": ["me"]}
    accessible(response)


def test_the_school_filter_lists_enrolments_schools_by_name_and_asks_household_for_the_one_chosen(
    agent: TestClient, services: FakeServices
) -> None:
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, {"items": [], "total": 0, "page": 1, "pages": 1})
    school = SCHOOLS[0]["id"]
    response = agent.get("/agents/dossiers", params={"ecole": school})
    accessible(response)
    assert "École (inscription demandée ou faite)" in shown(response)
    assert f'<option value="{school}" selected>{SCHOOLS[0]["name"]}</option>' in shown(response)
    assert services.to(HOUSEHOLD, "/review/queue", "GET")[0].query["school"] == [school]
    agent.get("/agents/dossiers", params={"ecole": "../../etc"})  # not an id: no filter
    assert "school" not in services.to(HOUSEHOLD, "/review/queue", "GET")[1].query


def test_unknown_filter_values_fall_back_to_the_defaults(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, {"items": [], "total": 0, "page": 1, "pages": 1})
    agent.get("/agents/dossiers", params={"statut": "nimporte", "attribution": "x", "tri": "y", "page": "-4"})
    assert services.to(HOUSEHOLD, "/review/queue", "GET")[0].query == {
        "status": ["submitted"], "limit": ["20"], "page": ["1"], "sort": ["oldest"]}


def test_dossier_suivant_opens_the_oldest_free_file_other_than_the_one_just_decided(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, {"items": QUEUE_PAGE["items"][:2], "total": 2, "page": 1, "pages": 1})
    response = agent.get("/agents/dossiers/suivant", params={"apres": DOSSIER_ID})
    assert response.status_code == 303 and response.headers["location"] == "/agents/dossiers/d-2"
    assert services.to(HOUSEHOLD, "/review/queue", "GET")[0].query["assigned"] == ["none"]
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, {"items": QUEUE_PAGE["items"][:1], "total": 1, "page": 1, "pages": 1})
    done = agent.get("/agents/dossiers/suivant", params={"apres": DOSSIER_ID})
    assert done.status_code == 303 and "fin=1" in done.headers["location"]
    assert "Aucun autre dossier libre" in shown(agent.get(done.headers["location"]))


def test_household_unreachable_gives_the_french_503_page(agent: TestClient, services: FakeServices) -> None:
    services.down.add(HOUSEHOLD)
    response = agent.get("/agents/dossiers")
    assert response.status_code == 503
    assert "Service momentanément indisponible" in shown(response) and "Traceback" not in response.text


# ---- one file ------------------------------------------------------------------------------------

def test_the_file_shows_the_declared_data_beside_one_document_its_checklist_the_decisions_and_named_history(
    agent: TestClient, services: FakeServices
) -> None:
    dossier_answers(services, reference="MSL-2027-000123")
    response = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    page = accessible(response)
    text = shown(response)
    assert page.h1 == ["Dossier MSL-2027-000123"] and response.headers["cache-control"] == "no-store"
    assert "12 bis rue des Lilas" in text and "<td>Camille</td>" in text and "14/03/2021" in text
    assert '<div class="review">' in text and '<section class="review__documents"' in text
    # one document at a time, the others listed; the PDF in the browser's own viewer (pages, zoom)
    assert text.count('class="viewer"') == 1
    assert f'<iframe class="viewer" src="/agents/documents/{DOC_PDF}/apercu#view=FitH"' in text
    assert "?piece=1#pieces-titre" in page.links and "?piece=2#pieces-titre" in page.links
    assert f"/agents/documents/{DOC_PDF}/apercu?telecharger=1" in page.links
    # the sector map: on the map, the school the child would get
    assert "Adresse présente sur la carte scolaire." in text and "École élémentaire Jean-Jaurès" in text
    # the checklist: one preset-reason list and one precision per document, data items folded away
    assert re.findall(r'<select id="motif-\d" name="(motif:[^"]+)"', text) == [f"motif:{DOC_PDF}", f"motif:{DOC_PNG}", f"motif:{DOC_GONE}"]
    assert ">À corriger : Document illisible</option>" in text and ">À corriger : Justificatif de domicile de plus de 3 mois</option>" in text
    assert re.findall(r'name="(correction:[^"]+)"', text) == ["correction:address", "correction:guardians.g1", "correction:children.c1"]
    for button in ("Valider…", "Refuser le dossier", "Demander les corrections", "Je prends ce dossier"):
        assert f">{button}</button>" in text
    # the history names the agent from the staff directory
    assert "<td>Marie Dupont</td>" in text and "Agent agent-7f" not in text
    assert "Le justificatif de domicile (pièce jointe) : Facture de plus de trois mois." in text


def test_an_image_turns_a_quarter_at_a_time_and_a_sworn_statement_is_shown_as_such(agent: TestClient, services: FakeServices) -> None:
    files = review()
    files["documents"][1]["sworn"] = True
    dossier_answers(services, documents=files["documents"])
    text = shown(agent.get(f"/agents/dossiers/{DOSSIER_ID}", params={"piece": "1", "rotation": "90"}))
    assert f'<img class="viewer viewer--r90" src="/agents/documents/{DOC_PNG}/apercu"' in text
    assert "?piece=1&rotation=180#pieces-titre" in text
    assert "Attestation sur l'honneur, à la place de la pièce d'identité de Camille Martin" in text
    assert "(attestation sur l'honneur)</legend>" in text


def test_a_file_someone_else_examines_says_who_and_offers_no_take(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services, assignment={"agent_id": "agent-7f3a9c21", "until": "2027-03-14T09:35:00Z"})
    text = shown(agent.get(f"/agents/dossiers/{DOSSIER_ID}"))
    assert "En cours d'examen par Marie Dupont (jusqu'au 14/03/2027 à 10 h 35)." in text
    assert "Je prends ce dossier" not in text and "Libérer le dossier" not in text


def test_taking_releasing_and_an_admin_reassigning_call_household_and_come_back(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services, role="admin")
    dossier_answers(services, assignment={"agent_id": "agent-me", "until": "2027-03-14T09:35:00Z"})
    for method in ("POST", "DELETE", "PUT"):
        services.answer(method, HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/assignment", 204 if method == "DELETE" else 200,
                        None if method == "DELETE" else {"agent_id": "agent-me", "until": "2027-03-14T09:35:00Z"})
    page = client.get(f"/agents/dossiers/{DOSSIER_ID}")
    assert "Vous examinez ce dossier" in shown(page) and ">Marie Dupont</option>" in shown(page)
    for action, done in (("prendre", "pris"), ("liberer", "libere")):
        response = client.post(f"/agents/dossiers/{DOSSIER_ID}/{action}", data=form_of(page, f"/agents/dossiers/{DOSSIER_ID}/{action}"))
        assert response.status_code == 303 and response.headers["location"].endswith(f"?fait={done}")
    response = client.post(f"/agents/dossiers/{DOSSIER_ID}/attribuer",
                           data={**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/attribuer"), "agent_id": "agent-7f3a9c21"})
    assert response.status_code == 303 and response.headers["location"].endswith("?fait=reattribue")
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/assignment", "PUT")[0].json() == {"agent_id": "agent-7f3a9c21"}
    after = shown(client.get(response.headers["location"]))
    assert "Le dossier est confié à l'agent choisi." in after and ">Dossier suivant</a>" not in after  # only after a decision


def test_taking_a_file_another_agent_holds_shows_households_reason(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/assignment", 409,
                    {"detail": "Ce dossier est en cours d'examen par un autre agent."})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/prendre", data=form_of(page, f"/agents/dossiers/{DOSSIER_ID}/prendre"))
    assert response.status_code == 409 and "en cours d'examen par un autre agent" in shown(response)


def test_a_checked_document_sends_its_preset_reason_with_the_precision(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections", 200, {"id": DOSSIER_ID})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/corrections"),
            f"motif:{DOC_PDF}": "Justificatif de domicile de plus de 3 mois", f"precision:{DOC_PDF}": "facture de janvier",
            f"motif:{DOC_PNG}": "Document illisible", f"precision:{DOC_PNG}": "",
            f"motif:{DOC_GONE}": "", f"precision:{DOC_GONE}": ""}
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/corrections", data=form)
    assert response.status_code == 303
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections")[0].json()["corrections"] == [
        {"item": DOC_PDF, "reason": "Justificatif de domicile de plus de 3 mois : facture de janvier"},
        {"item": DOC_PNG, "reason": "Document illisible"}]


def test_a_file_no_longer_under_review_shows_no_decision(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services, status="validated")
    text = shown(agent.get(f"/agents/dossiers/{DOSSIER_ID}"))
    assert "aucune décision n'est possible" in text and "Valider le dossier</button>" not in text


def test_an_unknown_file_is_a_french_404(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/dossiers/inconnu", 404, {"detail": "Dossier introuvable."})
    services.answer("GET", HOUSEHOLD, "/review/dossiers/inconnu/audit", 404, {"detail": "Dossier introuvable."})
    response = agent.get("/agents/dossiers/inconnu")
    assert response.status_code == 404 and "Ce dossier n'existe pas." in shown(response)


def test_validating_asks_for_confirmation_first_then_sends_the_version_read(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services, reference="MSL-2027-000123")
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/validate", 200, {"id": DOSSIER_ID, "status": "validated"})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    confirm = agent.post(f"/agents/dossiers/{DOSSIER_ID}/valider", data=form_of(page, f"/agents/dossiers/{DOSSIER_ID}/valider"))
    assert confirm.status_code == 200 and services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/validate") == []
    assert accessible(confirm).h1 == ["Valider le dossier MSL-2027-000123 ?"]
    assert "reçoit un email" in shown(confirm) and "l'inscription scolaire s'ouvre pour Léa Martin" in shown(confirm)
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/valider", data=form_of(confirm, f"/agents/dossiers/{DOSSIER_ID}/valider"))
    assert response.status_code == 303 and response.headers["location"] == f"/agents/dossiers/{DOSSIER_ID}?fait=valide"
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/validate")[0].json() == {"version": 3}
    after = agent.get(response.headers["location"])
    assert '<p class="notice notice--succes" role="status">Le dossier a été validé.' in shown(after)
    assert f"/agents/dossiers/suivant?apres={DOSSIER_ID}" in accessible(after).links


def test_a_refusal_needs_a_reason_shown_next_to_its_field_and_household_is_not_called(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/refuser", data=form_of(page, f"/agents/dossiers/{DOSSIER_ID}/refuser"))
    assert response.status_code == 422
    parsed = accessible(response)
    assert "#motif-refus" in parsed.links and "Saisissez le motif du refus" in shown(response)
    assert 'aria-describedby="motif-refus-aide motif-refus-erreur" aria-invalid="true"' in response.text
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/reject") == []


def test_a_refusal_sends_its_reason(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/reject", 200, {"id": DOSSIER_ID, "status": "rejected"})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/refuser"), "reason": "  Aucun enfant en âge d'être scolarisé.  "}
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/refuser", data=form)
    assert response.status_code == 303 and response.headers["location"].endswith("?fait=refuse")
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/reject")[0].json() == {
        "version": 3, "reason": "Aucun enfant en âge d'être scolarisé."}


def test_corrections_need_at_least_one_reason(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/corrections", data=form_of(page, f"/agents/dossiers/{DOSSIER_ID}/corrections"))
    assert response.status_code == 422
    assert "#demander-corrections" in accessible(response).links and "Saisissez au moins une correction" in shown(response)
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections") == []


def test_corrections_send_one_reason_per_item_filled_in(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections", 200, {"id": DOSSIER_ID})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/corrections"),
            f"correction:{DOC_PDF}": "Facture de plus de trois mois.", "correction:children.c1": "Date de naissance à vérifier."}
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/corrections", data=form)
    assert response.status_code == 303 and response.headers["location"].endswith("?fait=corrections")
    sent = services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections")[0].json()
    assert sent == {"version": 3, "corrections": [
        {"item": "children.c1", "reason": "Date de naissance à vérifier."}, {"item": DOC_PDF, "reason": "Facture de plus de trois mois."}]}


def test_a_reason_too_long_is_shown_on_its_own_item(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/corrections"), "correction:guardians.g1": "x" * 2001}
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/corrections", data=form)
    assert response.status_code == 422 and "#correction-1" in accessible(response).links
    assert "2000 caractères au plus" in shown(response)


def test_a_file_decided_by_another_agent_meanwhile_says_so(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/validate", 409,
                    {"detail": "Ce dossier vient d'être traité par un autre agent."})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/valider"), "confirme": "1"}
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/valider", data=form)
    assert response.status_code == 409
    assert '<p class="notice notice--erreur" role="alert">Ce dossier vient d\'être traité par un autre agent.</p>' in shown(response)


def test_household_refusing_an_item_shows_its_french_reason_at_the_corrections(agent: TestClient, services: FakeServices) -> None:
    dossier_answers(services)
    unknown = "Élément inconnu dans ce dossier : children.zz."
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections", 422,
                    {"detail": unknown, "problems": [unknown]})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/corrections"), "correction:address": "Numéro manquant."}
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/corrections", data=form)
    assert response.status_code == 422 and unknown in shown(response)
    assert ">Numéro manquant.</textarea>" in shown(response)  # what the agent wrote is kept


# ---- the document preview ------------------------------------------------------------------------

def preview_answers(services: FakeServices, content_type: str = "application/pdf", body: bytes = PDF) -> None:
    services.answer("GET", DOCUMENTS, f"/documents/{DOC_PDF}/download", 200, {
        "url": "http://127.0.0.1:9000/ecp-documents/pdf?X-Amz-Signature=1", "expires_in": 300,
        "filename": "facture été.pdf", "content_type": content_type})
    services.answer("GET", OBJECT_STORE, "/ecp-documents/pdf", 200, body, {"content-type": "binary/octet-stream"})


def test_the_preview_relays_the_document_inline_framable_by_this_site_only(agent: TestClient, services: FakeServices) -> None:
    preview_answers(services)
    response = agent.get(f"/agents/documents/{DOC_PDF}/apercu")
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == "inline; filename*=UTF-8''facture%20%C3%A9t%C3%A9.pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert response.headers["cache-control"] == "no-store"
    assert services.to(DOCUMENTS, f"/documents/{DOC_PDF}/download", "GET")[0].authorization == f"Bearer {access_token('agent')}"
    # every page keeps refusing to be framed
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, {"items": [], "next_cursor": None})
    assert "frame-ancestors 'none'" in agent.get("/agents/dossiers").headers["content-security-policy"]


def test_the_download_link_asks_the_browser_to_save_the_file(agent: TestClient, services: FakeServices) -> None:
    preview_answers(services)
    response = agent.get(f"/agents/documents/{DOC_PDF}/apercu", params={"telecharger": "1"})
    assert response.headers["content-disposition"].startswith("attachment;")


def test_a_type_the_viewer_does_not_show_is_never_rendered_inline(agent: TestClient, services: FakeServices) -> None:
    preview_answers(services, content_type="text/html", body=b"<script>alert(1)</script>")
    response = agent.get(f"/agents/documents/{DOC_PDF}/apercu")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")


def test_an_infected_document_is_a_french_410(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", DOCUMENTS, f"/documents/{DOC_GONE}/download", 410, {"detail": "Supprimé."})
    response = agent.get(f"/agents/documents/{DOC_GONE}/apercu")
    assert response.status_code == 410 and "contenait un virus" in shown(response)


def test_the_object_store_unreachable_gives_a_french_503(agent: TestClient, services: FakeServices) -> None:
    preview_answers(services)
    services.down.add(OBJECT_STORE)
    response = agent.get(f"/agents/documents/{DOC_PDF}/apercu")
    assert response.status_code == 503 and "ne peut pas être lu" in shown(response)


# ---- enrolments ----------------------------------------------------------------------------------

def test_the_enrolments_page_shows_capacity_per_school_and_level_and_both_kinds_of_decision(
    agent: TestClient, services: FakeServices
) -> None:
    enrolment_answers(services)
    response = agent.get("/agents/inscriptions")
    page = accessible(response)
    text = shown(response)
    assert page.h1 == ["Inscriptions scolaires"] and response.headers["cache-control"] == "no-store"
    assert "<caption>École élémentaire Jean-Jaurès – année scolaire 2027-2028</caption>" in text
    assert '<th scope="row">CP</th><td>60</td><td>60</td><td>2</td>' in text and "0 (complet)" in text
    # off the map: the agent picks a school among those teaching the level; no seat: the sector school
    choice = text[text.index(f'id="ecole-{ENROL_OFF_MAP}"'):]
    assert 'value="elem-jaures"' in choice[:choice.index("</select>")]
    assert 'value="mat-tilleuls"' not in choice[:choice.index("</select>")]
    assert f'id="ecole-{ENROL_NO_SEAT}"' not in text
    # the dérogation is in its own list, with the family's reason
    assert f"/agents/inscriptions/{ENROL_DEROGATION}/derogation" in page.forms
    assert f"/agents/inscriptions/{ENROL_DEROGATION}/decision" not in page.forms
    assert "Son frère est en CE2 à Marie-Curie." in text
    for button in ("Confirmer l'inscription", "Refuser l'inscription", "Accepter la dérogation", "Refuser la dérogation"):
        assert f">{button}</button>" in text


def test_the_enrolments_page_filters_by_school_and_year(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    response = agent.get("/agents/inscriptions", params={"annee": "2027-2028", "ecole": "mat-tilleuls"})
    assert response.status_code == 200
    assert services.to(ENROLMENT, "/pending-decisions", "GET")[0].query == {
        "school_year": ["2027-2028"], "school_id": ["mat-tilleuls"], "page": ["1"], "limit": ["20"]}
    assert services.to(ENROLMENT, "/schools/elem-jaures/enrolments", "GET") == []
    assert "/agents/exports/inscriptions.csv?ecole=mat-tilleuls&annee=2027-2028" in accessible(response).links


def test_the_enrolments_to_decide_are_paged_filtered_and_show_the_familys_address(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    response = agent.get("/agents/inscriptions", params={"niveau": "CP", "motif": "address_unknown", "page": "2"})
    page = accessible(response)
    text = shown(response)
    assert services.to(ENROLMENT, "/pending-decisions", "GET")[0].query == {
        "page": ["2"], "limit": ["20"], "level": ["CP"], "reason": ["address_unknown"]}
    assert "43 inscriptions à décider, page 2 sur 3." in text
    assert "3 rue Imaginaire, 45190 Montclair-sur-Loire\n  (absente de la carte scolaire)" in text
    assert "8 rue des Lilas, 45190 Montclair-sur-Loire\n  (sur la carte scolaire)" in text
    for n in (1, 3):
        assert f"/agents/inscriptions?annee=&ecole=&niveau=CP&motif=address_unknown&page={n}" in page.links


def test_an_agent_finds_an_enrolment_to_decide_by_its_reference(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    response = agent.get("/agents/inscriptions", params={"ref": "  ins-2027-000123 ", "niveau": "CP"})
    page = accessible(response)
    assert response.status_code == 200
    assert services.to(ENROLMENT, "/pending-decisions", "GET")[0].query == {
        "page": ["1"], "limit": ["20"], "level": ["CP"], "reference": ["ins-2027-000123"]}
    assert 'value="ins-2027-000123"' in shown(response)
    assert "/agents/inscriptions?annee=&ecole=&niveau=CP&motif=&ref=ins-2027-000123&page=2" in page.links


def test_what_is_not_an_enrolment_reference_is_refused_before_asking_enrolment(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    response = agent.get("/agents/inscriptions", params={"ref": "Dupont"})
    assert response.status_code == 422
    assert "Saisissez une référence d'inscription comme INS-2027-000123." in shown(response)
    assert services.to(ENROLMENT, "/pending-decisions", "GET") == []


def test_exports_relay_the_services_csv_with_its_bom_and_semicolons(agent: TestClient, services: FakeServices) -> None:
    csv = "\ufeffRéférence;État\r\nMSL-2027-000123;Validé\r\n".encode()
    services.answer("GET", HOUSEHOLD, "/review/export.csv", 200, csv,
                    {"content-type": "text/csv; charset=utf-8", "content-disposition": 'attachment; filename="dossiers-validated.csv"'})
    response = agent.get("/agents/exports/dossiers.csv", params={"statut": "validated"})
    assert response.status_code == 200 and response.content == csv and response.content.startswith(b"\xef\xbb\xbf")
    assert response.headers["content-type"] == "text/csv; charset=utf-8" and response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == 'attachment; filename="dossiers-validated.csv"'
    assert services.to(HOUSEHOLD, "/review/export.csv", "GET")[0].query == {"status": ["validated"]}
    services.answer("GET", ENROLMENT, "/schools/elem-jaures/enrolments.csv", 200, csv, {"content-type": "text/csv; charset=utf-8"})
    school = agent.get("/agents/exports/inscriptions.csv", params={"ecole": "elem-jaures", "annee": "2027-2028"})
    assert school.status_code == 200 and school.content == csv
    assert services.to(ENROLMENT, "/schools/elem-jaures/enrolments.csv", "GET")[0].query == {"school_year": ["2027-2028"]}


@pytest.mark.parametrize("path", ["/agents/exports/dossiers.csv", "/agents/exports/inscriptions.csv?ecole=elem-jaures",
                                  "/agents/equipe", "/agents/journal", "/agents/dossiers/suivant"])
def test_a_family_gets_the_french_403_on_every_new_page(client: TestClient, services: FakeServices, path: str) -> None:
    logged_in(client, services, role="family")
    response = client.get(path)
    assert response.status_code == 403 and "Accès réservé aux agents" in shown(response)
    assert services.service_calls() == []


def test_a_malformed_school_year_is_a_field_error_without_calling_enrolment(agent: TestClient, services: FakeServices) -> None:
    response = agent.get("/agents/inscriptions", params={"annee": "l'an prochain"})
    assert response.status_code == 422 and "#annee" in accessible(response).links
    assert services.service_calls() == []


def test_refusing_an_enrolment_needs_a_reason(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    page = agent.get("/agents/inscriptions")
    path = f"/agents/inscriptions/{ENROL_OFF_MAP}/decision"
    response = agent.post(path, data={**form_of(page, path), "decision": "refuse"})
    assert response.status_code == 422 and f"#motif-{ENROL_OFF_MAP}" in accessible(response).links
    assert services.to(ENROLMENT, f"/enrolments/{ENROL_OFF_MAP}/decision") == []


def test_confirming_an_enrolment_off_the_map_sends_the_school_chosen(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    services.answer("POST", ENROLMENT, f"/enrolments/{ENROL_OFF_MAP}/decision", 200, enrolment(ENROL_OFF_MAP, status="confirmed"))
    page = agent.get("/agents/inscriptions")
    path = f"/agents/inscriptions/{ENROL_OFF_MAP}/decision"
    response = agent.post(path, data={**form_of(page, path), "decision": "confirm", "school_id": "elem-jaures"})
    assert response.status_code == 303 and response.headers["location"] == "/agents/inscriptions?fait=confirmee"
    assert services.to(ENROLMENT, f"/enrolments/{ENROL_OFF_MAP}/decision")[0].json() == {
        "decision": "confirm", "reason": None, "school_id": "elem-jaures"}
    assert "L'inscription est confirmée." in shown(agent.get(response.headers["location"]))


def test_no_seat_left_is_shown_at_the_confirm_button(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    no_seat = "Plus de place en CP à l'École élémentaire Jean-Jaurès pour 2027-2028."
    services.answer("POST", ENROLMENT, f"/enrolments/{ENROL_NO_SEAT}/decision", 409, {"detail": no_seat})
    page = agent.get("/agents/inscriptions")
    path = f"/agents/inscriptions/{ENROL_NO_SEAT}/decision"
    response = agent.post(path, data={**form_of(page, path), "decision": "confirm"})
    assert response.status_code == 409 and no_seat in shown(response)
    assert f"#confirmer-{ENROL_NO_SEAT}" in accessible(response).links


def test_a_derogation_refusal_sends_its_reason(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    services.answer("POST", ENROLMENT, f"/enrolments/{ENROL_DEROGATION}/derogation/decision", 200, enrolment(ENROL_DEROGATION))
    page = agent.get("/agents/inscriptions")
    path = f"/agents/inscriptions/{ENROL_DEROGATION}/derogation"
    missing = agent.post(path, data={**form_of(page, path), "decision": "refused"})
    assert missing.status_code == 422 and f"#motif-derogation-{ENROL_DEROGATION}" in accessible(missing).links
    response = agent.post(path, data={**form_of(page, path), "decision": "refused", "reason": "École complète en CE2."})
    assert response.status_code == 303 and response.headers["location"].endswith("fait=derogation-refusee")
    assert services.to(ENROLMENT, f"/enrolments/{ENROL_DEROGATION}/derogation/decision")[0].json() == {
        "decision": "refused", "reason": "École complète en CE2."}


def test_enrolment_unreachable_gives_the_french_503_page(agent: TestClient, services: FakeServices) -> None:
    services.down.add(ENROLMENT)
    response = agent.get("/agents/inscriptions")
    assert response.status_code == 503 and "Service momentanément indisponible" in shown(response)


# ---- the sector map ------------------------------------------------------------------------------

CURRENT_MAP = {"version": "map-20270301-aa", "created_at": "2027-03-01T09:00:00Z", "applied_at": "2027-03-01T09:01:00Z",
               "source_name": "carte-2027.csv", "report": {"rows": 39, "segments": 39, "streets": 30, "can_apply": True,
                                                           "errors": [], "warnings": []},
               "segments": [{"street": "rue des Lilas"}] * 39}
CSV = "street;number_from;number_to;side;maternelle;elementaire\nrue des Lilas;1;99;odd;mat-inconnue;elem-jaures\n".encode()


def upload(agent: TestClient, data: bytes = CSV, name: str = "carte.csv") -> httpx.Response:
    token = Page(agent.get("/agents/carte-scolaire").text).hidden()["csrf_token"]
    return agent.post("/agents/carte-scolaire", data={"csrf_token": token}, files={"fichier": (name, data, "text/csv")})


def test_the_sector_map_page_shows_the_map_in_force_and_the_upload_form(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/sector-map", 200, CURRENT_MAP)
    response = agent.get("/agents/carte-scolaire")
    page = accessible(response)
    text = shown(response)
    assert page.h1 == ["Carte scolaire"]
    assert "map-20270301-aa" in text and "01/03/2027 à 10 h 01" in text and "<dd>39</dd>" in text
    assert 'enctype="multipart/form-data"' in text and '<input type="file" id="fichier-carte" name="fichier"' in text


def test_a_file_with_errors_shows_them_per_line_and_cannot_be_applied(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/sector-map", 404, {"detail": "Aucune carte scolaire."})
    services.answer("POST", ENROLMENT, "/sector-map/imports", 201, {
        "import_id": "map-1", "rows": 1, "segments": 0, "streets": 0, "can_apply": False, "warnings": [],
        "errors": [{"kind": "unknown_school", "line": 2, "message": "École inconnue : mat-inconnue."}]})
    response = upload(agent)
    assert response.status_code == 422
    text = shown(response)
    assert "Aucune carte scolaire n'est appliquée" in text
    assert "<caption>Erreurs (1)</caption>" in text and "<td>2</td><td>école inconnue</td><td>École inconnue : mat-inconnue.</td>" in text
    assert "Appliquer cette carte" not in text
    sent = services.to(ENROLMENT, "/sector-map/imports")[0]
    assert sent.body == CSV and sent.content_type == "text/csv" and sent.query == {"name": ["carte.csv"]}


def test_a_valid_file_is_applied_with_the_apply_button(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/sector-map", 200, CURRENT_MAP)
    services.answer("POST", ENROLMENT, "/sector-map/imports", 201, {
        "import_id": "map-2", "rows": 39, "segments": 39, "streets": 30, "can_apply": True, "errors": [], "warnings": []})
    services.answer("POST", ENROLMENT, "/sector-map/imports/map-2/apply", 200, {"version": "map-2", "segments": 39, "applied": True})
    checked = upload(agent)
    assert checked.status_code == 200 and "Le fichier est valide" in shown(checked)
    applied = agent.post("/agents/carte-scolaire/appliquer", data=form_of(checked, "/agents/carte-scolaire/appliquer"))
    assert applied.status_code == 303 and applied.headers["location"] == "/agents/carte-scolaire?appliquee=map-2"
    assert "La nouvelle carte scolaire est appliquée (version map-2)." in shown(agent.get(applied.headers["location"]))


def test_no_file_chosen_is_a_field_error_without_calling_enrolment(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/sector-map", 200, CURRENT_MAP)
    response = upload(agent, data=b"", name="")
    assert response.status_code == 422 and "#fichier-carte" in accessible(response).links
    assert services.to(ENROLMENT, "/sector-map/imports") == []


def test_applying_a_map_with_errors_shows_enrolments_refusal(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/sector-map", 200, CURRENT_MAP)
    services.answer("POST", ENROLMENT, "/sector-map/imports/map-3/apply", 409, {
        "detail": "Cette version contient des erreurs : elle ne peut pas être appliquée.",
        "report": {"rows": 1, "segments": 0, "streets": 0, "can_apply": False, "warnings": [],
                   "errors": [{"kind": "malformed", "line": 1, "message": "Colonnes manquantes."}]}})
    token = Page(agent.get("/agents/carte-scolaire").text).hidden()["csrf_token"]
    response = agent.post("/agents/carte-scolaire/appliquer", data={"csrf_token": token, "import_id": "map-3"})
    assert response.status_code == 409
    text = shown(response)
    assert "elle ne peut pas être appliquée" in text and "Colonnes manquantes." in text and "Appliquer cette carte" not in text


def test_after_a_decision_the_page_comes_back_with_the_school_and_year_shown(agent: TestClient, services: FakeServices) -> None:
    enrolment_answers(services)
    services.answer("POST", ENROLMENT, f"/enrolments/{ENROL_OFF_MAP}/decision", 200, enrolment(ENROL_OFF_MAP, status="refused"))
    page = agent.get("/agents/inscriptions", params={"annee": "2027-2028", "ecole": "elem-jaures"})
    path = f"/agents/inscriptions/{ENROL_OFF_MAP}/decision"
    form = form_of(page, path)
    assert form["annee"] == "2027-2028" and form["ecole"] == "elem-jaures"
    response = agent.post(path, data={**form, "decision": "refuse", "reason": "Famille partie de la commune."})
    assert response.headers["location"] == "/agents/inscriptions?fait=refusee&annee=2027-2028&ecole=elem-jaures"


def test_corrections_on_a_large_family_are_read_beyond_the_usual_twenty_fields(agent: TestClient, services: FakeServices) -> None:
    large = review()
    large["children"] = [{"child_id": f"c{n}", "first_name": f"Enfant{n}", "last_name": "Martin", "birth_date": "2015-01-01"}
                         for n in range(12)]
    large["documents"] += [{"document_id": f"doc-c{n}", "requirement": "child_identity", "url": None, "note": "En cours d'analyse.",
                            "label": f"la pièce d'identité de l'enfant Enfant{n} Martin"} for n in range(12)]
    dossier_answers(services)
    services.answer("GET", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}", 200, large)
    services.answer("POST", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections", 200, {"id": DOSSIER_ID})
    page = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    # as a browser sends it: each document's reason list and precision, each data item's reason
    checklist = {f"{field}:{d['document_id']}": "" for d in large["documents"] for field in ("motif", "precision")}
    form = {**form_of(page, f"/agents/dossiers/{DOSSIER_ID}/corrections"), **checklist,
            "correction:children.c11": "Certificat de naissance manquant."}
    assert len(form) > 20
    response = agent.post(f"/agents/dossiers/{DOSSIER_ID}/corrections", data=form)
    assert response.status_code == 303
    assert services.to(HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/request-corrections")[0].json()["corrections"] == [
        {"item": "children.c11", "reason": "Certificat de naissance manquant."}]


def test_a_token_the_services_no_longer_accept_sends_the_agent_to_the_login_page(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/review/queue", 401, {"detail": "Votre session a expiré ou n'est pas valide."})
    response = agent.get("/agents/dossiers")
    assert response.status_code == 303 and response.headers["location"] == "/connexion?suite=%2Fagents%2Fdossiers"
    assert 'ecp_session=""' in response.headers["set-cookie"]


def test_a_correction_on_a_document_since_replaced_names_it_as_replaced_not_by_its_id(
    agent: TestClient, services: FakeServices
) -> None:
    dossier_answers(services)
    replaced = [{**AUDIT[1], "corrections": [{"item": "doc-replaced-since", "reason": "Photo floue."}]}]
    services.answer("GET", HOUSEHOLD, f"/review/dossiers/{DOSSIER_ID}/audit", 200, [AUDIT[0], *replaced])
    response = agent.get(f"/agents/dossiers/{DOSSIER_ID}")
    assert response.status_code == 200
    assert "Élément remplacé ou retiré depuis la demande : Photo floue." in response.text
    assert "doc-replaced-since" not in response.text


# ---- the decision trail and the team -----------------------------------------------------------

def test_the_journal_names_who_decided_what_and_when(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)
    services.answer("GET", ENROLMENT, "/audit", 200, {"items": [
        {"id": "e-derog:derogation", "at": "2027-03-21T13:30:00Z", "agent_id": "agent-7f3a9c21", "action": "derogation_accepted",
         "label": "Dérogation acceptée", "enrolment_id": ENROL_DEROGATION, "reference": "INS-2027-E-DEROG", "school_id": "elem-jaures",
         "level": "CP", "school_year": "2027-2028", "reason": None, "details": {}},
        {"id": "cap-1", "at": "2027-03-20T08:00:00Z", "agent_id": "agent-gone", "action": "capacity_changed", "label": "Capacité modifiée",
         "school_id": "mat-tilleuls", "level": "PS", "school_year": "2027-2028", "details": {"from": 56, "to": 58}},
    ], "total": 2, "page": 1, "pages": 1})
    response = agent.get("/agents/journal", params={"action": "derogation_accepted"})
    page = accessible(response)
    text = shown(response)
    assert page.h1 == ["Journal des décisions"] and response.headers["cache-control"] == "no-store"
    assert "<td>21/03/2027 à 14 h 30</td>" in text and "<td>Marie Dupont</td>" in text and "<td>Dérogation acceptée</td>" in text
    assert "École élémentaire Jean-Jaurès, CP (2027-2028)" in text and "Capacité 56 → 58" in text
    assert "<td>Agent agent-go</td>" in text  # an id the directory does not know
    assert services.to(ENROLMENT, "/audit", "GET")[0].query == {"page": ["1"], "limit": ["50"], "action": ["derogation_accepted"]}


def test_the_journal_finds_an_enrolments_decisions_by_its_reference(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)
    services.answer("GET", ENROLMENT, "/audit", 200, {"items": [], "total": 0, "page": 1, "pages": 1})
    response = agent.get("/agents/journal", params={"ref": " INS-2027-000123 "})
    assert response.status_code == 200 and 'value="INS-2027-000123"' in shown(response)
    assert services.to(ENROLMENT, "/audit", "GET")[0].query == {"page": ["1"], "limit": ["50"], "reference": ["INS-2027-000123"]}


def test_the_journal_refuses_what_is_not_an_enrolment_reference(agent: TestClient, services: FakeServices) -> None:
    services.answer("GET", ENROLMENT, "/schools", 200, SCHOOLS)
    response = agent.get("/agents/journal", params={"ref": "MSL-2027-000123"})
    assert response.status_code == 422
    assert "Saisissez une référence d'inscription comme INS-2027-000123." in shown(response)
    assert services.to(ENROLMENT, "/audit", "GET") == []


def test_an_admin_sees_the_team_invites_and_deactivates(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services, role="admin")
    services.answer("POST", IDENTITY, "/admin/accounts", 201, {"account_id": "agent-new"})
    services.answer("POST", IDENTITY, "/admin/staff/agent-7f3a9c21/deactivate", 200, {**STAFF[0], "active": False})
    page = client.get("/agents/equipe")
    parsed = accessible(page)
    text = shown(page)
    assert parsed.h1 == ["Équipe du service"] and "<td>Marie Dupont</td>" in text and "<td>Désactivé</td>" in text
    assert "/agents/equipe/agent-7f3a9c21/desactiver" in parsed.forms and "/agents/equipe/agent-old/reactiver" in parsed.forms
    assert "/agents/equipe/agent-me/desactiver" not in parsed.forms  # not oneself
    invalid = client.post("/agents/equipe/inviter", data={**form_of(page, "/agents/equipe/inviter"), "display_name": " ",
                                                          "email": "pas-une-adresse", "role": "agent"})
    assert invalid.status_code == 422 and "#nom-agent" in accessible(invalid).links and "#email-agent" in accessible(invalid).links
    assert services.to(IDENTITY, "/admin/accounts") == []
    invited = client.post("/agents/equipe/inviter", data={**form_of(page, "/agents/equipe/inviter"),
                                                          "display_name": " Paul   Bernard ", "email": "paul.bernard@ville.fr", "role": "agent"})
    assert invited.status_code == 303 and invited.headers["location"] == "/agents/equipe?fait=invite"
    assert services.to(IDENTITY, "/admin/accounts")[0].json() == {"email": "paul.bernard@ville.fr", "display_name": "Paul Bernard", "role": "agent"}
    off = client.post("/agents/equipe/agent-7f3a9c21/desactiver", data=form_of(page, "/agents/equipe/agent-7f3a9c21/desactiver"))
    assert off.status_code == 303 and off.headers["location"] == "/agents/equipe?fait=desactive"


def test_an_agent_sees_the_team_without_any_admin_action(agent: TestClient, services: FakeServices) -> None:
    text = shown(agent.get("/agents/equipe"))
    assert "<td>Marie Dupont</td>" in text and "Désactiver" not in text and "Inviter un agent" not in text


def test_the_late_filter_asks_for_the_files_waiting_since_the_newest_overdue_one_and_marks_them(
    agent: TestClient, services: FakeServices
) -> None:
    services.answer("GET", 8106, "/overdue", 200, {"threshold_working_days": 10, "files": [
        {"dossier_id": DOSSIER_ID, "waiting_since": "2027-02-01T08:00:00+00:00", "working_days_waiting": 30},
        {"dossier_id": "d-2", "waiting_since": "2027-02-20T08:00:00+00:00", "working_days_waiting": 16}]})
    services.answer("GET", HOUSEHOLD, "/review/queue", 200, QUEUE_PAGE)
    response = agent.get("/agents/dossiers", params={"delai": "retard", "statut": "all"})
    query = services.to(HOUSEHOLD, "/review/queue", "GET")[0].query
    assert query["status"] == ["submitted"] and query["submitted_until"] == ["2027-02-20T08:00:00+00:00"]
    assert shown(response).count("En retard</span>") == 2
    services.answer("GET", 8106, "/overdue", 200, {"threshold_working_days": 10, "files": []})
    agent.get("/agents/dossiers", params={"delai": "retard"})
    assert services.to(HOUSEHOLD, "/review/queue", "GET")[1].query["submitted_until"] == ["1970-01-01T00:00:00+00:00"]
