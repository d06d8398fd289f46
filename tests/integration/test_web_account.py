"""A family's first visit through the gateway, only with the pages' forms: create my space, the
emailed activation link, log in, my space, log out. Needs `make up` (and the web service
restarted after a change)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet

from services.web.settings import LOCAL_SECRET_KEY
from tests.integration.identity_client import GATEWAY, GOOD_PASSWORD, IDENTITY, link_token
from tests.integration.test_web_links import HiddenFields, browser


async def test_a_family_creates_its_space_activates_it_logs_in_sees_its_space_and_logs_out() -> None:
    email = f"parent.{uuid.uuid4().hex[:10]}@example.org"
    name = "Dominique Lefèvre"
    async with browser() as web:
        # Créer mon espace
        page = await web.get("/creer-mon-espace")
        assert page.status_code == 200, page.text
        form = HiddenFields(page.text).fields
        created = await web.post("/creer-mon-espace", data={
            **form, "email": email, "display_name": name, "password": GOOD_PASSWORD, "confirmation": GOOD_PASSWORD,
        })
        assert created.status_code == 303, created.text
        assert created.headers["location"].startswith("/verifiez-vos-emails?email=")
        check = await web.get(created.headers["location"])
        assert check.status_code == 200 and "48 heures" in check.text and email in check.text

        # The emailed link, then the activation page's button
        _, event = await link_token("ActivationLinkIssued", email)
        link = event["data"]["link"]
        assert link.startswith(f"{GATEWAY}/activation?jeton=")
        activation = await web.get(link)
        activated = await web.post("/activation", data=HiddenFields(activation.text).fields)
        assert activated.status_code == 303 and activated.headers["location"] == "/"  # home, to log in
        home = await web.get("/")
        assert "Votre espace est activé" in home.text and 'href="/connexion"' in home.text

        # My space asks to log in first, and comes back after
        asked = await web.get("/mon-espace")
        assert asked.status_code == 303 and asked.headers["location"] == "/connexion?suite=%2Fmon-espace"
        login_page = await web.get(asked.headers["location"])
        login_form = HiddenFields(login_page.text).fields
        assert login_form["suite"] == "/mon-espace"
        wrong = await web.post("/connexion", data={**login_form, "email": email, "password": "pas le bon mot de passe"})
        assert wrong.status_code == 303 and wrong.headers["location"] == "/connexion?suite=%2Fmon-espace"
        refused = await web.get(wrong.headers["location"])  # post/redirect/get, the refusal shown once
        assert refused.status_code == 401
        assert refused.text.count("Adresse email ou mot de passe incorrect.") == 1  # once, for the whole form
        login_form = HiddenFields(refused.text).fields
        logged = await web.post("/connexion", data={**login_form, "email": email, "password": GOOD_PASSWORD})
        assert logged.status_code == 303, logged.text
        assert logged.headers["location"] == "/mon-espace"
        cookie = next(c for c in logged.headers.get_list("set-cookie") if c.startswith("ecp_session="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert GOOD_PASSWORD not in cookie

        mine = await web.get("/mon-espace")
        assert mine.status_code == 200, mine.text
        assert f"Bonjour {name}" in mine.text
        assert "pas encore déclaré" in mine.text.replace("&#39;", "'")
        assert "Inscription Scolaire Maternelle ou Élémentaire" not in mine.text  # no validated file, nothing to enrol

        # Log out: the session is gone and its refresh token revoked
        refresh_token = _refresh_token_in(web.cookies["ecp_session"])
        out = await web.post("/deconnexion", data=HiddenFields(mine.text).fields)
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert "Vous êtes déconnecté·e" in (await web.get("/")).text
        after = await web.get("/mon-espace")
        assert after.status_code == 303
        assert urlsplit(after.headers["location"]).path == "/connexion"
        async with httpx.AsyncClient(base_url=IDENTITY, timeout=15) as identity:
            refused = await identity.post("/auth/refresh", json={"refresh_token": refresh_token})
        assert refused.status_code == 401


def _refresh_token_in(cookie: str) -> str:
    """Decrypts the session cookie as the web service does (the local run's default key)."""
    key = base64.urlsafe_b64encode(hashlib.sha256(b"ecp-web-session:" + LOCAL_SECRET_KEY.encode()).digest())
    return str(json.loads(Fernet(key).decrypt(cookie.encode()))["r"])
