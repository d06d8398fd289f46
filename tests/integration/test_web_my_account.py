"""« Mon compte » through the gateway's pages, against the real identity service: change my
password and log in with the new one; delete my account and no longer be able to log in.
Needs `make up` (and the web service restarted after a change)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest

from tests.integration.identity_client import GOOD_PASSWORD, NEW_PASSWORD, person, registered_and_activated
from tests.integration.test_web_schooling import Forms, logged_in_browser


@pytest.fixture
async def family() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An activated account, and an identity client with the person's own address (logins are
    checked there: the gateway's one address shares its login limit with every page test)."""
    identity, email = person()
    try:
        await registered_and_activated(identity, email)
        yield identity, email
    finally:
        await identity.aclose()


async def login_status(identity: httpx.AsyncClient, email: str, password: str) -> int:
    return (await identity.post("/auth/login", json={"email": email, "password": password})).status_code


async def test_after_changing_my_password_only_the_new_one_logs_in(family: tuple[httpx.AsyncClient, str]) -> None:
    identity, email = family
    async with await logged_in_browser(identity, email) as web:
        page = await web.get("/mon-compte")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert email in page.text and "Camille Martin" in page.text
        form = Forms(page.text).button("Changer mon mot de passe")

        weak = await web.post("/mon-compte", data={**form["hidden"], "current_password": GOOD_PASSWORD,
                                                   "new_password": "motdepasse12", "confirmation": "motdepasse12"})
        assert weak.status_code == 303 and weak.headers["location"] == "/mon-compte"  # post/redirect/get
        weak = await web.get("/mon-compte")
        assert weak.status_code == 422 and 'href="#nouveau-mot-de-passe"' in weak.text
        wrong = await web.post("/mon-compte", data={**form["hidden"], "current_password": "pas le bon mot de passe",
                                                    "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        assert wrong.status_code == 303
        wrong = await web.get("/mon-compte")
        assert wrong.status_code == 401 and "Le mot de passe actuel est incorrect." in unescape(wrong.text)

        changed = await web.post("/mon-compte", data={**form["hidden"], "current_password": GOOD_PASSWORD,
                                                      "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD})
        assert changed.status_code == 303, changed.text
        if changed.headers["location"] == "/mon-compte":  # this browser was logged in again with the new password
            after = await web.get(changed.headers["location"])
            assert after.status_code == 200 and "Votre mot de passe a été modifié" in unescape(after.text)
        else:  # that login hit the gateway address's shared limit: the login page asks to log in again
            assert changed.headers["location"] == "/connexion"
            assert "Connectez-vous avec votre nouveau mot de passe" in unescape((await web.get("/connexion")).text)
            assert (await web.get("/mon-compte")).status_code == 303

        assert await login_status(identity, email, GOOD_PASSWORD) == 401
        assert await login_status(identity, email, NEW_PASSWORD) == 200


async def test_deleting_my_account_ends_the_session_and_the_account_can_no_longer_log_in(
    family: tuple[httpx.AsyncClient, str],
) -> None:
    identity, email = family
    async with await logged_in_browser(identity, email) as web:
        page = await web.get("/mon-compte")
        form = Forms(page.text).button("Supprimer définitivement mon compte")
        unconfirmed = await web.post("/mon-compte", data={**form["hidden"], "password": GOOD_PASSWORD})
        assert unconfirmed.status_code == 303 and unconfirmed.headers["location"] == "/mon-compte"
        unconfirmed = await web.get("/mon-compte")
        assert unconfirmed.status_code == 422 and 'href="#confirmer-suppression"' in unconfirmed.text
        wrong = await web.post("/mon-compte", data={**form["hidden"], "password": "pas le bon mot de passe", "confirm": "oui"})
        assert wrong.status_code == 303
        wrong = await web.get("/mon-compte")
        assert wrong.status_code == 401 and 'href="#mot-de-passe-suppression"' in wrong.text

        deleted = await web.post("/mon-compte", data={**form["hidden"], "password": GOOD_PASSWORD, "confirm": "oui"})
        assert deleted.status_code == 303 and deleted.headers["location"] == "/", deleted.text
        assert "Votre compte et les données personnelles" in unescape((await web.get("/")).text)
        assert any(c.startswith("ecp_session=;") or c.startswith('ecp_session="";') for c in deleted.headers.get_list("set-cookie"))
        assert (await web.get("/mon-compte")).status_code == 303  # the session is gone
        assert await login_status(identity, email, GOOD_PASSWORD) == 401
