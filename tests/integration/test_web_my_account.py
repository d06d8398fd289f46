"""« Mon compte » through the gateway's pages, against the real identity service: change my
password and log in with the new one; delete my account and no longer be able to log in.
Needs `make up` (and the web service restarted after a change)."""

from __future__ import annotations

from html import unescape

import httpx

from tests.integration.identity_client import GOOD_PASSWORD, NEW_PASSWORD, person, registered_and_activated
from tests.integration.test_web_links import browser
from tests.integration.test_web_schooling import Forms, logged_in_page


async def family_email() -> str:
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
    return email


async def log_in(web: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    login = await web.get("/connexion")
    form = Forms(login.text).button("Se connecter")
    return await web.post("/connexion", data={**form["hidden"], "email": email, "password": password})


async def test_changing_my_password_keeps_me_logged_in_and_the_new_one_opens_my_space() -> None:
    email = await family_email()
    async with browser() as web:
        await logged_in_page(web, email, "/mon-compte")
        page = await web.get("/mon-compte")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert email in page.text and "Camille Martin" in page.text
        form = Forms(page.text).button("Changer mon mot de passe")

        weak = await web.post("/mon-compte", data={**form["hidden"], "current_password": GOOD_PASSWORD,
                                                   "new_password": "motdepasse12", "confirmation": "motdepasse12"})
        assert weak.status_code == 422 and 'href="#nouveau-mot-de-passe"' in weak.text
        wrong = await web.post("/mon-compte", data={**form["hidden"], "current_password": "pas le bon mot de passe",
                                                    "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        assert wrong.status_code == 401 and "Le mot de passe actuel est incorrect." in unescape(wrong.text)

        changed = await web.post("/mon-compte", data={**form["hidden"], "current_password": GOOD_PASSWORD,
                                                      "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        assert changed.status_code == 303 and changed.headers["location"] == "/mon-compte?fait=mot-de-passe", changed.text
        after = await web.get(changed.headers["location"])
        assert after.status_code == 200 and "Votre mot de passe a été modifié" in unescape(after.text)

    async with browser() as fresh:
        assert (await log_in(fresh, email, GOOD_PASSWORD)).status_code == 401
        logged = await log_in(fresh, email, NEW_PASSWORD)
        assert logged.status_code == 303 and logged.headers["location"] == "/mon-espace"
        assert (await fresh.get("/mon-espace")).status_code == 200


async def test_deleting_my_account_ends_the_session_and_the_account_can_no_longer_log_in() -> None:
    email = await family_email()
    async with browser() as web:
        await logged_in_page(web, email, "/mon-compte")
        page = await web.get("/mon-compte")
        form = Forms(page.text).button("Supprimer définitivement mon compte")
        unconfirmed = await web.post("/mon-compte", data={**form["hidden"], "password": GOOD_PASSWORD})
        assert unconfirmed.status_code == 422 and 'href="#confirmer-suppression"' in unconfirmed.text
        wrong = await web.post("/mon-compte", data={**form["hidden"], "password": "pas le bon mot de passe", "confirm": "oui"})
        assert wrong.status_code == 401 and 'href="#mot-de-passe-suppression"' in wrong.text

        deleted = await web.post("/mon-compte", data={**form["hidden"], "password": GOOD_PASSWORD, "confirm": "oui"})
        assert deleted.status_code == 200, deleted.text
        assert "Votre compte a été supprimé" in unescape(deleted.text)
        assert any(c.startswith("ecp_session=;") or c.startswith('ecp_session="";') for c in deleted.headers.get_list("set-cookie"))
        assert (await web.get("/mon-compte")).status_code == 303  # the session is gone

    async with browser() as fresh:
        refused = await log_in(fresh, email, GOOD_PASSWORD)
        assert refused.status_code == 401
