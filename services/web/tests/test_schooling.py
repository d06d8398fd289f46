"""Inscription scolaire pages, with identity, enrolment and the object store faked (no I/O).

The fake services are ``test_account``'s (answers per port and path, every call recorded), plus
raw bytes for the presigned certificate link.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web.tests.test_account import ENROLMENT, FakeServices, client, logged_in  # noqa: F401
from services.web.tests.test_links import Page, accessible, shown, title

OBJECT_STORE = 9000
CERTIFICATE_URL = "http://127.0.0.1:9000/ecp-documents/enrolments/e-lea.pdf?X-Amz-Signature=abc"
PDF = b"%PDF-1.7\n% certificat\n%%EOF\n"
SCHOOLS = [
    {"id": "elem-jaures", "name": "École élémentaire Jean-Jaurès", "address": "3 rue Jean-Jaurès", "type": "elementaire",
     "levels": ["CP", "CE1", "CE2", "CM1", "CM2"], "capacity": {}, "capacities": {}},
    {"id": "prim-pasteur", "name": "École primaire Pasteur", "address": "8 avenue Pasteur", "type": "primaire",
     "levels": ["PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"], "capacity": {}, "capacities": {}},
    {"id": "mat-coquelicots", "name": "École maternelle Les Coquelicots", "address": "1 rue des Fleurs", "type": "maternelle",
     "levels": ["PS", "MS", "GS"], "capacity": {}, "capacities": {}},
]
JAURES = {"id": "elem-jaures", "name": "École élémentaire Jean-Jaurès", "address": "3 rue Jean-Jaurès"}


@dataclass
class FakeServicesWithFiles(FakeServices):
    """Also answers raw bytes (the object store's PDF), POSTs apart from GETs on the same path
    (``POST /enrolments`` and ``GET /enrolments``), and can be made unreachable per port."""

    files: dict[tuple[int, str], bytes] = field(default_factory=dict)
    posts: dict[tuple[int, str], tuple[int, Any]] = field(default_factory=dict)
    down: set[int] = field(default_factory=set)

    def answer_post(self, port: int, path: str, status: int, body: Any = None) -> None:
        self.posts[(port, path)] = (status, body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        if port in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST" and (port, request.url.path) in self.posts:
            self.calls.append((port, request.url.path, json.loads(request.content), request.headers.get("authorization")))
            status, body = self.posts[(port, request.url.path)]
            return httpx.Response(status, json=body) if body is not None else httpx.Response(status)
        if (port, request.url.path) in self.files:
            self.calls.append((port, request.url.path, None, request.headers.get("authorization")))
            return httpx.Response(200, content=self.files[(port, request.url.path)], headers={"Content-Type": "application/pdf"})
        return super().handler(request)


@pytest.fixture
def services() -> FakeServicesWithFiles:
    return FakeServicesWithFiles()


def child(child_id: str, first_name: str, *, level: str | None = "CP", label: str | None = "CP", sector: dict[str, str] | None = JAURES,
          enrolment: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    eligible = level is not None
    return {"child_id": child_id, "first_name": first_name, "last_name": "Martin", "birth_date": "2021-05-01",
            "eligible": eligible, "message": message, "level": level, "level_label": label,
            "sector_school": sector if eligible else None, "address_on_map": True, "enrolment": enrolment,
            "can_enrol": eligible and enrolment is None}


def enrolment(enrolment_id: str, child_id: str, first_name: str, *, status: str = "confirmed", derogation: dict[str, Any] | None = None,
              certificate: bool = True, label: str = "inscription confirmée") -> dict[str, Any]:
    return {"id": enrolment_id, "reference": "INS-2027-1a2b3c4d", "child_id": child_id, "child_first_name": first_name,
            "child_last_name": "Martin", "school_year": "2027-2028", "level": "CP", "level_label": "CP", "status": status,
            "status_label": label, "school_id": "elem-jaures", "sector_school_id": "elem-jaures", "derogation": derogation,
            "refusal_reason": None, "certificate_available": certificate, "created_at": "2026-11-26T06:00:00Z"}


def enrolment_answers(services: FakeServices, children: list[dict[str, Any]], enrolments: list[dict[str, Any]] | None = None,
                      *, unlocked: bool = True) -> None:
    services.answer(ENROLMENT, "/enrolments/eligible", 200, {
        "unlocked": unlocked, "school_year": "2027-2028", "school_year_start": 2027, "children": children if unlocked else [],
        "message": None if unlocked else "Votre dossier famille n'a pas encore été validé par le Service Scolaire et Périscolaire : "
                                         "l'inscription scolaire sera possible dès sa validation."})
    services.answer(ENROLMENT, "/enrolments", 200, {"enrolments": enrolments or []})
    services.answer(ENROLMENT, "/schools", 200, SCHOOLS)


def summary_links(response: httpx.Response) -> list[str]:
    """The error summary's links (the table of children links to their sections too)."""
    return re.findall(r'<li><a href="(#[^"]+)">', response.text)


def staff_token() -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"role": "agent"}).encode()).decode().rstrip("=")
    return f"header.{claims}.signature"


# ---- the page ----------------------------------------------------------------------------------

def test_before_the_file_is_validated_the_page_explains_why_and_links_to_my_space(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    enrolment_answers(services, [], unlocked=False)
    response = client.get("/inscription-scolaire")
    assert response.status_code == 200
    page = accessible(response)
    assert page.h1 == ["Inscription scolaire"]
    assert "n'a pas encore été validé" in shown(response) and "/mon-espace" in page.links
    assert "/inscription-scolaire" not in page.forms
    assert response.headers["cache-control"] == "no-store"


def test_the_schooling_page_shows_the_files_reference_that_enrolment_was_told(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa")])
    services.answer(ENROLMENT, "/enrolments/eligible", 200, {
        "unlocked": True, "school_year": "2027-2028", "school_year_start": 2027, "children": [child("c1", "Léa")],
        "message": None, "dossier_reference": "MSL-2027-000123"})
    header = shown(client.get("/inscription-scolaire")).split("</header>", 1)[0]
    assert 'Dossier n° <strong class="ref">MSL-2027-000123</strong>' in header
    assert not [c for c in services.calls if c[1] == "/dossier"]  # no call to household for it


def test_each_child_shows_its_level_sector_school_and_an_enrol_button(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    baby = child("c2", "Tom", level=None, label=None, message="Votre enfant, né·e en 2026, pourra être inscrit·e en petite section à la rentrée 2029.")
    enrolment_answers(services, [child("c1", "Léa"), baby])
    response = client.get("/inscription-scolaire")
    page = accessible(response)
    text = shown(response)
    assert "Léa Martin" in text and "1er mai 2021" in text and "École élémentaire Jean-Jaurès" in text
    # One card per child with where it stands; « Inscrire » leads to the summary first.
    assert '<span class="badge badge--action">À inscrire</span>' in text
    assert '<span class="badge badge--neutre">Pas d\'inscription cette année</span>' in text
    assert "Inscrire Léa" in text and "Inscrire Tom" not in text
    assert "pourra être inscrit·e en petite section à la rentrée 2029" in text
    assert "/inscription-scolaire/confirmer" in page.forms and page.hidden()["enfant"] == "c1"
    assert "/inscription-scolaire" not in page.forms  # nothing is posted from this page
    assert all(auth == "Bearer access-1" for port, _, _, auth in services.calls if port == ENROLMENT)


def test_a_confirmed_enrolment_shows_its_certificate_link_and_a_derogation_form_for_other_schools(
    client: TestClient, services: FakeServices
) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})],
                      [enrolment("e-lea", "c1", "Léa")])
    response = client.get("/inscription-scolaire")
    page = accessible(response)
    text = shown(response)
    assert "/inscription-scolaire/e-lea/certificat" in page.links
    assert "Télécharger le certificat d'inscription de Léa" in text and "INS-2027-1a2b3c4d" in text
    assert "Inscrire Léa" not in text
    assert "/inscription-scolaire/e-lea/derogation" in page.forms
    # Only schools teaching CP other than the sector one are offered.
    assert 'value="prim-pasteur"' in text and 'value="elem-jaures"' not in text and 'value="mat-coquelicots"' not in text
    assert 'for="ecole-e-lea"' in text and 'for="motif-e-lea"' in text and 'for="precisions-e-lea"' in text
    assert 'aria-describedby="precisions-e-lea-aide"' in text
    assert "Demander une dérogation pour Léa" in text


def test_a_pending_derogation_shows_its_state_and_no_second_form(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    derogation = {"requested_school_id": "prim-pasteur", "reason_category": "fratrie", "reason_label": "fratrie",
                  "reason_text": "Son frère y est en CM1.", "status": "pending"}
    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})],
                      [enrolment("e-lea", "c1", "Léa", derogation=derogation)])
    text = shown(client.get("/inscription-scolaire"))
    assert "en cours d'examen" in text and "École primaire Pasteur" in text
    assert "Frère ou sœur dans l'école demandée : Son frère y est en CM1." in text
    assert "/inscription-scolaire/e-lea/derogation" not in text


def test_a_refused_derogation_shows_the_services_reason(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    derogation = {"requested_school_id": "prim-pasteur", "reason_category": "autre", "reason_label": "autre motif",
                  "reason_text": "Plus proche.", "status": "refused", "decision_reason": "Plus de place en CP."}
    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})],
                      [enrolment("e-lea", "c1", "Léa", derogation=derogation)])
    text = shown(client.get("/inscription-scolaire"))
    assert "refusée" in text and "Réponse du service" in text and "Plus de place en CP." in text


def test_an_address_off_the_map_and_an_earlier_refusal_are_explained(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    off_map = {**child("c1", "Léa", sector=None), "address_on_map": False}
    refused = {**enrolment("e-old", "c1", "Léa", status="refused", label="inscription refusée", certificate=False),
               "refusal_reason": "Justificatif de domicile trop ancien."}
    enrolment_answers(services, [off_map], [refused])
    response = client.get("/inscription-scolaire")
    accessible(response)
    text = shown(response)
    assert "Votre adresse ne figure pas sur la carte scolaire" in text
    assert "Demande précédente refusée" in text and "Justificatif de domicile trop ancien." in text
    assert "Inscrire Léa" in text  # a refusal frees the child for a new request
    assert "/inscription-scolaire/e-old/certificat" not in text


def test_agents_are_sent_to_their_own_pages(client: TestClient, services: FakeServices) -> None:
    services.answer(8101, "/auth/login", 200, {"access_token": staff_token(), "refresh_token": "r", "expires_in": 600})
    form = Page(client.get("/connexion").text).hidden()
    client.post("/connexion", data={**form, "email": "agent@ville.fr", "password": "x"})
    response = client.get("/inscription-scolaire")
    assert response.status_code == 303 and response.headers["location"] == "/agents/dossiers"


def test_the_enrolment_service_down_gives_a_french_503_page(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    services.down.add(ENROLMENT)
    response = client.get("/inscription-scolaire")
    assert response.status_code == 503
    accessible(response)
    assert "Le service des inscriptions scolaires ne répond pas" in shown(response)


# ---- enrol -------------------------------------------------------------------------------------

def confirm_form(client: TestClient, child_id: str = "c1") -> dict[str, str]:
    """The summary page of one child's enrolment, and its form's fields."""
    summary = client.get("/inscription-scolaire/confirmer", params={"enfant": child_id})
    assert summary.status_code == 200, summary.text
    return Page(summary.text).hidden()


def test_enrolling_shows_a_summary_first_and_nothing_is_sent_before_confirming(
    client: TestClient, services: FakeServicesWithFiles
) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa")])
    summary = client.get("/inscription-scolaire/confirmer", params={"enfant": "c1"})
    page = accessible(summary)
    assert page.h1 == ["Confirmer l'inscription de Léa"] and summary.headers["cache-control"] == "no-store"
    text = shown(summary)
    assert "Récapitulatif" in text and "Léa Martin" in text and "2027-2028" in text and "École élémentaire Jean-Jaurès" in text
    assert ">Confirmer l'inscription de Léa</button>" in summary.text and "/inscription-scolaire" in page.forms
    assert {"child_id": "c1", "school_year": "2027-2028"}.items() <= page.hidden().items()
    assert not any(path == "/enrolments" and body for _, path, body, _ in services.calls)


def test_the_summary_of_a_child_who_cannot_be_enrolled_goes_back_to_the_page(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})])
    response = client.get("/inscription-scolaire/confirmer", params={"enfant": "c1"})
    assert response.status_code == 303 and response.headers["location"] == "/inscription-scolaire#enfant-c1"
    unknown = client.get("/inscription-scolaire/confirmer", params={"enfant": "pas-a-nous"})
    assert unknown.status_code == 303 and unknown.headers["location"] == "/inscription-scolaire"


def test_enrolling_posts_the_child_and_year_then_the_page_says_it_is_done(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa")])
    form = confirm_form(client)
    services.answer_post(ENROLMENT, "/enrolments", 201, enrolment("e-lea", "c1", "Léa"))
    response = client.post("/inscription-scolaire", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/inscription-scolaire?annee=2027#enfant-c1"  # the year enrolled for
    assert (ENROLMENT, "/enrolments", {"child_id": "c1", "school_year": "2027-2028"}, "Bearer access-1") in services.calls

    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})],
                      [enrolment("e-lea", "c1", "Léa")])
    after = client.get(response.headers["location"])
    assert 'role="status"><p>La demande d&#39;inscription de Léa est enregistrée : inscription confirmée.' in after.text
    assert "La demande d&#39;inscription" not in client.get("/inscription-scolaire").text  # said once


def refused(client: TestClient, posted: httpx.Response, location: str = "/inscription-scolaire") -> httpx.Response:
    """A refused form: post/redirect/get back to the page (Back and refresh never send it again),
    which shows the errors and what was typed once."""
    assert posted.status_code == 303 and posted.headers["location"] == location, posted.text
    shown_once = client.get(location)
    assert "Erreur" not in title(client.get(location))  # a refresh: the page afresh
    return shown_once


def test_an_enrolment_error_goes_next_to_the_button_or_becomes_a_notice(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa")])
    form = confirm_form(client)
    already = "Cet enfant est déjà inscrit (ou en cours d'inscription) pour l'année scolaire 2027-2028."
    services.answer_post(ENROLMENT, "/enrolments", 409, {"detail": already})
    response = refused(client, client.post("/inscription-scolaire", data=form), "/inscription-scolaire?annee=2027#enfant-c1")
    assert response.status_code == 409
    page = accessible(response)
    assert title(response).startswith("Erreur : Inscription scolaire")
    assert summary_links(response) == ["#inscrire-c1"] and already in shown(response)
    assert 'aria-describedby="inscrire-c1-erreur"' in response.text

    # Enrolled meanwhile in another tab: no button any more, the reason is the page's notice.
    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})])
    response = refused(client, client.post("/inscription-scolaire", data=form), "/inscription-scolaire?annee=2027#enfant-c1")
    assert response.status_code == 409
    page = accessible(response)
    assert summary_links(response) == [] and f'role="alert">{already}' in shown(response)


def test_an_enrolment_left_unanswered_says_it_may_have_been_recorded(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa")])
    form = confirm_form(client)
    services.down.add(ENROLMENT)  # a timeout looks the same to the page: no answer
    response = client.post("/inscription-scolaire", data=form)
    assert response.status_code == 503
    accessible(response)
    assert "votre demande a peut-être été enregistrée" in shown(response)


def test_a_post_without_the_csrf_pair_is_refused_before_any_call(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    services.calls.clear()
    for path in ("/inscription-scolaire", "/inscription-scolaire/e-lea/derogation"):
        response = client.post(path, data={"child_id": "c1", "school_year": "2027-2028"})
        assert response.status_code == 403 and "Formulaire expiré" in response.text
    assert services.calls == []


def test_a_forged_enrol_form_without_a_child_is_a_french_400(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    enrolment_answers(services, [child("c1", "Léa")])
    form = confirm_form(client)
    services.calls.clear()
    response = client.post("/inscription-scolaire", data={**form, "child_id": ""})
    assert response.status_code == 400 and "Formulaire non valide" in response.text
    assert services.calls == []


# ---- dérogation --------------------------------------------------------------------------------

def confirmed_lea(services: FakeServices) -> None:
    enrolment_answers(services, [child("c1", "Léa", enrolment={"id": "e-lea", "status": "confirmed"})],
                      [enrolment("e-lea", "c1", "Léa")])


def test_an_incomplete_derogation_lists_each_missing_field_without_calling_the_service(
    client: TestClient, services: FakeServices
) -> None:
    logged_in(client, services)
    confirmed_lea(services)
    form = Page(client.get("/inscription-scolaire").text).hidden()
    response = refused(client, client.post("/inscription-scolaire/e-lea/derogation",
                           data={**form, "requested_school_id": "", "reason_category": "", "reason_text": "  "}))
    assert response.status_code == 422
    accessible(response)
    assert summary_links(response) == ["#ecole-e-lea", "#motif-e-lea", "#precisions-e-lea"]
    assert 'aria-describedby="precisions-e-lea-aide precisions-e-lea-erreur" aria-invalid="true"' in response.text
    assert "/enrolments/e-lea/derogation" not in services.paths()


def test_a_school_not_in_the_list_or_a_text_too_long_is_refused_here(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    confirmed_lea(services)
    form = Page(client.get("/inscription-scolaire").text).hidden()
    response = refused(client, client.post("/inscription-scolaire/e-lea/derogation",
                           data={**form, "requested_school_id": "ecole-inconnue", "reason_category": "autre", "reason_text": "x" * 2001}))
    assert response.status_code == 422
    assert "Choisissez l'école souhaitée dans la liste." in shown(response) and "2000 caractères au plus" in shown(response)
    assert "x" * 2001 in response.text  # what was typed is kept
    assert "/enrolments/e-lea/derogation" not in services.paths()


def test_a_derogation_is_sent_then_the_page_says_the_service_will_answer(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    confirmed_lea(services)
    form = Page(client.get("/inscription-scolaire").text).hidden()
    body = {"requested_school_id": "prim-pasteur", "reason_category": "fratrie", "reason_text": "Son frère y est en CM1."}
    services.answer_post(ENROLMENT, "/enrolments/e-lea/derogation", 200, enrolment("e-lea", "c1", "Léa"))
    response = client.post("/inscription-scolaire/e-lea/derogation", data={**form, **body})
    assert response.status_code == 303
    assert response.headers["location"] == "/inscription-scolaire?annee=2027#enfant-c1"  # the year enrolled for
    assert (ENROLMENT, "/enrolments/e-lea/derogation", body, "Bearer access-1") in services.calls
    assert "vous serez averti·e par email" in shown(client.get(response.headers["location"]))


def test_the_services_refusal_of_a_derogation_goes_next_to_the_school(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    confirmed_lea(services)
    form = Page(client.get("/inscription-scolaire").text).hidden()
    reason = "L'école « École primaire Pasteur » n'accueille pas d'élèves en CP."
    services.answer_post(ENROLMENT, "/enrolments/e-lea/derogation", 422, {"detail": reason})
    response = refused(client, client.post("/inscription-scolaire/e-lea/derogation",
                           data={**form, "requested_school_id": "prim-pasteur", "reason_category": "medical", "reason_text": "Allergie."}))
    assert response.status_code == 422
    assert summary_links(response) == ["#ecole-e-lea"] and reason in shown(response)
    assert '<option value="medical" selected>' in response.text and "Allergie." in response.text


def test_a_derogation_on_someone_elses_enrolment_is_a_french_404(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    confirmed_lea(services)
    form = Page(client.get("/inscription-scolaire").text).hidden()
    services.answer_post(ENROLMENT, "/enrolments/e-autre/derogation", 404, {"detail": "Inscription introuvable."})
    response = client.post("/inscription-scolaire/e-autre/derogation",
                           data={**form, "requested_school_id": "prim-pasteur", "reason_category": "autre", "reason_text": "Oui."})
    assert response.status_code == 404 and "Inscription introuvable" in shown(response)


# ---- certificat --------------------------------------------------------------------------------

def certificate_link(services: FakeServices, status: int = 200, detail: str | None = None) -> None:
    body = ({"url": CERTIFICATE_URL, "expires_in": 300, "filename": "certificat-inscription-INS-2027-1a2b3c4d.pdf",
             "content_type": "application/pdf"} if status == 200 else {"detail": detail})
    services.answer(ENROLMENT, "/enrolments/e-lea/certificate", status, body)


def test_the_certificate_is_relayed_as_a_pdf_attachment_with_a_french_name(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    certificate_link(services)
    services.files[(OBJECT_STORE, "/ecp-documents/enrolments/e-lea.pdf")] = PDF
    response = client.get("/inscription-scolaire/e-lea/certificat")
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="certificat-inscription-INS-2027-1a2b3c4d.pdf"'
    assert response.headers["cache-control"] == "no-store"
    # The presigned link is fetched by the page, without the family's token.
    assert (OBJECT_STORE, "/ecp-documents/enrolments/e-lea.pdf", None, None) in services.calls


def test_a_certificate_not_ready_yet_says_to_retry_shortly(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    certificate_link(services, 409, "Le certificat d'inscription est en cours de préparation : réessayez dans quelques secondes.")
    response = client.get("/inscription-scolaire/e-lea/certificat")
    assert response.status_code == 409 and response.headers["retry-after"] == "10"
    page = accessible(response)
    assert page.h1 == ["Certificat pas encore disponible"]
    assert "réessayez dans quelques secondes" in shown(response) and "/inscription-scolaire/e-lea/certificat" in page.links


def test_an_unreachable_object_store_gives_a_french_503_not_a_broken_file(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    certificate_link(services)
    services.down.add(OBJECT_STORE)
    response = client.get("/inscription-scolaire/e-lea/certificat")
    assert response.status_code == 503 and "text/html" in response.headers["content-type"]
    assert "Certificat momentanément indisponible" in shown(response)


def test_something_other_than_a_pdf_is_never_relayed(client: TestClient, services: FakeServicesWithFiles) -> None:
    logged_in(client, services)
    certificate_link(services)
    services.files[(OBJECT_STORE, "/ecp-documents/enrolments/e-lea.pdf")] = b"<html>erreur</html>"
    response = client.get("/inscription-scolaire/e-lea/certificat")
    assert response.status_code == 503 and "<html>erreur</html>" not in response.text


def test_the_certificate_of_an_unknown_enrolment_is_a_french_404(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    certificate_link(services, 404, "Inscription introuvable.")
    response = client.get("/inscription-scolaire/e-lea/certificat")
    assert response.status_code == 404
    accessible(response)
