"""Account pages (create my space, log in / out, forgotten password, my space), services faked.

Identity, household and enrolment are one ``httpx.MockTransport``: each answer is chosen per
(port, path), and every call is recorded with its bearer token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web import session
from services.web.main import create_app
from services.web.tests.test_links import Page, accessible, shown, title

IDENTITY, HOUSEHOLD, ENROLMENT = 8101, 8102, 8105
NEUTRAL_REGISTER = "Si cette adresse peut être utilisée, un email d'activation vient de lui être envoyé."
BAD_LOGIN = "Adresse email ou mot de passe incorrect."
ENROL = "Inscription Scolaire Maternelle ou Élémentaire"
NOT_ACTIVATED = "Votre espace n'est pas encore activé : suivez le lien reçu par email."
TOO_MANY = "Trop de tentatives. Réessayez dans quelques minutes."
PASSWORD = "tartine au miel de mai"


def summary_links(page: Page) -> list[str]:
    """The error summary's links (the skip link aside)."""
    return [link for link in page.links if link.startswith("#") and link != "#contenu"]


def pair(n: int = 1, expires_in: int = 600) -> dict[str, Any]:
    return {"access_token": f"access-{n}", "refresh_token": f"refresh-{n}", "token_type": "Bearer", "expires_in": expires_in}


@dataclass
class FakeServices:
    answers: dict[tuple[int, str], tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    calls: list[tuple[int, str, Any, str | None]] = field(default_factory=list)

    def answer(self, port: int, path: str, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.answers[(port, path)] = (status, body, headers or {})

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1"
        port = request.url.port or 0
        body = json.loads(request.content) if request.content else None
        self.calls.append((port, request.url.path, body, request.headers.get("authorization")))
        status, payload, headers = self.answers[(port, request.url.path)]
        if payload is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=payload, headers=headers)

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.calls]


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def client(services: FakeServices) -> Iterator[TestClient]:
    app = create_app()
    with TestClient(app, follow_redirects=False) as test_client:
        real = app.state.http
        app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(services.handler))
        try:
            yield test_client
        finally:
            app.state.http = real


def form_of(client: TestClient, path: str) -> dict[str, str]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return Page(response.text).hidden()


def logged_in(client: TestClient, services: FakeServices, expires_in: int = 600) -> None:
    services.answer(IDENTITY, "/auth/login", 200, pair(1, expires_in))
    response = client.post("/connexion", data={**form_of(client, "/connexion"), "email": "a@exemple.fr", "password": PASSWORD})
    assert response.status_code == 303


def dashboard_answers(services: FakeServices, *, dossier: int = 404, can_enrol: bool = False) -> None:
    services.answer(IDENTITY, "/me", 200, {"account_id": "acc-1", "email": "a@exemple.fr", "display_name": "Camille Martin", "role": "family"})
    if dossier == 404:
        services.answer(HOUSEHOLD, "/dossier", 404, {"detail": "Aucun dossier."})
    else:
        services.answer(HOUSEHOLD, "/dossier", dossier, {
            "status": "validated", "status_label": "Validé",
            "children": [{"child_id": "c1", "first_name": "Léa", "last_name": "Martin", "birth_date": "2021-05-14"}]})
    child = {"child_id": "c1", "can_enrol": can_enrol, "eligible": True, "level_label": "Petite section"}
    services.answer(ENROLMENT, "/enrolments/eligible", 200,
                    {"unlocked": dossier == 200, "message": None, "school_year": "2027-2028", "school_year_start": 2027,
                     "children": [child]})


# ---- home ------------------------------------------------------------------------------------

def test_the_home_page_links_to_create_my_space_and_to_log_in(client: TestClient) -> None:
    page = accessible(client.get("/"))
    assert "/creer-mon-espace" in page.links and "/connexion" in page.links


# ---- CSRF on every new POST ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/creer-mon-espace", "/connexion", "/deconnexion", "/mot-de-passe/oubli"])
def test_every_post_without_the_csrf_pair_is_refused_before_any_call(client: TestClient, services: FakeServices, path: str) -> None:
    response = client.post(path, data={"email": "a@exemple.fr", "password": PASSWORD, "display_name": "A", "confirmation": PASSWORD})
    assert response.status_code == 403
    assert "Formulaire expiré" in response.text
    assert services.calls == []


# ---- créer mon espace ------------------------------------------------------------------------

def test_the_register_form_is_accessible(client: TestClient) -> None:
    response = client.get("/creer-mon-espace")
    page = accessible(response)
    assert page.h1 == ["Créer mon espace"] and title(response).startswith("Créer mon espace")
    autocompletes = {i["name"]: i.get("autocomplete") for i in page.visible_inputs()}
    assert autocompletes == {"email": "email", "display_name": "name", "password": "new-password", "confirmation": "new-password"}
    assert response.headers["cache-control"] == "no-store"


def test_registering_redirects_to_the_check_your_emails_page(client: TestClient, services: FakeServices) -> None:
    services.answer(IDENTITY, "/auth/register", 202, {"detail": NEUTRAL_REGISTER})
    form = {**form_of(client, "/creer-mon-espace"), "email": "a@exemple.fr", "display_name": "Camille Martin",
            "password": PASSWORD, "confirmation": PASSWORD}
    response = client.post("/creer-mon-espace", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/verifiez-vos-emails?email=a%40exemple.fr"
    assert services.calls[0][2] == {"email": "a@exemple.fr", "password": PASSWORD, "display_name": "Camille Martin"}
    check = client.get(response.headers["location"])
    page = accessible(check)
    assert "48 heures" in shown(check) and "spam" in shown(check)
    assert "/activation/nouveau-lien" in page.forms
    assert "Renvoyer l'email" in shown(check)
    assert any(i.get("name") == "email" and i.get("value") == "a@exemple.fr" for i in page.inputs)


def test_register_errors_are_listed_without_calling_identity(client: TestClient, services: FakeServices) -> None:
    form = {**form_of(client, "/creer-mon-espace"), "email": "pas-une-adresse", "display_name": "",
            "password": PASSWORD, "confirmation": "autre chose"}
    posted = client.post("/creer-mon-espace", data=form)
    assert posted.status_code == 303 and posted.headers["location"] == "/creer-mon-espace"  # post/redirect/get
    assert PASSWORD not in client.cookies.get("ecp_avis", "")  # encrypted, and never holding the password
    response = client.get("/creer-mon-espace")
    assert response.status_code == 422
    page = accessible(response)
    assert title(response).startswith("Erreur : Créer mon espace")
    assert ["#email", "#nom", "#confirmation"] == summary_links(page)
    assert PASSWORD not in response.text  # passwords never written back
    assert 'value="pas-une-adresse"' in response.text  # what was typed is kept
    assert "Erreur" not in title(client.get("/creer-mon-espace"))  # a refresh: the form afresh
    assert services.calls == []


def test_identitys_password_policy_reason_is_shown_next_to_the_password(client: TestClient, services: FakeServices) -> None:
    reason = "Ce mot de passe fait partie des mots de passe les plus courants. Choisissez-en un autre."
    services.answer(IDENTITY, "/auth/register", 422, {"detail": "Données non valides.", "errors": [
        {"loc": ["body", "password"], "msg": reason, "type": "value_error"}]})
    form = {**form_of(client, "/creer-mon-espace"), "email": "a@exemple.fr", "display_name": "A",
            "password": PASSWORD, "confirmation": PASSWORD}
    assert client.post("/creer-mon-espace", data=form).status_code == 303
    response = client.get("/creer-mon-espace")
    assert response.status_code == 422
    assert reason in shown(response)
    assert 'href="#mot-de-passe"' in response.text


def test_too_many_registrations_say_so(client: TestClient, services: FakeServices) -> None:
    services.answer(IDENTITY, "/auth/register", 429, {"detail": TOO_MANY}, {"Retry-After": "60"})
    form = {**form_of(client, "/creer-mon-espace"), "email": "a@exemple.fr", "display_name": "A",
            "password": PASSWORD, "confirmation": PASSWORD}
    posted = client.post("/creer-mon-espace", data=form)
    assert posted.status_code == 303 and posted.headers["location"] == "/creer-mon-espace"  # post/redirect/get
    response = client.get("/creer-mon-espace")
    assert response.status_code == 429 and response.headers["retry-after"] == "60"
    assert TOO_MANY in shown(response)
    assert TOO_MANY not in shown(client.get("/creer-mon-espace"))  # a refresh: the form again


# ---- connexion -------------------------------------------------------------------------------

def test_the_login_form_is_accessible(client: TestClient) -> None:
    response = client.get("/connexion")
    page = accessible(response)
    assert page.h1 == ["Se connecter"]
    assert {i["name"]: i.get("autocomplete") for i in page.visible_inputs()} == {"email": "username", "password": "current-password"}
    assert "/mot-de-passe/oubli" in page.links and "/creer-mon-espace" in page.links


def test_logging_in_sets_an_encrypted_httponly_lax_session_cookie(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    response_cookie = client.cookies.get(session.COOKIE_NAME)
    assert response_cookie and "refresh-1" not in response_cookie and "access-1" not in response_cookie
    services.answer(IDENTITY, "/auth/login", 200, pair(2))
    response = client.post("/connexion", data={**form_of_fresh(client), "email": "a@exemple.fr", "password": PASSWORD})
    assert response.headers["location"] == "/mon-espace"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("ecp_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered and "secure" not in lowered
    assert response.headers["cache-control"] == "no-store"


def form_of_fresh(client: TestClient) -> dict[str, str]:
    """The login form's hidden fields while a session exists (GET /connexion would redirect)."""
    return Page(client.get("/creer-mon-espace").text).hidden()


def test_the_session_cookie_is_secure_and_host_only_outside_a_local_run(services: FakeServices, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECP_ENVIRONMENT", "production")
    app = create_app()
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(services.handler))
        services.answer(IDENTITY, "/auth/login", 200, pair())
        response = client.post("/connexion", data={**form_of(client, "/connexion"), "email": "a@exemple.fr", "password": PASSWORD})
    cookie = [c for c in response.headers.get_list("set-cookie") if "session" in c][0].lower()
    assert cookie.startswith("__host-ecp_session=") and "secure" in cookie and "samesite=lax" in cookie


@pytest.mark.parametrize("suite, expected", [
    ("/mon-espace?onglet=1", "/mon-espace?onglet=1"),
    ("https://evil.example/", "/mon-espace"),
    ("//evil.example/", "/mon-espace"),
    ("/\\evil.example", "/mon-espace"),
    ("javascript:alert(1)", "/mon-espace"),
    ("/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"),
    ("/\nx", "/mon-espace"),
])
def test_after_login_only_a_local_suite_is_followed(client: TestClient, services: FakeServices, suite: str, expected: str) -> None:
    services.answer(IDENTITY, "/auth/login", 200, pair())
    form = {**form_of(client, "/connexion"), "email": "a@exemple.fr", "password": PASSWORD, "suite": suite}
    response = client.post("/connexion", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == expected


def test_the_login_page_carries_a_local_suite_and_drops_a_foreign_one(client: TestClient) -> None:
    assert form_of(client, "/connexion?suite=/mon-espace")["suite"] == "/mon-espace"
    assert "suite" not in form_of(client, "/connexion?suite=https://evil.example/")


def refused_login(client: TestClient, **fields: str) -> httpx.Response:
    """A refused login: post/redirect/get to the login page, which shows the refusal once."""
    posted = client.post("/connexion", data={**form_of(client, "/connexion"), **fields})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/connexion"), posted.text
    return client.get(posted.headers["location"])


def test_a_wrong_password_shows_identitys_message_once_for_the_whole_form(client: TestClient, services: FakeServices) -> None:
    services.answer(IDENTITY, "/auth/login", 401, {"detail": BAD_LOGIN, "attempts_left": 7})
    response = refused_login(client, email="a@exemple.fr", password="faux")
    assert response.status_code == 401  # identity's status, on the page the post led to
    page = accessible(response)
    assert title(response).startswith("Erreur : Se connecter")
    assert response.text.index(BAD_LOGIN) < response.text.index("<h1>")
    assert response.text.count(BAD_LOGIN) == 1 and 'aria-invalid' not in response.text  # on no field
    assert "il vous reste" not in shown(response)  # seven tries left: no warning yet
    assert 'value="a@exemple.fr"' in response.text and "faux" not in response.text  # the password never comes back
    assert session.COOKIE_NAME not in client.cookies
    again = client.get("/connexion")  # a refresh: the plain form, the refusal said once
    assert again.status_code == 200 and BAD_LOGIN not in again.text


@pytest.mark.parametrize(("left", "words"), [(3, "il vous reste 3 essais"), (1, "il vous reste 1 essai "),
                                             (0, "C'était le dernier essai")])
def test_a_warning_comes_when_few_login_tries_are_left(client: TestClient, services: FakeServices, left: int,
                                                       words: str) -> None:
    services.answer(IDENTITY, "/auth/login", 401, {"detail": BAD_LOGIN, "attempts_left": left})
    response = refused_login(client, email="a@exemple.fr", password="faux")
    assert words in shown(response)
    assert '<a href="/mot-de-passe/oubli">Choisir un nouveau mot de passe</a>' in response.text


def test_an_account_not_activated_gets_the_message_and_a_resend_form(client: TestClient, services: FakeServices) -> None:
    services.answer(IDENTITY, "/auth/login", 403, {"detail": NOT_ACTIVATED})
    response = refused_login(client, email="a@exemple.fr", password=PASSWORD)
    assert response.status_code == 403
    page = accessible(response)
    assert NOT_ACTIVATED in shown(response)
    assert title(response).startswith("Espace pas encore activé")
    assert "/activation/nouveau-lien" in page.forms and "/connexion" in page.forms
    assert len([i for i in page.inputs if i.get("id") == "email"]) == 1


def test_too_many_logins_say_so(client: TestClient, services: FakeServices) -> None:
    services.answer(IDENTITY, "/auth/login", 429, {"detail": TOO_MANY}, {"Retry-After": "120"})
    response = refused_login(client, email="a@exemple.fr", password=PASSWORD)
    assert response.status_code == 429 and response.headers["retry-after"] == "120"
    assert title(response).startswith("Trop de tentatives de connexion")
    assert TOO_MANY in shown(response)


def test_empty_login_fields_are_errors_without_calling_identity(client: TestClient, services: FakeServices) -> None:
    response = refused_login(client, email="", password="")
    assert response.status_code == 422
    page = accessible(response)
    assert summary_links(page) == ["#identifiant", "#mot-de-passe"]
    assert services.calls == []


# ---- mon espace ------------------------------------------------------------------------------

def test_my_space_without_a_session_redirects_to_login_and_back(client: TestClient, services: FakeServices) -> None:
    response = client.get("/mon-espace")
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion?suite=%2Fmon-espace"
    assert services.calls == []


def test_a_tampered_session_cookie_is_no_session(client: TestClient, services: FakeServices) -> None:
    client.cookies.set(session.COOKIE_NAME, "gAAAAAB-not-a-real-token")
    assert client.get("/mon-espace").status_code == 303
    assert services.calls == []


def test_my_space_shows_the_files_reference_in_the_header_once_there_is_one(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    dashboard_answers(services, dossier=200)
    services.answer(HOUSEHOLD, "/dossier", 200, {"status": "validated", "status_label": "Validé", "reference": "MSL-2027-000123",
                                                 "children": []})
    header = shown(client.get("/mon-espace")).split("</header>", 1)[0]
    assert 'Dossier n° <strong class="ref">MSL-2027-000123</strong>' in header


def test_my_space_greets_and_says_no_file_declared_yet(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    dashboard_answers(services)
    response = client.get("/mon-espace")
    assert response.status_code == 200, response.text
    page = accessible(response)
    assert page.h1 == ["Bonjour Camille Martin"]
    assert "Vous n'avez pas encore déclaré votre entourage" in shown(response)
    assert ENROL not in response.text
    assert '<a class="button" href="/entourage">Déclarer mon entourage</a>' in response.text
    # The manual's four steps, the second one in progress.
    assert 'aria-current="step">Déclarer mon entourage' in response.text
    assert 'href="/mon-espace" aria-current="page"' in response.text  # the header says where we are
    assert "/deconnexion" in page.forms
    assert response.headers["cache-control"] == "no-store"
    assert {auth for port, _, _, auth in services.calls if port != IDENTITY or _ == "/me"} == {"Bearer access-1"}


def test_the_enrolment_button_shows_only_when_a_child_can_be_enrolled(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    dashboard_answers(services, dossier=200, can_enrol=False)
    hidden = client.get("/mon-espace")
    assert "Validé" in shown(hidden) and ENROL not in hidden.text
    dashboard_answers(services, dossier=200, can_enrol=True)
    shown_page = client.get("/mon-espace")
    assert ENROL in shown_page.text and "2027-2028" in shown_page.text
    # One card per child, with where the child stands, and « votre enfant » for one child.
    assert "Léa Martin" in shown_page.text and '<span class="badge badge--action">À inscrire</span>' in shown_page.text
    assert "inscrire votre enfant à l'école" in shown(shown_page)


def test_my_space_still_shows_when_household_and_enrolment_are_down(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    dashboard_answers(services)
    services.answer(HOUSEHOLD, "/dossier", 503, {"detail": "indisponible"})
    services.answer(ENROLMENT, "/enrolments/eligible", 500, {"detail": "boom"})
    response = client.get("/mon-espace")
    assert response.status_code == 200
    assert "ne peut pas être affiché" in shown(response) and ENROL not in response.text


def test_an_expired_access_token_is_refreshed_and_the_cookie_rotated(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services, expires_in=0)
    before = client.cookies.get(session.COOKIE_NAME)
    services.answer(IDENTITY, "/auth/refresh", 200, pair(2))
    dashboard_answers(services)
    response = client.get("/mon-espace")
    assert response.status_code == 200
    assert ("/auth/refresh", {"refresh_token": "refresh-1"}) in [(p, b) for _, p, b, _ in services.calls]
    assert services.calls[-1][3] == "Bearer access-2"
    assert "ecp_session=" in response.headers["set-cookie"]
    assert client.cookies.get(session.COOKIE_NAME) != before
    services.calls.clear()
    client.get("/mon-espace")
    assert "/auth/refresh" not in services.paths()  # the rotated cookie holds a fresh token


def test_a_refused_refresh_clears_the_session_and_asks_to_log_in(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services, expires_in=0)
    services.answer(IDENTITY, "/auth/refresh", 401, {"detail": "Session expirée."})
    response = client.get("/mon-espace")
    assert response.status_code == 303 and response.headers["location"].startswith("/connexion?suite=")
    assert "max-age=0" in response.headers["set-cookie"].lower()


# ---- déconnexion / mot de passe oublié -------------------------------------------------------

def test_logging_out_revokes_the_refresh_token_and_clears_the_cookie(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    dashboard_answers(services)
    form = Page(client.get("/mon-espace").text).hidden()
    services.answer(IDENTITY, "/auth/logout", 204)
    response = client.post("/deconnexion", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/"  # post/redirect/get
    assert ("/auth/logout", {"refresh_token": "refresh-1"}) in [(p, b) for _, p, b, _ in services.calls]
    assert "max-age=0" in response.headers["set-cookie"].lower()
    home = client.get("/")
    assert "Vous êtes déconnecté·e" in shown(home) and "/deconnexion" not in home.text
    assert "Vous êtes déconnecté·e" not in shown(client.get("/"))  # said once
    assert client.get("/mon-espace").status_code == 303


def test_the_forgotten_password_page_shows_the_form(client: TestClient, services: FakeServices) -> None:
    response = client.get("/mot-de-passe/oubli")
    assert response.status_code == 200
    page = accessible(response)
    assert page.h1 == ["Mot de passe oublié"]
    assert "/mot-de-passe/oubli" in page.forms
    services.answer(IDENTITY, "/auth/password-reset", 202, {"detail": "Si un compte existe pour cette adresse, un email vous a été envoyé."})
    done = client.post("/mot-de-passe/oubli", data={**page.hidden(), "email": "a@exemple.fr"})
    assert done.status_code == 303 and done.headers["location"] == "/mot-de-passe/oubli"
    assert "Si un compte existe" in shown(client.get("/mot-de-passe/oubli"))


def test_session_expiry_uses_a_margin() -> None:
    assert session.Session("a", "r", time.time() + 10).expired(time.time())
    assert not session.Session("a", "r", time.time() + 600).expired(time.time())


def test_suite_checks() -> None:
    assert session.safe_next("/mon-espace") == "/mon-espace"
    for bad in (None, "", "mon-espace", "//x", "/\\x", "http://x/", "/a b"):
        assert session.safe_next(bad) is None
    assert parse_qs(urlsplit("/connexion?suite=%2Fmon-espace").query)["suite"] == ["/mon-espace"]
