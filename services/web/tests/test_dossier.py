"""Family file pages (Déclarer mon entourage, pièces justificatives, transmettre, mon dossier),
with identity, household and documents faked by one ``httpx.MockTransport``: answers chosen per
(method, port, path), every call recorded, so tests prove what was sent and what was not."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web import dossier as pages
from services.web.tests.test_account import IDENTITY, PASSWORD, client, form_of, pair  # noqa: F401 (client: the app with faked services)
from services.web.tests.test_links import Page, accessible, shown, title

HOUSEHOLD, DOCUMENTS = 8102, 8103
GUARDIAN, CHILD, CHILD_2 = "g-1", "c-1", "c-2"


@dataclass
class Call:
    method: str
    port: int
    path: str
    body: Any
    params: dict[str, str]
    raw: bytes


@dataclass
class FakeServices:
    answers: dict[tuple[str, int, str], tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    down: set[int] = field(default_factory=set)

    def answer(self, method: str, port: int, path: str, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.answers[(method, port, path)] = (status, body, headers or {})

    def handler(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        raw = request.read()
        is_json = request.headers.get("content-type", "").startswith("application/json")
        self.calls.append(Call(request.method, port, request.url.path, json.loads(raw) if is_json and raw else None,
                               dict(request.url.params), raw))
        if port in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        status, body, headers = self.answers[(request.method, port, request.url.path)]
        if isinstance(body, bytes):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, headers=headers) if body is None else httpx.Response(status, json=body, headers=headers)

    def made(self, port: int) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.calls if c.port == port]

    def last(self, method: str, path: str) -> Call:
        return [c for c in self.calls if c.method == method and c.path == path][-1]


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture(autouse=True)
def logged_in_family(client: TestClient, services: FakeServices) -> None:
    """Every page here is a logged-in family's (test_account's ``client`` talks to these fakes)."""
    services.answer("POST", IDENTITY, "/auth/login", 200, pair())
    login = client.post("/connexion", data={**form_of(client, "/connexion"), "email": "a@exemple.fr", "password": PASSWORD})
    assert login.status_code == 303
    services.calls.clear()


def family_file(status: str = "draft", **changes: Any) -> dict[str, Any]:
    """Household's family view of a file with one guardian and two children."""
    view = {
        "id": "d-1", "status": status, "status_label": {"draft": "Brouillon", "submitted": "Transmis au Service Scolaire et Périscolaire, en attente d'examen",
                                                         "corrections_requested": "Corrections demandées"}.get(status, status),
        "version": 3, "created_at": "2026-01-15T09:05:00Z", "submitted_at": None,
        "address": {"number": "12 bis", "street": "rue des Lilas", "postcode": "45000", "town": "Montclair",
                    "proof_document_id": "doc-addr", "validated": False, "corrections": []},
        "guardians": [{"guardian_id": GUARDIAN, "first_name": "Camille", "last_name": "Martin", "relationship": "mère",
                       "phone": None, "email": "camille@exemple.fr", "identity_document_id": None, "corrections": []}],
        "children": [
            {"child_id": CHILD, "first_name": "Léa", "last_name": "Martin", "birth_date": "2019-03-14",
             "identity_document_id": "doc-lea", "validated": False, "corrections": []},
            {"child_id": CHILD_2, "first_name": "Noé", "last_name": "Martin", "birth_date": "2021-09-21",
             "identity_document_id": None, "validated": False, "corrections": []},
        ],
        "recommended": [{"kind": "insurance", "document_id": "doc-ins", "child_id": None, "label": "Attestation d'assurance scolaire (recommandé)",
                         "corrections": []}],
        "corrections": [], "rejection_reason": None, "timeline": [],
        "submission_problems": ["Il manque la pièce d'identité de Camille Martin (ou une attestation sur l'honneur)."],
    }
    view.update(changes)
    return view


def my_documents(*documents: dict[str, Any]) -> dict[str, Any]:
    return {"documents": list(documents)}


def document(doc_id: str, status: str, name: str = "piece.pdf", **extra: Any) -> dict[str, Any]:
    return {"id": doc_id, "kind": "child_identity", "kind_label": "Identité de l'enfant", "status": status, "name": name,
            "uploaded_at": "2026-01-15T09:10:00Z", **extra}


def declared(**changes: str) -> dict[str, str]:
    fields = {
        "adresse-numero": "12 bis", "adresse-voie": "rue des Lilas", "adresse-code-postal": "45000", "adresse-commune": "Montclair",
        "parent-1-prenom": "Camille", "parent-1-nom": "Martin", "parent-1-lien": "mère", "parent-1-telephone": "",
        "parent-1-email": "camille@exemple.fr", "enfants": "2", "enfant-1-prenom": "Léa", "enfant-1-nom": "Martin",
        "enfant-1-naissance": "2019-03-14", "enfant-2-prenom": "Noé", "enfant-2-nom": "Martin", "enfant-2-naissance": "21/09/2021",
        "action": "enregistrer",
    }
    return {**fields, **changes}


def post_declaration(client: TestClient, fields: dict[str, str]) -> httpx.Response:
    return client.post("/entourage", data={**Page(client.get("/entourage").text).hidden(), **fields})


def refused_declaration(client: TestClient, fields: dict[str, str]) -> httpx.Response:
    """A refused declaration: post/redirect/get back to the form, with what was typed and its errors."""
    posted = post_declaration(client, fields)
    assert posted.status_code == 303 and posted.headers["location"] == "/entourage", posted.text
    return client.get("/entourage")


def summary_links(page: Page) -> list[str]:
    return [link for link in page.links if link.startswith("#") and link != "#contenu"]


# ---- Déclarer mon entourage -------------------------------------------------------------------

def test_the_empty_declaration_form_is_accessible_and_never_cached(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    response = client.get("/entourage")
    page = accessible(response)
    assert page.h1 == ["Déclarer mon entourage"] and title(response).startswith("Déclarer mon entourage")
    assert response.headers["cache-control"] == "no-store"
    names = {i["name"] for i in page.visible_inputs()}
    assert {"adresse-code-postal", "parent-1-prenom", "enfant-1-naissance"} <= names
    assert "parent-2-prenom" not in names  # the other parent's card opens on demand, as the manual says
    assert ">Créer une fiche enfant</button>" in response.text
    assert ">Créer une fiche pour l'autre parent</button>" in response.text
    # The save button comes first in the form: the Enter key saves, it does not create a card.
    assert response.text.index('value="enregistrer"') < response.text.index('value="ajouter-parent"')


def test_adding_a_child_shows_one_more_block_keeps_what_was_typed_and_saves_nothing(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    response = post_declaration(client, declared(action="ajouter-enfant"))
    # Post/redirect/get: Back and refresh never send the form again.
    assert response.status_code == 303 and response.headers["location"] == "/entourage#enfant-3"
    shown_after = client.get("/entourage")
    page = accessible(shown_after)
    assert {"enfant-3-prenom", "enfant-3-naissance"} <= {i["name"] for i in page.inputs}
    assert 'value="Noé"' in shown_after.text and "La fiche « Enfant 3 » est créée" in shown_after.text
    refreshed = client.get("/entourage")  # what was typed stays; the notice was said once
    assert 'value="Noé"' in refreshed.text and "La fiche « Enfant 3 » est créée" not in refreshed.text
    assert ("POST", "/dossier") not in services.made(HOUSEHOLD) and ("PUT", "/dossier") not in services.made(HOUSEHOLD)


def test_the_other_parents_card_opens_with_its_button(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    response = post_declaration(client, declared(action="ajouter-parent"))
    assert response.status_code == 303 and response.headers["location"] == "/entourage#parent-2"
    page = accessible(client.get("/entourage"))
    assert {"parent-2-prenom", "parent-2-email"} <= {i["name"] for i in page.visible_inputs()}


def test_saving_ends_what_was_kept_of_the_typed_form(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    post_declaration(client, declared(action="ajouter-enfant"))
    services.answer("POST", HOUSEHOLD, "/dossier", 201, family_file())
    saved = post_declaration(client, declared())
    assert saved.status_code == 303
    assert 'ecp_avis=""; HttpOnly; Max-Age=0; Path=/entourage' in saved.headers.get_list("set-cookie")[-1] or any(
        "Path=/entourage" in c and "Max-Age=0" in c for c in saved.headers.get_list("set-cookie"))


def twelve_children_at_their_longest(**changes: str) -> dict[str, str]:
    """A declaration at the form's limits: two parents and twelve children, every name 100
    characters of accented letters that compress badly, every field at its longest."""
    rng = random.Random(19)

    def text(n: int) -> str:
        return "".join(rng.choice("àâäéèêëîïôöùûüçœæÀÉÈÇabcdefghijklmnopqrstuvwxyz- ") for _ in range(n)).strip() or "x"

    fields = declared(**{"enfants": str(pages.MAX_CHILDREN), "adresse-voie": text(200), "adresse-commune": text(100),
                         "autre-parent": "oui"})
    for n in (1, 2):
        fields.update({f"parent-{n}-prenom": text(100), f"parent-{n}-nom": text(100), f"parent-{n}-lien": "autre représentant légal",
                       f"parent-{n}-telephone": "+33 6 12 34 56 78 90", f"parent-{n}-email": f"{text(60).replace(' ', '')}@exemple.fr"})
    for n in range(1, pages.MAX_CHILDREN + 1):
        fields.update({f"enfant-{n}-prenom": text(100), f"enfant-{n}-nom": text(100), f"enfant-{n}-naissance": "2090-01-01"})
    return {**fields, **changes}


def test_twelve_children_with_the_longest_names_still_travel_with_the_redirect(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    fields = twelve_children_at_their_longest()
    response = refused_declaration(client, fields)  # every birth date in the future: 12 errors, and all typed
    assert response.status_code == 422 and len(summary_links(accessible(response))) == pages.MAX_CHILDREN
    for name in ("adresse-voie", "parent-2-nom", f"enfant-{pages.MAX_CHILDREN}-prenom"):
        assert f'value="{fields[name]}"' in response.text
    more = post_declaration(client, {**fields, "action": "ajouter-enfant"})  # past the limit: said, not a page
    assert more.status_code == 303
    assert pages.TOO_MANY_CHILDREN in shown(client.get("/entourage"))


def test_a_post_far_past_the_fields_limits_is_still_answered_with_a_redirect(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    # Not typed in a browser: 600 characters in each name (each one refused at its limit of 100).
    rng = random.Random(7)
    fields = twelve_children_at_their_longest(**{
        f"enfant-{n}-nom": "".join(rng.choice("ÀÉÈÇàéèçabcdefxyz") for _ in range(600)) for n in range(1, 13)})
    response = refused_declaration(client, fields)
    assert response.status_code == 422
    assert fields["enfant-1-nom"][:100] in response.text and pages.FIELD_MESSAGES["last_name"] in shown(response)
    # Every value at its limit in random characters of four bytes each: more than the cookies hold.
    emoji = {name: "".join(chr(rng.randrange(0x20000, 0x2A6D0)) for _ in range(100 if "naissance" not in name else 10))
             for name in fields if name.startswith(("enfant-", "parent-")) and name[-3:] in ("nom", "nce")}
    posted = post_declaration(client, {**fields, **emoji})
    assert posted.status_code == 303 and pages.TYPED_TOO_LONG in shown(client.get("/entourage"))


def test_bad_input_is_listed_in_page_order_next_to_its_fields_without_calling_household(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    response = refused_declaration(client, declared(**{
        "adresse-code-postal": "4500", "parent-1-lien": "tante", "parent-2-email": "dominique", "enfant-2-naissance": "2090-01-01",
        "enfant-1-prenom": "",
    }))
    assert response.status_code == 422
    page = accessible(response)
    assert title(response).startswith("Erreur : Déclarer mon entourage")
    assert summary_links(page) == ["#adresse-code-postal", "#parent-1-lien", "#parent-2-prenom", "#parent-2-nom", "#parent-2-lien",
                                   "#parent-2-email", "#enfant-1-prenom", "#enfant-2-naissance"]
    text = shown(response)
    assert pages.FIELD_MESSAGES["postcode"] in text and pages.BIRTH_IN_FUTURE in text
    assert 'aria-describedby="adresse-code-postal-aide adresse-code-postal-erreur" aria-invalid="true"' in response.text
    assert ("POST", "/dossier") not in services.made(HOUSEHOLD) and ("PUT", "/dossier") not in services.made(HOUSEHOLD)
    refreshed = client.get("/entourage")  # a refresh keeps what was typed and what is wrong with it
    assert refreshed.status_code == 422 and 'value="4500"' in refreshed.text


def test_a_child_of_eighteen_is_refused_with_a_clear_reason() -> None:
    errors = pages.declaration_errors(pages.Declaration.of_form(declared(**{"enfant-1-naissance": "2008-01-01"})),
                                      pages.date(2026, 1, 2))
    assert errors == {"enfant-1-naissance": pages.TOO_OLD}


def test_a_first_declaration_creates_the_file_and_goes_to_the_proofs(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    services.answer("POST", HOUSEHOLD, "/dossier", 201, family_file())
    response = post_declaration(client, declared())
    assert response.status_code == 303 and response.headers["location"] == "/pieces-justificatives"
    sent = services.last("POST", "/dossier").body
    assert sent["address"] == {"number": "12 bis", "street": "rue des Lilas", "postcode": "45000", "town": "Montclair", "proof_document_id": None}
    assert [g["first_name"] for g in sent["guardians"]] == ["Camille"]  # the empty other parent is left out
    assert sent["guardians"][0]["phone"] is None and sent["guardians"][0]["guardian_id"] is None
    assert [(c["first_name"], c["birth_date"]) for c in sent["children"]] == [("Léa", "2019-03-14"), ("Noé", "2021-09-21")]
    assert "version" not in sent


def test_saving_again_keeps_the_attached_proofs_and_sends_the_version_read(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("PUT", HOUSEHOLD, "/dossier", 200, family_file())
    form = Page(client.get("/entourage").text).hidden()
    assert form["enfant-1-id"] == CHILD and form["version"] == "3"
    response = client.post("/entourage", data={**form, **declared(**{"enfant-2-id": "not-ours", "enfant-1-retirer": ""})})
    assert response.status_code == 303
    sent = services.last("PUT", "/dossier").body
    assert sent["version"] == 3
    assert sent["address"]["proof_document_id"] == "doc-addr"
    assert sent["children"][0] == {"child_id": CHILD, "first_name": "Léa", "last_name": "Martin", "birth_date": "2019-03-14",
                                        "identity_document_id": "doc-lea"}
    assert sent["children"][1]["child_id"] is None  # an id household did not give is a new child
    assert sent["recommended"] == [{"kind": "insurance", "document_id": "doc-ins", "child_id": None}]


def test_a_ticked_child_is_removed_on_save(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("PUT", HOUSEHOLD, "/dossier", 200, family_file())
    post_declaration(client, declared(**{"enfant-2-retirer": "oui"}))
    assert [c["first_name"] for c in services.last("PUT", "/dossier").body["children"]] == ["Léa"]


def test_household_field_errors_are_shown_next_to_the_field_they_came_from(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("PUT", HOUSEHOLD, "/dossier", 422, {"detail": "Les données envoyées ne sont pas valides.", "errors": [
        {"loc": ["body", "children", 1, "last_name"], "msg": "String should have at most 100 characters", "type": "string_too_long"}]})
    # An empty block between the two children: household's index 1 is the form's third child.
    fields = declared(**{"enfants": "3", "enfant-2-prenom": "", "enfant-2-nom": "", "enfant-2-naissance": "",
                         "enfant-3-prenom": "Noé", "enfant-3-nom": "Martin", "enfant-3-naissance": "2021-09-21"})
    response = refused_declaration(client, fields)
    assert response.status_code == 422
    assert summary_links(accessible(response)) == ["#enfant-3-nom"]
    assert pages.FIELD_MESSAGES["last_name"] in shown(response) and "String should" not in response.text


def test_a_file_under_review_is_shown_read_only_and_a_save_is_refused_saying_why(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file("submitted"))
    response = client.get("/entourage")
    accessible(response)
    assert pages.UNDER_REVIEW in shown(response) and "Enregistrer et continuer" not in response.text
    assert response.text.count("disabled") >= 3
    refused = client.post("/entourage", data={**Page(response.text).hidden(), **declared()})
    assert refused.status_code == 303 and refused.headers["location"] == "/entourage"  # post/redirect/get
    assert pages.UNDER_REVIEW in shown(client.get("/entourage"))
    assert ("PUT", "/dossier") not in services.made(HOUSEHOLD)


def test_household_unreachable_is_a_french_503_page(client: TestClient, services: FakeServices) -> None:
    services.down.add(HOUSEHOLD)
    response = client.get("/entourage")
    assert response.status_code == 503
    assert "ne répond pas" in shown(response) and "Traceback" not in response.text


def test_posting_the_declaration_without_the_csrf_pair_is_refused_before_any_call(client: TestClient, services: FakeServices) -> None:
    response = client.post("/entourage", data=declared())
    assert response.status_code == 403 and "Formulaire expiré" in response.text
    assert services.calls == []


# ---- Mes pièces justificatives ----------------------------------------------------------------

def proofs_answers(services: FakeServices, view: dict[str, Any] | None = None) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, view or family_file())
    services.answer("GET", DOCUMENTS, "/documents", 200, my_documents(
        document("doc-addr", "clean", "facture.pdf"), document("doc-lea", "pending", "IMG_0042.jpg")))


def test_the_proofs_page_has_one_block_per_required_proof_with_its_scan_status(client: TestClient, services: FakeServices) -> None:
    corrections = ["La photo est illisible : envoyez une copie nette."]
    view = family_file("corrections_requested")
    view["children"][0]["corrections"] = corrections
    proofs_answers(services, view)
    response = client.get("/pieces-justificatives")
    page = accessible(response)
    assert page.h1 == ["Mes pièces justificatives"] and response.headers["cache-control"] == "no-store"
    # One form for every proof: a file field and a camera field each, sent together.
    files = [i["name"] for i in page.inputs if i.get("type") == "file"]
    slots = ["domicile", f"representant-{GUARDIAN}", f"enfant-{CHILD}", f"enfant-{CHILD_2}"]
    assert files == [f"{field}:{slot}" for slot in slots for field in ("fichier", "photo")]
    assert response.text.count('capture="environment"') == 4
    assert response.text.count('enctype="multipart/form-data"') == 1 and "/static/upload.js" in response.text
    assert response.text.count(">Envoyer les documents choisis</button>") == 1
    text = shown(response)
    # Where each proof stands, in plain words (no « analyse antivirus : sain »).
    assert "Pièce d'identité de l'enfant Noé Martin" in text and ">À envoyer<" in text
    assert "facture.pdf" in text and ">Reçu<" in text and ">À corriger<" in text and "antivirus" not in text
    assert corrections[0] in text
    assert f"/pieces-justificatives/attestation?piece=enfant-{CHILD_2}" in page.links
    # What household says is missing, with a link to the block that fixes it
    assert f"/pieces-justificatives#piece-representant-{GUARDIAN}" in page.links
    assert "Transmettre mon dossier" in text


def test_an_infected_document_says_so_with_its_reason(client: TestClient, services: FakeServices) -> None:
    reason = "Ce fichier contient un virus (Eicar-Signature) : il a été supprimé."
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("GET", DOCUMENTS, "/documents", 200, my_documents(document("doc-lea", "infected", reason=reason)))
    text = shown(client.get("/pieces-justificatives"))
    assert ">Refusé : fichier dangereux<" in text and reason in text


def upload(client: TestClient, slot: str, kind: str, data: bytes = b"%PDF-1.4 piece", name: str = "piece.pdf") -> httpx.Response:
    hidden = Page(client.get("/pieces-justificatives").text).hidden()
    return client.post("/pieces-justificatives", data={"csrf_token": hidden["csrf_token"], "piece": slot, "type": kind},
                       files={"fichier": (name, data, "application/pdf")})


def refused_upload(client: TestClient, posted: httpx.Response) -> httpx.Response:
    """A refused post of proofs: post/redirect/get back to the page, which says why once."""
    assert posted.status_code == 303 and posted.headers["location"] == "/pieces-justificatives", posted.text
    shown_once = client.get("/pieces-justificatives")
    assert "Erreur" not in title(client.get("/pieces-justificatives"))  # a refresh: said once
    return shown_once


def test_an_upload_is_stored_then_attached_and_the_replaced_document_deleted(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)
    services.answer("POST", DOCUMENTS, "/documents", 201, document("doc-new", "pending"))
    services.answer("PUT", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("DELETE", DOCUMENTS, "/documents/doc-lea", 204)
    response = upload(client, f"enfant-{CHILD}", "sworn_statement")
    assert response.status_code == 303 and response.headers["location"] == "/pieces-justificatives"
    stored = services.last("POST", "/documents")
    assert b'name="kind"\r\n\r\nsworn_statement' in stored.raw and b"%PDF-1.4 piece" in stored.raw
    sent = services.last("PUT", "/dossier").body
    assert sent["children"][0]["identity_document_id"] == "doc-new" and sent["version"] == 3
    assert sent["address"]["proof_document_id"] == "doc-addr"  # the other proofs untouched
    assert services.made(DOCUMENTS)[-1] == ("DELETE", "/documents/doc-lea")
    confirmation = client.get(response.headers["location"])
    assert "Pièce d'identité de l'enfant Léa Martin » a été envoyé" in shown(confirmation) and 'role="status"' in confirmation.text
    assert "a été envoyé" not in shown(client.get("/pieces-justificatives"))  # said once: a refresh does not repeat it


def test_several_files_go_in_one_post_and_one_save_and_a_converted_photo_says_so(
    client: TestClient, services: FakeServices
) -> None:
    proofs_answers(services)
    services.answer("POST", DOCUMENTS, "/documents", 201, document(
        "doc-new", "pending", "IMG_4821.jpg", content_type="image/jpeg"))
    services.answer("PUT", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("DELETE", DOCUMENTS, "/documents/doc-addr", 204)
    hidden = Page(client.get("/pieces-justificatives").text).hidden()
    response = client.post("/pieces-justificatives", data={"csrf_token": hidden["csrf_token"]}, files=[
        ("fichier:domicile", ("facture.pdf", b"%PDF-1.4", "application/pdf")),
        (f"photo:representant-{GUARDIAN}", ("IMG_4821.HEIC", b"heic bytes", "image/heic")),
        (f"fichier:enfant-{CHILD_2}", ("", b"", "application/octet-stream")),  # a field left empty
    ])
    assert response.status_code == 303
    assert [c.path for c in services.calls if c.method == "POST" and c.port == DOCUMENTS] == ["/documents"] * 2
    sent = services.last("PUT", "/dossier").body  # both attached in one save
    assert sent["address"]["proof_document_id"] == "doc-new" and sent["guardians"][0]["identity_document_id"] == "doc-new"
    text = shown(client.get("/pieces-justificatives"))
    assert "Votre document « Justificatif de domicile » a été envoyé" in text
    assert "le fichier IMG_4821.HEIC a été converti en JPEG (IMG_4821.jpg)" in text


def test_a_file_and_a_photo_for_the_same_proof_are_refused_before_any_store(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)
    hidden = Page(client.get("/pieces-justificatives").text).hidden()
    response = refused_upload(client, client.post("/pieces-justificatives", data={"csrf_token": hidden["csrf_token"]}, files=[
        ("fichier:domicile", ("facture.pdf", b"%PDF-1.4", "application/pdf")),
        ("photo:domicile", ("IMG_1.jpg", b"\xff\xd8", "image/jpeg")),
    ]))
    assert response.status_code == 422 and pages.TWO_FILES in shown(response)
    assert ("POST", "/documents") not in services.made(DOCUMENTS)


def test_a_post_announcing_more_than_the_limit_is_refused_before_its_body_is_read(
    client: TestClient, services: FakeServices
) -> None:
    proofs_answers(services)
    hidden = Page(client.get("/pieces-justificatives").text).hidden()
    request = client.build_request("POST", "/pieces-justificatives", data={"csrf_token": hidden["csrf_token"]},
                                   files={"fichier:domicile": ("f.pdf", b"%PDF", "application/pdf")})
    request.headers["content-length"] = str(pages.MAX_UPLOAD_BODY_BYTES + 1)
    response = client.send(request)
    assert response.status_code == 413 and "40 Mo" in shown(response)
    assert ("POST", "/documents") not in services.made(DOCUMENTS)


def test_the_upload_script_gets_the_next_page_to_load_instead_of_a_redirect(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)
    services.answer("POST", DOCUMENTS, "/documents", 201, document("doc-new", "pending"))
    services.answer("PUT", HOUSEHOLD, "/dossier", 200, family_file())
    hidden = Page(client.get("/pieces-justificatives").text).hidden()
    response = client.post("/pieces-justificatives", data={"csrf_token": hidden["csrf_token"]},
                           files={f"fichier:enfant-{CHILD_2}": ("acte.pdf", b"%PDF", "application/pdf")},
                           headers={"X-Requested-With": "XMLHttpRequest"})
    # Followed by the script's own request, a redirect would spend the notice before the page shows.
    assert response.status_code == 200 and response.headers["location"] == "/pieces-justificatives"
    assert "a été envoyé" in shown(client.get("/pieces-justificatives"))


def test_a_refused_file_is_explained_next_to_its_proof_and_nothing_is_attached(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)
    refusal = "Ce fichier n'est ni un PDF ni une photo (JPEG, PNG, HEIC) : nous ne pouvons pas l'accepter."
    services.answer("POST", DOCUMENTS, "/documents", 415, {"detail": refusal})
    response = refused_upload(client, upload(client, "domicile", "proof_of_address", b"texte", "facture.txt"))
    assert response.status_code == 415
    page = accessible(response)
    assert summary_links(page) == ["#fichier-domicile"] and refusal in shown(response)
    assert ("PUT", "/dossier") not in services.made(HOUSEHOLD)


def test_when_the_file_refuses_the_new_document_it_is_deleted_again(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)
    services.answer("POST", DOCUMENTS, "/documents", 201, document("doc-new", "pending"))
    services.answer("PUT", HOUSEHOLD, "/dossier", 409, {"detail": "Votre dossier a été modifié entre-temps."})
    services.answer("DELETE", DOCUMENTS, "/documents/doc-new", 204)
    response = refused_upload(client, upload(client, f"representant-{GUARDIAN}", "guardian_identity"))
    assert response.status_code == 409 and "modifié entre-temps" in shown(response)
    assert ("DELETE", "/documents/doc-new") in services.made(DOCUMENTS)


def test_an_unknown_proof_or_kind_is_refused_without_storing_anything(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)
    assert refused_upload(client, upload(client, "enfant-someone-else", "child_identity")).status_code == 422
    wrong_kind = refused_upload(client, upload(client, "domicile", "child_identity"))
    assert wrong_kind.status_code == 422 and pages.BAD_KIND in shown(wrong_kind)
    assert ("POST", "/documents") not in services.made(DOCUMENTS)


def test_an_upload_without_the_csrf_pair_is_refused_before_any_call(client: TestClient, services: FakeServices) -> None:
    response = client.post("/pieces-justificatives", data={"piece": "domicile", "type": "proof_of_address"},
                           files={"fichier": ("a.pdf", b"%PDF", "application/pdf")})
    assert response.status_code == 403
    assert services.calls == []


def test_the_sworn_statement_is_relayed_pre_filled_for_the_proof(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("GET", DOCUMENTS, "/sworn-statement", 200, b"%PDF-1.7 attestation",
                    {"content-type": "application/pdf", "content-disposition": 'attachment; filename="attestation-sur-l-honneur-child_identity.pdf"'})
    response = client.get(f"/pieces-justificatives/attestation?piece=enfant-{CHILD_2}")
    assert response.status_code == 200 and response.content == b"%PDF-1.7 attestation"
    assert response.headers["content-disposition"].startswith("attachment") and response.headers["cache-control"] == "no-store"
    assert services.last("GET", "/sworn-statement").params == {"subject": "child_identity", "declarant": "Camille Martin", "child": "Noé Martin"}


def test_a_sworn_statement_for_no_proof_of_the_file_is_a_french_422(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    response = client.get("/pieces-justificatives/attestation?piece=inconnue")
    assert response.status_code == 422 and pages.BAD_PROOF in shown(response)


# ---- Transmettre, Mon dossier -----------------------------------------------------------------

def test_submitting_an_incomplete_file_lists_what_is_missing_with_links_to_fix_it(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    problems = ["Il manque la pièce d'identité de l'enfant Noé Martin (ou une attestation sur l'honneur).",
                "La date de naissance de l'enfant Léa Martin est dans le futur."]
    services.answer("POST", HOUSEHOLD, "/dossier/submit", 422, {"detail": "Votre dossier ne peut pas encore être transmis.", "problems": problems})
    posted = client.post("/dossier/transmettre", data=Page(client.get("/dossier").text).hidden())
    assert posted.status_code == 303 and posted.headers["location"] == "/dossier"  # post/redirect/get
    response = client.get("/dossier")
    assert response.status_code == 422
    page = accessible(response)
    assert title(response).startswith("Erreur : Mon dossier")
    assert not any(p in shown(client.get("/dossier")) for p in problems)  # a refresh: said once
    assert f"/pieces-justificatives#piece-enfant-{CHILD_2}" in page.links and "/entourage" in page.links
    assert all(p in shown(response) for p in problems)


def test_a_submitted_file_goes_to_my_file_with_a_confirmation(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file())
    services.answer("POST", HOUSEHOLD, "/dossier/submit", 200, family_file("submitted"))
    response = client.post("/dossier/transmettre", data=Page(client.get("/dossier").text).hidden())
    assert response.status_code == 303 and response.headers["location"] == "/dossier"
    services.answer("GET", HOUSEHOLD, "/dossier", 200, family_file("submitted"))
    page = client.get("/dossier")
    assert pages.SUBMITTED_NOTICE in shown(page) and "Transmettre mon dossier" not in page.text
    assert pages.SUBMITTED_NOTICE not in shown(client.get("/dossier"))  # said once


def test_my_file_shows_status_next_step_corrections_and_the_timeline_in_paris_time(client: TestClient, services: FakeServices) -> None:
    view = family_file("corrections_requested", corrections=[
        {"item": f"children.{CHILD}.birth_date", "reason": "La date ne correspond pas à l'acte de naissance."},
        {"item": "doc-lea", "reason": "Photo floue."}])
    view["timeline"] = [
        {"at": "2026-01-16T08:00:00Z", "action": "submitted", "label": "Dossier transmis", "reason": None, "corrections": None},
        {"at": "2026-07-01T12:30:00Z", "action": "corrections_requested", "label": "Corrections demandées", "reason": None,
         "corrections": view["corrections"]},
    ]
    services.answer("GET", HOUSEHOLD, "/dossier", 200, view)
    response = client.get("/dossier")
    page = accessible(response)
    assert page.h1 == ["Mon dossier"] and response.headers["cache-control"] == "no-store"
    text = shown(response)
    assert "15 janvier 2026 à 10 h 05" in text and "16 janvier 2026 à 9 h 00" in text and "1er juillet 2026 à 14 h 30" in text
    assert "Enfant : Léa Martin" in text and "Pièce d'identité de l'enfant Léa Martin" in text and "Photo floue." in text
    assert "<caption>" in response.text and '<th scope="col">Date</th>' in response.text
    assert f"/pieces-justificatives#piece-enfant-{CHILD}" in page.links
    assert "transmettez à nouveau" in text and "Transmettre mon dossier" in text


def test_without_a_file_my_file_and_the_proofs_invite_to_declare(client: TestClient, services: FakeServices) -> None:
    services.answer("GET", HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    for path, heading in (("/dossier", "Mon dossier"), ("/pieces-justificatives", "Mes pièces justificatives")):
        response = client.get(path)
        page = accessible(response)
        assert page.h1 == [heading] and "/entourage" in page.links
        assert "Transmettre mon dossier" not in response.text



def test_problems_link_to_the_block_that_fixes_them_even_when_a_guardian_and_a_child_share_a_name() -> None:
    view = family_file()
    view["guardians"][0].update(first_name="Léa", last_name="Martin")  # same name as a child
    proofs = pages.required_proofs(copy.deepcopy(view))
    assert pages.fix_link("Il manque la pièce d'identité de l'enfant Léa Martin.", proofs) == f"/pieces-justificatives#piece-enfant-{CHILD}"
    assert pages.fix_link("Il manque la pièce d'identité de Léa Martin.", proofs) == f"/pieces-justificatives#piece-representant-{GUARDIAN}"
    assert pages.fix_link("Indiquez au moins un enfant.", proofs) == "/entourage"


def test_a_document_being_checked_says_so_with_a_link_to_refresh(client: TestClient, services: FakeServices) -> None:
    proofs_answers(services)  # the child's document is still "pending", the address proof "clean"
    text = shown(client.get("/pieces-justificatives"))
    assert ">Vérification en cours<" in text and "Actualiser la page" in text
