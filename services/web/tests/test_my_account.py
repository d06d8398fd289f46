"""« Mon compte » with identity faked (no I/O): my email and name, change my password, delete my account."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web import session
from services.web.tests.test_account import (  # noqa: F401
    ENROLMENT, HOUSEHOLD, IDENTITY, PASSWORD, FakeServices, client, logged_in, pair, services,
)
from services.web.tests.test_links import Page, accessible, shown, title
from services.web.tests.test_schooling import summary_links

NEW = "lampe verte sur le piano"
ME = {"account_id": "acc-1", "email": "camille@exemple.fr", "display_name": "Camille Martin", "role": "family"}


def references(services: FakeServices, file: str | None = "MSL-2027-000123") -> None:
    """The family's file (with its reference, or none yet) and its enrolments."""
    if file is None:
        services.answer(HOUSEHOLD, "/dossier", 404, {"detail": "Vous n'avez pas encore de dossier."})
    else:
        services.answer(HOUSEHOLD, "/dossier", 200, {"status": "validated", "status_label": "Validé", "reference": file})
    services.answer(ENROLMENT, "/enrolments", 200, {"enrolments": [
        {"reference": "INS-2027-000042", "child_first_name": "Léa", "school_year": "2027-2028", "status_label": "inscription confirmée"},
    ] if file else []})


def my_account(client: TestClient, services: FakeServices) -> dict[str, str]:
    """Logged in on « Mon compte »; returns the page's hidden fields (the CSRF token)."""
    logged_in(client, services)
    services.answer(IDENTITY, "/me", 200, ME)
    references(services)
    response = client.get("/mon-compte")
    assert response.status_code == 200, response.text
    services.calls.clear()
    return {"csrf_token": Page(response.text).hidden()["csrf_token"]}


def change(client: TestClient, form: dict[str, str], current: str = PASSWORD, new: str = NEW, confirmation: str = NEW) -> httpx.Response:
    return client.post("/mon-compte", data={**form, "action": "mot-de-passe", "current_password": current,
                                             "new_password": new, "confirmation": confirmation})


def delete(client: TestClient, form: dict[str, str], password: str = PASSWORD, confirm: str | None = "oui") -> httpx.Response:
    data = {**form, "action": "suppression", "password": password}
    if confirm is not None:
        data["confirm"] = confirm
    return client.post("/mon-compte", data=data)


def refused(client: TestClient, posted: httpx.Response) -> httpx.Response:
    """A refused form: post/redirect/get back to « Mon compte », whose page shows the errors once."""
    assert posted.status_code == 303 and posted.headers["location"] == "/mon-compte", posted.text
    assert PASSWORD not in posted.headers.get("set-cookie", "") and NEW not in posted.headers.get("set-cookie", "")
    return client.get("/mon-compte")


def test_my_account_shows_my_email_and_name_and_both_forms(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    services.answer(IDENTITY, "/me", 200, ME)
    references(services)
    response = client.get("/mon-compte")
    page = accessible(response)
    text = shown(response)
    assert page.h1 == ["Mon compte"] and title(response).startswith("Mon compte")
    assert "camille@exemple.fr" in text and "Camille Martin" in text
    assert response.headers["cache-control"] == "no-store"
    autocompletes = {i["id"]: i.get("autocomplete") for i in page.visible_inputs()}
    assert autocompletes == {"mot-de-passe-actuel": "current-password", "nouveau-mot-de-passe": "new-password",
                             "confirmation-mot-de-passe": "new-password", "mot-de-passe-suppression": "current-password",
                             "confirmer-suppression": None}
    assert "Ce qui sera effacé" in text and "Ce que la ville doit conserver" in text
    assert "Changer mon mot de passe" in text and "Supprimer définitivement mon compte" in text
    assert '<a href="/mon-compte" aria-current="page">Mon compte</a>' in response.text


def test_a_revoked_session_on_my_account_asks_to_log_in_again(client: TestClient, services: FakeServices) -> None:
    logged_in(client, services)
    services.answer(IDENTITY, "/me", 401, {"detail": "Session expirée."})
    response = client.get("/mon-compte")
    assert response.status_code == 303 and response.headers["location"] == "/connexion?suite=%2Fmon-compte"
    assert client.cookies.get(session.COOKIE_NAME) is None


# ---- changer mon mot de passe -------------------------------------------------------------------

def test_missing_or_different_passwords_are_listed_without_calling_identity(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    response = refused(client, change(client, form, current="", new=NEW, confirmation="autre chose"))
    assert response.status_code == 422
    accessible(response)
    assert summary_links(response) == ["#mot-de-passe-actuel", "#confirmation-mot-de-passe"]
    assert NEW not in response.text  # passwords are never written back
    assert "/me/password" not in services.paths()
    same = refused(client, change(client, form, current=NEW))
    assert same.status_code == 422 and "différent du mot de passe actuel" in shown(same)


def test_a_refused_change_answers_with_a_redirect_and_its_errors_show_once(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    posted = change(client, form, confirmation="autre chose")
    assert posted.status_code == 303 and posted.headers["location"] == "/mon-compte"  # Back/refresh: no resubmission
    shown_once = client.get("/mon-compte")
    assert shown_once.status_code == 422 and summary_links(shown_once) == ["#confirmation-mot-de-passe"]
    refreshed = client.get("/mon-compte")
    assert refreshed.status_code == 200 and summary_links(refreshed) == [] and NEW not in shown_once.text


def test_identitys_policy_reason_is_shown_next_to_the_new_password(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    reason = "Ce mot de passe est trop facile à deviner. Choisissez une phrase de plusieurs mots."
    services.answer(IDENTITY, "/me/password", 422, {"detail": reason, "errors": [
        {"loc": ["body", "new_password"], "msg": reason, "type": "value_error"}]})
    response = refused(client, change(client, form))
    assert response.status_code == 422
    assert summary_links(response) == ["#nouveau-mot-de-passe"] and reason in shown(response)
    assert 'aria-describedby="nouveau-mot-de-passe-aide nouveau-mot-de-passe-erreur" aria-invalid="true"' in response.text


def test_a_wrong_current_password_is_shown_next_to_it(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/password", 401, {"detail": "Le mot de passe actuel est incorrect.", "errors": [
        {"loc": ["body", "current_password"], "msg": "Le mot de passe actuel est incorrect.", "type": "value_error"}]})
    response = refused(client, change(client, form))
    assert response.status_code == 401
    assert summary_links(response) == ["#mot-de-passe-actuel"]


def test_after_a_change_this_browser_logs_in_again_with_the_new_password(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/password", 204)
    services.answer(IDENTITY, "/auth/login", 200, pair(2))
    response = change(client, form)
    assert response.status_code == 303 and response.headers["location"] == "/mon-compte"
    assert (IDENTITY, "/me/password", {"current_password": PASSWORD, "new_password": NEW}, "Bearer access-1") in services.calls
    assert (IDENTITY, "/auth/login", {"email": "camille@exemple.fr", "password": NEW}, None) in services.calls
    after = client.get(response.headers["location"])
    assert 'role="status"><p>Votre mot de passe a été modifié' in after.text
    assert services.calls[-1][3] == "Bearer access-2"  # the new session
    assert "Votre mot de passe a été modifié" not in client.get("/mon-compte").text  # said once


def test_when_logging_in_again_fails_the_user_is_told_to_log_in(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/password", 204)
    services.answer(IDENTITY, "/auth/login", 429, {"detail": "Trop de tentatives."}, {"Retry-After": "60"})
    response = change(client, form)
    assert response.status_code == 303 and response.headers["location"] == "/connexion"
    assert client.cookies.get(session.COOKIE_NAME) is None
    login = client.get("/connexion")
    accessible(login)
    assert "Connectez-vous avec votre nouveau mot de passe" in shown(login)


def test_identity_down_during_a_change_gives_a_french_503(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/password", 500, {"detail": "boom"})
    response = change(client, form)
    assert response.status_code == 503 and "Service momentanément indisponible" in shown(response)


# ---- supprimer mon compte -----------------------------------------------------------------------

def test_deleting_needs_the_password_and_the_checkbox(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    response = refused(client, delete(client, form, password="", confirm=None))
    assert response.status_code == 422
    accessible(response)
    assert summary_links(response) == ["#mot-de-passe-suppression", "#confirmer-suppression"]
    assert 'aria-describedby="confirmer-suppression-erreur" aria-invalid="true"' in response.text
    assert "/me/delete" not in services.paths()


def test_a_wrong_password_does_not_delete_the_account(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/delete", 401, {"detail": "Le mot de passe est incorrect.", "errors": [
        {"loc": ["body", "password"], "msg": "Le mot de passe est incorrect.", "type": "value_error"}]})
    response = refused(client, delete(client, form, password="pas le bon"))
    assert response.status_code == 401
    assert summary_links(response) == ["#mot-de-passe-suppression"] and "Le mot de passe est incorrect." in shown(response)
    assert client.cookies.get(session.COOKIE_NAME) is not None


def test_deleting_my_account_ends_the_session_and_confirms(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/delete", 204)
    response = delete(client, form)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert "Votre compte et les données personnelles" in shown(client.get("/"))
    assert (IDENTITY, "/me/delete", {"password": PASSWORD}, "Bearer access-1") in services.calls
    assert client.cookies.get(session.COOKIE_NAME) is None
    assert client.get("/mon-compte").status_code == 303


@pytest.mark.parametrize("action", ["", "autre-chose"])
def test_an_unknown_action_is_a_french_400(client: TestClient, services: FakeServices, action: str) -> None:
    form = my_account(client, services)
    response = client.post("/mon-compte", data={**form, "action": action})
    assert response.status_code == 400 and "Formulaire non valide" in response.text
    assert services.calls == []


def test_a_post_without_the_csrf_pair_is_refused_before_any_call(client: TestClient, services: FakeServices) -> None:
    my_account(client, services)
    response = client.post("/mon-compte", data={"action": "suppression", "password": PASSWORD, "confirm": "oui"})
    assert response.status_code == 403 and services.calls == []


def test_too_many_wrong_current_passwords_say_so_next_to_the_field(client: TestClient, services: FakeServices) -> None:
    form = my_account(client, services)
    services.answer(IDENTITY, "/me/password", 429, {"detail": "Trop de tentatives. Réessayez dans quelques minutes."})
    response = refused(client, change(client, form))
    assert response.status_code == 429
    assert summary_links(response) == ["#mot-de-passe-actuel"] and "Trop de tentatives" in shown(response)
    services.answer(IDENTITY, "/me/delete", 429, {"detail": "Trop de tentatives. Réessayez dans quelques minutes."})
    response = refused(client, delete(client, form, password="encore faux"))
    assert response.status_code == 429
    assert summary_links(response) == ["#mot-de-passe-suppression"] and "Trop de tentatives" in shown(response)


def test_my_account_shows_my_files_reference_and_each_enrolments_in_the_page_and_the_header(
    client: TestClient, services: FakeServices,  # noqa: F811
) -> None:
    logged_in(client, services)
    services.answer(IDENTITY, "/me", 200, ME)
    references(services)
    text = shown(client.get("/mon-compte"))
    header, main = text.split("</header>", 1)
    assert 'Dossier n° <strong class="ref">MSL-2027-000123</strong>' in header
    assert '<dt>Référence de mon dossier</dt>\n    <dd><strong class="ref">MSL-2027-000123</strong>' in main
    assert 'Léa, année scolaire 2027-2028 : <strong class="ref">INS-2027-000042</strong> (inscription confirmée)' in main


def test_before_any_file_my_account_says_the_reference_comes_with_the_declaration(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    logged_in(client, services)
    services.answer(IDENTITY, "/me", 200, ME)
    references(services, file=None)
    text = shown(client.get("/mon-compte"))
    assert "Dossier n°" not in text and "MSL-" not in text and "Références de mes inscriptions" not in text
    assert "Pas encore de dossier : il reçoit sa référence quand vous" in text


def test_my_account_still_opens_when_household_and_enrolment_do_not_answer(client: TestClient, services: FakeServices) -> None:  # noqa: F811
    logged_in(client, services)
    services.answer(IDENTITY, "/me", 200, ME)
    services.answer(HOUSEHOLD, "/dossier", 503, {"detail": "indisponible"})
    services.answer(ENROLMENT, "/enrolments", 500, {"detail": "boom"})
    response = client.get("/mon-compte")
    assert response.status_code == 200 and "camille@exemple.fr" in shown(response)
    assert "Momentanément indisponible" in shown(response)
