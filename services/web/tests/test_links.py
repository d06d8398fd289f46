"""The pages behind the emailed links (activation, new password), with identity faked.

Identity is an ``httpx.MockTransport`` put in ``app.state.http``: no network, and every call the
pages make is recorded, so tests can prove when identity is *not* called.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web.main import create_app

ACTIVATED = "Votre espace est activé. Vous pouvez maintenant vous connecter."
EXPIRED = "Ce lien a expiré. Demandez un nouveau lien d'activation."
UNKNOWN = "Ce lien n'est pas valide. Vérifiez qu'il est complet ou demandez un nouveau lien d'activation."
USED = "Ce lien a déjà été utilisé : votre espace est activé, vous pouvez vous connecter."
NEUTRAL_RESEND = "Si un compte en attente d'activation existe pour cette adresse, un nouveau lien vient de lui être envoyé."
NEUTRAL_RESET = "Si un compte existe pour cette adresse, un email contenant un lien vient de lui être envoyé."
TOO_MANY = "Trop de tentatives. Réessayez dans quelques minutes."
RESET_DONE = "Votre mot de passe a été modifié. Vous pouvez vous connecter."
TOO_COMMON = "Ce mot de passe fait partie des mots de passe les plus courants. Choisissez-en un autre."


@dataclass
class FakeIdentity:
    """Answers per path (status, body, headers); records each call as (path, json body)."""

    answers: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    def answer(self, path: str, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        self.answers[path] = (status, {"detail": detail, **extra}, headers or {})

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1" and request.url.port == 8101  # identity's own address
        self.calls.append((request.url.path, json.loads(request.content)))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        status, body, headers = self.answers[request.url.path]
        return httpx.Response(status, json=body, headers=headers)

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture
def client(identity: FakeIdentity) -> Iterator[TestClient]:
    app = create_app()
    with TestClient(app) as test_client:
        real = app.state.http
        app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(identity.handler))
        try:
            yield test_client
        finally:
            app.state.http = real


class Page(HTMLParser):
    """What the tests look at in a page: inputs, forms, labels, headings, links, scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.inputs: list[dict[str, str]] = []
        self.forms: list[str] = []
        self.labels: list[str] = []
        self.h1: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.inline_code = False
        self._in_h1 = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if "style" in a or tag == "style" or (tag == "script" and "src" not in a) or any(k.startswith("on") for k in a):
            self.inline_code = True
        if tag == "input":
            self.inputs.append(a)
        elif tag == "form":
            self.forms.append(a.get("action", ""))
        elif tag == "label":
            self.labels.append(a.get("for", ""))
        elif tag == "a":
            self.links.append(a.get("href", ""))
        elif tag == "h1":
            self._in_h1 = True
            self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data

    def hidden(self) -> dict[str, str]:
        return {i["name"]: i.get("value", "") for i in self.inputs if i.get("type") == "hidden"}

    def visible_inputs(self) -> list[dict[str, str]]:
        return [i for i in self.inputs if i.get("type") != "hidden"]


def title(response: httpx.Response) -> str:
    match = re.search(r"<title>(.*?)</title>", response.text, re.S)
    assert match is not None
    return html.unescape(match.group(1))


def shown(response: httpx.Response) -> str:
    """The page's text as the user reads it (entities such as &#39; decoded)."""
    return html.unescape(response.text)


def accessible(response: httpx.Response) -> Page:
    """Checks that hold on every page, and returns the parsed page."""
    page = Page(response.text)
    assert '<html lang="fr">' in response.text
    assert len(page.h1) == 1
    assert not page.inline_code  # the CSP has no unsafe-inline
    for field_ in page.visible_inputs():
        assert field_["id"] in page.labels, f"no label for {field_}"
    for href in page.links:
        if href.startswith("#"):
            assert href[1:] in page.ids, f"link to a missing field {href}"
    assert "Traceback" not in response.text
    return page


def token() -> str:
    return secrets.token_urlsafe(32)


def activation_form(client: TestClient, jeton: str | None = None) -> dict[str, str]:
    """The hidden fields of the activation page, as a browser would submit them."""
    response = client.get("/activation", params={"jeton": jeton or token()})
    assert response.status_code == 200
    return Page(response.text).hidden()


def reset_form(client: TestClient, jeton: str | None = None) -> dict[str, str]:
    response = client.get("/mot-de-passe/nouveau", params={"jeton": jeton or token()})
    assert response.status_code == 200
    return Page(response.text).hidden()


# ---- activation ------------------------------------------------------------------------------

def test_the_activation_link_shows_a_button_and_never_activates_on_get(client: TestClient, identity: FakeIdentity) -> None:
    jeton = token()
    response = client.get("/activation", params={"jeton": jeton})
    assert response.status_code == 200
    page = accessible(response)
    assert page.h1 == ["Activer mon espace"]
    assert title(response).startswith("Activer mon espace")
    assert "/activation" in page.forms
    assert page.hidden()["jeton"] == jeton
    assert page.hidden()["csrf_token"]
    assert 'type="submit">Activer mon espace</button>' in response.text
    assert identity.calls == []  # mail scanners that prefetch the link spend nothing
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("query", ["", "?jeton=", "?jeton=trop-court", "?jeton=" + "a" * 30 + "%21"])
def test_an_incomplete_activation_link_explains_and_offers_a_new_link(
    client: TestClient, identity: FakeIdentity, query: str
) -> None:
    response = client.get(f"/activation{query}")
    assert response.status_code == 400
    page = accessible(response)
    assert "incomplet" in page.h1[0]
    assert "/activation/nouveau-lien" in page.forms
    assert "Recevoir un nouveau lien" in response.text
    assert any(i.get("autocomplete") == "email" and i.get("type") == "email" for i in page.inputs)
    assert identity.calls == []


def test_submitting_the_activation_form_activates_the_account(client: TestClient, identity: FakeIdentity) -> None:
    identity.answer("/auth/activation", 200, ACTIVATED)
    form = activation_form(client)
    response = client.post("/activation", data=form, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"  # the manual: back home to log in
    home = client.get("/")
    page = accessible(home)
    assert "Votre espace est activé" in shown(home)
    assert '<a class="button" href="/connexion">Se connecter</a>' in home.text  # logging in comes first now
    assert "Votre espace est activé" not in shown(client.get("/"))  # said once
    assert identity.calls == [("/auth/activation", {"token": form["jeton"]})]
    assert "/connexion" in page.links


def test_the_activation_page_says_why_a_second_click_is_needed(client: TestClient) -> None:
    page = client.get("/activation", params={"jeton": token()})
    assert "messageries ouvrent automatiquement les liens" in shown(page)
    sentences = [s.strip() for s in re.split(r"(?<=[.:!?])\s+", re.sub(r"<[^>]+>", " ", page.text)) if len(s.strip()) > 20]
    assert len(sentences) == len(set(sentences))  # no sentence twice


@pytest.mark.parametrize(
    ("status", "detail", "heading"),
    [(410, EXPIRED, "Lien d'activation expiré"), (400, UNKNOWN, "Lien d'activation non valide")],
)
def test_an_expired_or_unknown_activation_link_offers_a_new_link(
    client: TestClient, identity: FakeIdentity, status: int, detail: str, heading: str
) -> None:
    identity.answer("/auth/activation", status, detail, can_resend=True)
    response = client.post("/activation", data=activation_form(client))
    assert response.status_code == status
    page = accessible(response)
    assert page.h1 == [heading]
    assert title(response).startswith(heading)
    assert detail in shown(response)
    assert "/activation/nouveau-lien" in page.forms
    assert "csrf_token" in page.hidden()


def test_a_refused_activation_or_new_link_request_answers_with_a_redirect_and_says_why_once(
    client: TestClient, identity: FakeIdentity
) -> None:
    identity.answer("/auth/activation", 410, "Ce lien d'activation a expiré.", can_resend=True)
    posted = client.post("/activation", data=activation_form(client), follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"] == "/activation"  # post/redirect/get
    expired = client.get("/activation")
    assert expired.status_code == 410 and "Ce lien d'activation a expiré." in shown(expired)
    assert "/activation/nouveau-lien" in accessible(expired).forms
    afresh = client.get("/activation")  # a refresh: the page for a link cut short, not the refusal again
    assert "Ce lien d'activation a expiré." not in shown(afresh)
    typo = client.post("/activation/nouveau-lien", data={"csrf_token": Page(afresh.text).hidden()["csrf_token"],
                                                         "email": "pas-une-adresse"}, follow_redirects=False)
    assert typo.status_code == 303 and typo.headers["location"] == "/activation"
    refused = client.get("/activation")
    assert refused.status_code == 422 and 'value="pas-une-adresse"' in refused.text
    accessible(refused)


def test_an_activation_link_already_used_says_so_and_offers_to_log_in(client: TestClient, identity: FakeIdentity) -> None:
    identity.answer("/auth/activation", 409, USED)
    response = client.post("/activation", data=activation_form(client))
    assert response.status_code == 200 and response.url.path == "/"
    page = accessible(response)
    assert "déjà été utilisé" in response.text
    assert "/connexion" in page.links


def test_asking_for_a_new_activation_link_shows_the_neutral_answer(client: TestClient, identity: FakeIdentity) -> None:
    form = activation_form(client)
    identity.answer("/auth/activation/resend", 202, NEUTRAL_RESEND)
    response = client.post(
        "/activation/nouveau-lien", data={"csrf_token": form["csrf_token"], "email": " parent@example.org "}
    )
    assert response.status_code == 200
    accessible(response)
    assert NEUTRAL_RESEND in shown(response)
    assert identity.calls == [("/auth/activation/resend", {"email": "parent@example.org"})]


def test_too_many_new_link_requests_show_identity_s_message(client: TestClient, identity: FakeIdentity) -> None:
    form = activation_form(client)
    identity.answer("/auth/activation/resend", 429, TOO_MANY, headers={"Retry-After": "120"})
    response = client.post("/activation/nouveau-lien", data={"csrf_token": form["csrf_token"], "email": "a@example.org"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "120"
    accessible(response)
    assert TOO_MANY in shown(response)


def test_an_empty_email_is_pointed_at_by_an_error_summary_without_calling_identity(
    client: TestClient, identity: FakeIdentity
) -> None:
    form = activation_form(client)
    response = client.post("/activation/nouveau-lien", data={"csrf_token": form["csrf_token"], "email": ""})
    assert response.status_code == 422
    page = accessible(response)
    assert title(response).startswith("Erreur")
    main = response.text.split("<main", 1)[1]
    assert main.index('role="alert"') < main.index("<h1>")  # the summary comes first
    assert '<a href="#email">Saisissez votre adresse email' in response.text
    assert 'aria-invalid="true"' in response.text and "email-erreur" in response.text
    assert "#email" in page.links
    assert identity.calls == []


# ---- CSRF ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/activation", "/activation/nouveau-lien", "/mot-de-passe/nouveau", "/mot-de-passe/oubli"])
def test_a_post_without_the_csrf_pair_is_refused_in_french(client: TestClient, identity: FakeIdentity, path: str) -> None:
    response = client.post(path, data={"jeton": token(), "email": "a@example.org", "new_password": "x", "confirmation": "x"})
    assert response.status_code == 403
    page = accessible(response)
    assert page.h1 == ["Formulaire expiré"]
    assert identity.calls == []


def test_a_csrf_field_from_another_browser_is_refused(client: TestClient, identity: FakeIdentity) -> None:
    form = activation_form(client)
    client.cookies.clear()
    activation_form(client)  # this browser now has its own cookie, not the one the field was signed for
    assert client.post("/activation", data=form).status_code == 403
    forged = {**activation_form(client), "csrf_token": "0" * 64}
    assert client.post("/activation", data=forged).status_code == 403
    assert identity.calls == []


def test_the_csrf_cookie_is_kept_across_pages_so_several_tabs_stay_valid(client: TestClient, identity: FakeIdentity) -> None:
    identity.answer("/auth/activation", 200, ACTIVATED)
    first = activation_form(client)
    second = activation_form(client)
    assert first["csrf_token"] == second["csrf_token"]
    assert client.post("/activation", data=first).status_code == 200


def test_the_csrf_cookie_is_secure_outside_a_local_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECP_ENVIRONMENT", "production")
    monkeypatch.setenv("ECP_SECRET_KEY", "a-real-secret-from-the-deployment")
    with TestClient(create_app(), base_url="https://testserver") as https_client:
        response = https_client.get("/activation", params={"jeton": token()})
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("__host-ecp_csrf=") and "secure" in cookie and "httponly" in cookie


# ---- identity unreachable --------------------------------------------------------------------

def test_identity_unreachable_gives_a_french_503_page(client: TestClient, identity: FakeIdentity) -> None:
    form = activation_form(client)
    identity.down = True
    response = client.post("/activation", data=form)
    assert response.status_code == 503
    page = accessible(response)
    assert page.h1 == ["Service momentanément indisponible"]
    assert "réessayez" in response.text
    assert "ConnectError" not in response.text


def test_an_unexpected_identity_answer_is_a_503_page_too(client: TestClient, identity: FakeIdentity) -> None:
    identity.answer("/auth/activation", 500, "Une erreur inattendue s'est produite.")
    response = client.post("/activation", data=activation_form(client))
    assert response.status_code == 503
    accessible(response)


# ---- new password ----------------------------------------------------------------------------

def test_the_reset_link_shows_the_new_password_form(client: TestClient, identity: FakeIdentity) -> None:
    jeton = token()
    response = client.get("/mot-de-passe/nouveau", params={"jeton": jeton})
    assert response.status_code == 200
    page = accessible(response)
    assert page.h1 == ["Choisir un nouveau mot de passe"]
    assert title(response).startswith("Choisir un nouveau mot de passe")
    assert page.hidden()["jeton"] == jeton
    passwords = [i for i in page.inputs if i.get("type") == "password"]
    assert [i["name"] for i in passwords] == ["new_password", "confirmation"]
    assert all(i["autocomplete"] == "new-password" for i in passwords)
    assert "regle-mot-de-passe" in passwords[0]["aria-describedby"]
    assert 'id="regle-mot-de-passe">12 caractères minimum, sans votre nom ni celui de la ville' in response.text
    assert identity.calls == []


def test_a_reset_link_without_its_jeton_offers_a_new_link(client: TestClient, identity: FakeIdentity) -> None:
    response = client.get("/mot-de-passe/nouveau")
    assert response.status_code == 400
    page = accessible(response)
    assert "/mot-de-passe/oubli" in page.forms
    assert identity.calls == []


def test_a_mismatched_confirmation_is_shown_without_calling_identity(client: TestClient, identity: FakeIdentity) -> None:
    form = reset_form(client)
    response = client.post(
        "/mot-de-passe/nouveau", data={**form, "new_password": "lampe verte sur le piano", "confirmation": "lampe verte"}
    )
    assert response.status_code == 422
    page = accessible(response)
    assert title(response).startswith("Erreur : Choisir un nouveau mot de passe")
    assert '<a href="#confirmation">Les deux mots de passe ne sont pas identiques' in response.text
    assert 'id="confirmation-erreur"' in response.text
    assert "lampe verte" not in response.text  # passwords are never written back
    assert page.hidden()["jeton"] == form["jeton"]  # the form can be sent again
    assert identity.calls == []


def test_a_refused_new_password_answers_with_a_redirect_and_shows_its_errors_once(client: TestClient, identity: FakeIdentity) -> None:
    form = reset_form(client)
    posted = client.post("/mot-de-passe/nouveau", data={**form, "new_password": "lampe verte sur le piano", "confirmation": ""},
                         follow_redirects=False)
    # Post/redirect/get: Back or a refresh after the mistake never sends the form again.
    assert posted.status_code == 303 and posted.headers["location"] == f"/mot-de-passe/nouveau?jeton={form['jeton']}"
    assert "lampe verte" not in posted.headers.get("set-cookie", "")
    shown_once = client.get(posted.headers["location"])
    assert shown_once.status_code == 422 and '<a href="#confirmation">' in shown_once.text
    assert Page(shown_once.text).hidden()["jeton"] == form["jeton"] and "lampe verte" not in shown_once.text
    refreshed = client.get(posted.headers["location"])
    assert refreshed.status_code == 200 and '<a href="#confirmation">' not in refreshed.text
    assert identity.calls == []


def test_a_new_password_is_set(client: TestClient, identity: FakeIdentity) -> None:
    identity.answer("/auth/password-reset/confirm", 200, RESET_DONE)
    form = reset_form(client)
    response = client.post("/mot-de-passe/nouveau", data={**form, "new_password": "lampe verte sur le piano",
                                                          "confirmation": "lampe verte sur le piano"})
    assert response.status_code == 200 and response.url.path == "/connexion"  # post/redirect/get
    accessible(response)
    assert "Votre mot de passe est modifié" in shown(response)
    assert identity.calls == [
        ("/auth/password-reset/confirm", {"token": form["jeton"], "new_password": "lampe verte sur le piano"})
    ]


def test_identity_s_refusal_of_a_password_is_shown_next_to_the_field(client: TestClient, identity: FakeIdentity) -> None:
    identity.answer(
        "/auth/password-reset/confirm", 422, TOO_COMMON,
        errors=[{"loc": ["body", "new_password"], "msg": TOO_COMMON, "type": "value_error"}],
    )
    form = reset_form(client)
    response = client.post("/mot-de-passe/nouveau", data={**form, "new_password": "motdepasse123", "confirmation": "motdepasse123"})
    assert response.status_code == 422
    accessible(response)
    assert f'id="nouveau-mot-de-passe-erreur"><span class="visually-hidden">Erreur : </span>{TOO_COMMON}' in response.text
    assert 'aria-describedby="regle-mot-de-passe nouveau-mot-de-passe-erreur" aria-invalid="true"' in response.text
    assert f'<a href="#nouveau-mot-de-passe">{TOO_COMMON}' in response.text


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (410, "Ce lien a expiré (il est valable une heure). Demandez un nouveau lien."),
        (409, "Ce lien a déjà été utilisé. Demandez un nouveau lien si nécessaire."),
        (400, "Ce lien n'est pas valide. Vérifiez qu'il est complet ou demandez un nouveau lien."),
    ],
)
def test_a_spent_reset_link_offers_a_new_one(client: TestClient, identity: FakeIdentity, status: int, detail: str) -> None:
    identity.answer("/auth/password-reset/confirm", status, detail)
    form = reset_form(client)
    response = client.post("/mot-de-passe/nouveau", data={**form, "new_password": "lampe verte sur le piano",
                                                          "confirmation": "lampe verte sur le piano"})
    assert response.status_code == status
    page = accessible(response)
    assert detail in shown(response)
    assert "/mot-de-passe/oubli" in page.forms
    assert "Recevoir un nouveau lien" in response.text


def test_a_spent_link_or_a_refused_address_answers_with_a_redirect_to_the_forgotten_password_page(
    client: TestClient, identity: FakeIdentity
) -> None:
    identity.answer("/auth/password-reset/confirm", 410, "Ce lien a expiré (il est valable une heure). Demandez un nouveau lien.")
    form = reset_form(client)
    spent = client.post("/mot-de-passe/nouveau", data={**form, "new_password": "lampe verte sur le piano",
                                                       "confirmation": "lampe verte sur le piano"}, follow_redirects=False)
    assert spent.status_code == 303 and spent.headers["location"] == "/mot-de-passe/oubli"
    shown_once = client.get("/mot-de-passe/oubli")
    assert shown_once.status_code == 410 and "Ce lien a expiré" in shown(shown_once)
    assert "Ce lien a expiré" not in shown(client.get("/mot-de-passe/oubli"))  # a refresh: the form afresh
    typo = client.post("/mot-de-passe/oubli", data={"csrf_token": form["csrf_token"], "email": "pas-une-adresse"},
                       follow_redirects=False)
    assert typo.status_code == 303 and typo.headers["location"] == "/mot-de-passe/oubli"
    refused = client.get("/mot-de-passe/oubli")
    assert refused.status_code == 422 and 'value="pas-une-adresse"' in refused.text
    accessible(refused)


def test_asking_for_a_new_reset_link_shows_the_neutral_answer(client: TestClient, identity: FakeIdentity) -> None:
    form = reset_form(client)
    identity.answer("/auth/password-reset", 202, NEUTRAL_RESET)
    response = client.post("/mot-de-passe/oubli", data={"csrf_token": form["csrf_token"], "email": "parent@example.org"})
    assert response.status_code == 200
    accessible(response)
    assert NEUTRAL_RESET in shown(response)
    assert identity.calls == [("/auth/password-reset", {"email": "parent@example.org"})]


def test_the_home_page_sets_no_csrf_cookie(client: TestClient) -> None:
    response = client.get("/")
    assert "set-cookie" not in response.headers
    accessible(response)
