"""The emailed links work end to end: identity mails a link, a browser follows it through the
gateway, submits the page's form (CSRF cookie and hidden field, as a browser does), and identity
then accepts the new state (login). Needs `make up` (and the web service restarted after a change)."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser

import httpx

from tests.integration.identity_client import (
    GATEWAY,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    link_token,
    logged_in,
    person,
    registered_and_activated,
)


class HiddenFields(HTMLParser):
    """The hidden inputs of a page, which a browser would send back with the form."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"] or ""] = a.get("value") or ""


def browser() -> httpx.AsyncClient:
    """A client that keeps cookies, through the public entry only."""
    return httpx.AsyncClient(base_url=GATEWAY, timeout=15, headers={"X-Request-ID": f"web-links-{uuid.uuid4().hex[:12]}"})


async def test_the_emailed_activation_link_activates_the_account_through_the_gateway() -> None:
    client, email = person()
    async with client, browser() as web:
        registered = await client.post(
            "/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Camille Martin"}
        )
        assert registered.status_code == 202, registered.text
        _, event = await link_token("ActivationLinkIssued", email)
        link = event["data"]["link"]
        assert link.startswith(f"{GATEWAY}/activation?jeton=")

        page = await web.get(link)
        assert page.status_code == 200, page.text
        assert "Activer mon espace" in page.text and 'action="/activation"' in page.text
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        # Following the link only showed a form: the account cannot log in yet.
        assert (await client.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})).status_code == 403

        form = HiddenFields(page.text).fields
        assert set(form) == {"csrf_token", "jeton"}
        done = await web.post("/activation", data=form)
        assert done.status_code == 303 and done.headers["location"] == "/", done.text  # home, to log in
        home = await web.get("/")
        assert "Votre espace est activé" in home.text and 'href="/connexion"' in home.text
        await logged_in(client, email)

        again = await web.post("/activation", data=form)
        assert again.status_code == 303
        assert "déjà été utilisé" in (await web.get("/")).text.replace("&#39;", "'")


async def test_a_post_without_the_csrf_pair_is_refused_through_the_gateway() -> None:
    client, email = person()
    async with client, browser() as web:
        response = await web.post("/activation", data={"jeton": "a" * 43})
    assert response.status_code == 403
    assert "Formulaire expiré" in response.text


async def test_the_emailed_reset_link_sets_a_new_password_through_the_gateway() -> None:
    client, email = person()
    async with client, browser() as web:
        await registered_and_activated(client, email)
        assert (await client.post("/auth/password-reset", json={"email": email})).status_code == 202
        _, event = await link_token("PasswordResetLinkIssued", email)
        link = event["data"]["link"]
        assert link.startswith(f"{GATEWAY}/mot-de-passe/nouveau?jeton=")

        page = await web.get(link)
        assert page.status_code == 200, page.text
        assert "Choisir un nouveau mot de passe" in page.text
        form = HiddenFields(page.text).fields
        assert set(form) == {"csrf_token", "jeton"}

        mismatch = await web.post("/mot-de-passe/nouveau", data={**form, "new_password": NEW_PASSWORD, "confirmation": "autre"})
        assert mismatch.status_code == 303 and mismatch.headers["location"] == link.removeprefix(GATEWAY)  # post/redirect/get
        mismatch = await web.get(mismatch.headers["location"])
        assert mismatch.status_code == 422
        assert "ne sont pas identiques" in mismatch.text

        done = await web.post("/mot-de-passe/nouveau", data={**form, "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        assert done.status_code == 303 and done.headers["location"] == "/connexion", done.text
        assert "Votre mot de passe est modifié" in (await web.get("/connexion")).text
        await logged_in(client, email, NEW_PASSWORD)
        assert (await client.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})).status_code == 401

        again = await web.post("/mot-de-passe/nouveau", data={**form, "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        assert again.status_code == 303 and again.headers["location"] == "/mot-de-passe/oubli"
        again = await web.get("/mot-de-passe/oubli")
        assert again.status_code == 409
        assert "déjà été utilisé" in again.text
        assert 'action="/mot-de-passe/oubli"' in again.text
