"""The agents' back-office through the gateway, with real services: an invited agent logs in with
the page's form, reviews real submitted files (corrections on one, validation of another), views
a document in the page's frame, decides an enrolment whose address is off the map, and checks
a sector-map file; a family account is refused every back-office page. Needs `make up` (and the
web service restarted after a change)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape
from typing import Any

import httpx

from tests.integration.identity_client import (
    GOOD_PASSWORD,
    NEW_PASSWORD,
    invited_staff,
    logged_in,
    person,
    registered_and_activated,
)
from tests.integration.test_documents import new_family, pdf_bytes
from tests.integration.test_enrolment import API as ENROLMENT_API
from tests.integration.polling import eventually
from tests.integration.test_household import Household, clean_document, content
from tests.integration.test_web_links import HiddenFields, browser

_AGENT: dict[str, str] = {}


async def logged_in_page(web: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Logs in with the login page's form; returns the answer (a 303)."""
    form = HiddenFields((await web.get("/connexion")).text).fields
    return await web.post("/connexion", data={**form, "email": email, "password": password})


@asynccontextmanager
async def agent_browser() -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in as an agent with the login page (one invited agent for the module)."""
    if "email" not in _AGENT:
        email, token = await invited_staff("agent", "Anne Agent")
        identity, _ = person()
        async with identity:
            chosen = await identity.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
            assert chosen.status_code == 200, chosen.text
            _AGENT["token"] = (await logged_in(identity, email, NEW_PASSWORD))["access_token"]
        _AGENT["email"] = email
    async with browser() as web:
        if "session" in _AGENT:
            # One login for the module: identity allows 10 logins per account in 15 minutes.
            web.cookies.set("ecp_session", _AGENT["session"])
        else:
            logged = await logged_in_page(web, _AGENT["email"], NEW_PASSWORD)
            assert logged.status_code == 303 and logged.headers["location"] == "/mon-espace", logged.text
        home = await web.get("/mon-espace")
        assert home.status_code == 303 and home.headers["location"] == "/agents/dossiers"
        try:
            yield web
        finally:
            # A page may have refreshed the tokens, which rotates the cookie: keep the newest.
            _AGENT["session"] = web.cookies.get("ecp_session") or _AGENT.get("session", "")


async def submitted_household(street: str = "rue des Lilas") -> tuple[Household, dict[str, str], str]:
    """A real family (one guardian, one child) with its file submitted: (household, documents, file id)."""
    household = Household(await new_family())
    docs = {kind: await clean_document(household.family, kind) for kind in ("proof_of_address", "guardian_identity", "child_identity")}
    await household.created()
    body = content(docs)
    body["guardians"] = body["guardians"][:1]
    body["address"]["street"] = street
    saved = await household.put(body)
    assert saved.status_code == 200, saved.text
    dossier = await household.submitted()
    return household, docs, dossier["id"]


def text(response: httpx.Response) -> str:
    return unescape(response.text)


async def test_an_agent_asks_for_corrections_on_one_file_validates_another_and_views_a_document() -> None:
    first, first_docs, first_id = await submitted_household()
    second, _, second_id = await submitted_household()
    try:
        async with agent_browser() as web:
            # The queue finds each file by its short reference, with its total.
            for household, dossier_id in ((first, first_id), (second, second_id)):
                reference = (await household.mine())["reference"]
                listed = await web.get("/agents/dossiers", params={"q": reference})
                assert listed.status_code == 200, listed.text
                assert "<caption>" in listed.text and 'scope="col">Transmis le' in listed.text
                assert re.findall(r'href="/agents/dossiers/([A-Za-z0-9-]+)"', listed.text) == [dossier_id, "suivant"]
                assert reference in text(listed) and "1 dossier." in text(listed) and "Camille Martin" in text(listed)

            # The file: household, documents in their viewers, the three decisions, the audit.
            shown = await web.get(f"/agents/dossiers/{first_id}")
            assert shown.status_code == 200, shown.text
            assert shown.headers["cache-control"] == "no-store"
            page_text = text(shown)
            for expected in ("12 bis rue des Lilas", "Camille", "Léa", "14/03/2021", "Valider…", "Refuser le dossier",
                             "Demander les corrections", "Historique du dossier", "Je prends ce dossier"):
                assert expected in page_text, expected
            proof = first_docs["proof_of_address"]
            assert f'<iframe class="viewer" src="/agents/documents/{proof}/apercu#view=FitH"' in page_text

            # The preview relays the stored bytes, inline, framable by this site only.
            preview = await web.get(f"/agents/documents/{proof}/apercu")
            assert preview.status_code == 200
            assert preview.headers["content-type"] == "application/pdf"
            assert preview.headers["content-disposition"].startswith("inline")
            assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
            assert preview.headers["x-content-type-options"] == "nosniff"
            assert preview.content.startswith(b"%PDF")
            download = await web.get(f"/agents/documents/{proof}/apercu", params={"telecharger": "1"})
            assert download.headers["content-disposition"].startswith("attachment")
            # Every other page still refuses to be framed.
            assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]

            # Corrections: none written is a French error; one reason on the proof of address is sent.
            form = _form_fields(shown.text, f"/agents/dossiers/{first_id}/corrections")
            empty = await web.post(f"/agents/dossiers/{first_id}/corrections", data=form)
            assert empty.status_code == 422
            assert "Saisissez au moins une correction" in text(empty)
            assert f'name="motif:{proof}"' in shown.text  # the proof's checklist: a preset reason and a precision
            reason = "Justificatif de domicile de plus de 3 mois : facture de janvier"
            asked = await web.post(f"/agents/dossiers/{first_id}/corrections", data={
                **form, f"motif:{proof}": "Justificatif de domicile de plus de 3 mois", f"precision:{proof}": "facture de janvier"})
            assert asked.status_code == 303, asked.text
            after = await web.get(asked.headers["location"])
            assert "Les corrections ont été demandées" in text(after) and reason in text(after)
            assert "Corrections demandées" in text(after)
            mine = await first.mine()
            assert mine["status"] == "corrections_requested"
            assert mine["address"]["corrections"] == [reason]

            # Deciding again on the same file: it is no longer under review.
            again = await web.post(f"/agents/dossiers/{first_id}/valider",
                                   data={**_form_fields(shown.text, f"/agents/dossiers/{first_id}/valider"), "confirme": "1"})
            assert again.status_code == 409 and "traité par un autre agent" in text(again)

            # The other file: a refusal without a reason is refused, then it is validated.
            other = await web.get(f"/agents/dossiers/{second_id}")
            no_reason = await web.post(f"/agents/dossiers/{second_id}/refuser", data=_form_fields(other.text, f"/agents/dossiers/{second_id}/refuser"))
            assert no_reason.status_code == 422 and "Saisissez le motif du refus" in text(no_reason)
            assert 'aria-invalid="true"' in no_reason.text and 'href="#motif-refus"' in no_reason.text
            confirm = await web.post(f"/agents/dossiers/{second_id}/valider", data=_form_fields(other.text, f"/agents/dossiers/{second_id}/valider"))
            assert confirm.status_code == 200 and "Confirmer la validation" in text(confirm)
            assert (await second.mine())["status"] == "submitted"  # one click never validates
            validated = await web.post(f"/agents/dossiers/{second_id}/valider", data=_form_fields(confirm.text, f"/agents/dossiers/{second_id}/valider"))
            assert validated.status_code == 303
            assert "Le dossier a été validé" in text(await web.get(validated.headers["location"]))
            assert (await second.mine())["status"] == "validated"
    finally:
        for household in (first, second):
            await household.close()
            await household.family.close()


async def test_an_agent_confirms_an_enrolment_whose_address_is_off_the_map_choosing_the_school() -> None:
    household, _, dossier_id = await submitted_household(street=f"impasse Inconnue {uuid.uuid4().hex[:6]}")
    try:
        async with agent_browser() as web:
            page = await web.get(f"/agents/dossiers/{dossier_id}")
            validated = await web.post(f"/agents/dossiers/{dossier_id}/valider",
                                       data={**_form_fields(page.text, f"/agents/dossiers/{dossier_id}/valider"), "confirme": "1"})
            assert validated.status_code == 303, validated.text
            family_api = httpx.AsyncClient(base_url=ENROLMENT_API, headers=household.family.headers, timeout=30)
            async with family_api:
                async def enrolled() -> dict[str, Any] | None:
                    eligible = (await family_api.get("/enrolments/eligible")).json()
                    if not eligible["unlocked"]:
                        return None
                    kid = eligible["children"][0]
                    created = await family_api.post("/enrolments", json={"child_id": kid["child_id"], "school_year": eligible["school_year"]})
                    assert created.status_code == 201, created.text
                    return dict(created.json())

                enrolment = await eventually(enrolled, "enrolment unlocked by DossierValidated")
            assert enrolment["status"] == "pending_agent" and enrolment["pending_reason"] == "address_unknown"

            listed = await web.get("/agents/inscriptions")
            assert listed.status_code == 200, listed.text
            assert "Effectifs par école et par niveau" in text(listed) and "École élémentaire Jean-Jaurès" in text(listed)
            eid = enrolment["id"]
            assert f'id="ecole-{eid}"' in listed.text
            form = _form_fields(listed.text, f"/agents/inscriptions/{eid}/decision")
            no_school = await web.post(f"/agents/inscriptions/{eid}/decision", data={**form, "decision": "confirm", "school_id": ""})
            assert no_school.status_code == 422 and f'href="#ecole-{eid}"' in no_school.text
            confirmed = await web.post(f"/agents/inscriptions/{eid}/decision",
                                       data={**form, "decision": "confirm", "school_id": "elem-jaures"})
            assert confirmed.status_code == 303, confirmed.text
            assert "L'inscription est confirmée" in text(await web.get(confirmed.headers["location"]))
    finally:
        await household.close()
        await household.family.close()


async def test_a_sector_map_file_with_errors_shows_them_per_line_and_the_current_map_can_be_applied_again() -> None:
    async with agent_browser() as web:
        page = await web.get("/agents/carte-scolaire")
        assert page.status_code == 200, page.text
        assert "Carte en vigueur" in text(page)
        token = HiddenFields(page.text).fields["csrf_token"]
        bad = "street;number_from;number_to;side;maternelle;elementaire\nrue des Lilas;1;99;odd;mat-inconnue;elem-jaures\n"
        checked = await web.post("/agents/carte-scolaire", data={"csrf_token": token},
                                 files={"fichier": ("carte.csv", bad.encode(), "text/csv")})
        assert checked.status_code == 422, checked.text
        assert "Rapport de vérification" in text(checked) and "Appliquer cette carte" not in text(checked)
        assert re.search(r"<td>2</td><td>école inconnue</td>", text(checked))

        # The map in force, exported again, is valid and applies (nothing changes for anyone).
        current = await _current_segments()
        rows = ["street;number_from;number_to;side;maternelle;elementaire"] + [
            f"{s['street']};{s['number_from']};{s['number_to']};{s['side']};{s['maternelle_id']};{s['elementaire_id']}" for s in current]
        good = await web.post("/agents/carte-scolaire", data={"csrf_token": token},
                              files={"fichier": ("carte-actuelle.csv", ("\n".join(rows) + "\n").encode(), "text/csv")})
        assert good.status_code == 200, good.text
        assert "Le fichier est valide" in text(good)
        applied = await web.post("/agents/carte-scolaire/appliquer", data=_form_fields(good.text, "/agents/carte-scolaire/appliquer"))
        assert applied.status_code == 303, applied.text
        shown = await web.get(applied.headers["location"])
        assert "La nouvelle carte scolaire est appliquée" in text(shown) and "carte-actuelle.csv" in text(shown)


async def test_a_family_account_gets_the_french_403_on_every_back_office_page() -> None:
    identity, email = person()
    async with identity:
        await registered_and_activated(identity, email)
    async with browser() as web:
        assert (await logged_in_page(web, email, GOOD_PASSWORD)).status_code == 303
        for path in ("/agents/dossiers", f"/agents/dossiers/{uuid.uuid4()}", "/agents/inscriptions", "/agents/carte-scolaire",
                     f"/agents/documents/{uuid.uuid4()}/apercu", "/agents/dossiers/suivant", "/agents/journal", "/agents/equipe",
                     "/agents/motifs-de-correction",
                     "/agents/exports/dossiers.csv", "/agents/exports/inscriptions.csv?ecole=elem-jaures"):
            refused = await web.get(path)
            assert refused.status_code == 403, path
            assert "Accès réservé aux agents" in text(refused)
        upload = await web.post("/agents/carte-scolaire", files={"fichier": ("carte.csv", pdf_bytes(), "text/csv")})
        assert upload.status_code == 403
        assert (await web.post("/agents/motifs-de-correction/ajouter", data={"text": "Motif"})).status_code == 403


# ---- helpers -------------------------------------------------------------------------------------

def _form_fields(page: str, action: str) -> dict[str, str]:
    """The named fields of the form posting to ``action``, as a browser would send them untouched."""
    start = page.index(f'action="{action}"')
    form = page[start:page.index("</form>", start)]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields.update({name: "" for name in re.findall(r'<textarea[^>]* name="([^"]+)"', form)})
    return {name: unescape(value) for name, value in fields.items()}


async def _current_segments() -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=ENROLMENT_API, headers={"Authorization": f"Bearer {_AGENT['token']}"}, timeout=30) as api:
        return list((await api.get("/sector-map")).json()["segments"])
