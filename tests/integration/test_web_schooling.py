"""« Inscription scolaire » through the gateway's pages, against the real services: a family whose
file an agent validated (through the household and documents JSON APIs) sees both children with
their level and sector school, enrols them, asks for a dérogation, and downloads a real PDF
certificate. Needs `make up` (and the web service restarted after a change)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
from datetime import date
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
from cryptography.fernet import Fernet

from services.web.settings import LOCAL_SECRET_KEY
from tests.integration.identity_client import GOOD_PASSWORD, logged_in
from tests.integration.test_documents import agent_token, new_family
from tests.integration.test_enrolment import agent as enrolment_agent
from tests.integration.test_enrolment import ensure_free
from tests.integration.test_household import API as HOUSEHOLD_API
from tests.integration.test_household import Household, clean_document, content
from tests.integration.test_web_links import browser


class Forms(HTMLParser):
    """Each form of a page: its action, hidden fields, select options and submit button text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._button: dict[str, Any] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "hidden": {}, "options": {}, "button": ""})
        elif not self.forms:
            return
        elif tag == "input" and a.get("type") == "hidden":
            self.forms[-1]["hidden"][a["name"]] = a.get("value", "")
        elif tag == "option" and a.get("value"):
            self.forms[-1]["options"].setdefault(a.get("value"), True)
        elif tag == "button":
            self._button = self.forms[-1]

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["button"] += data

    def button(self, text: str) -> dict[str, Any]:
        return next(f for f in self.forms if f["button"].strip() == text)


async def validated_family_with_two_children() -> tuple[Any, date, date]:
    """A family whose file (address rue des Lilas, a CP child and a petite section child) an
    agent validated; returns (family, CP birth date, PS birth date)."""
    family = await new_family()
    async with await enrolment_agent() as staff:
        year = (await staff.get("/schools/elem-jaures/enrolments")).json()["school_year"]
        start = int(year[:4])
        await ensure_free(staff, "elem-jaures", "CP", start, 3)
        await ensure_free(staff, "mat-coquelicots", "PS", start, 3)
    cp_born, ps_born = date(start - 6, 5, 1), date(start - 3, 1, 1)
    kinds = ("proof_of_address", "guardian_identity", "child_identity")
    docs = {kind: await clean_document(family, kind) for kind in kinds}
    docs["guardian2_identity"] = await clean_document(family, "sworn_statement")
    second_child = await clean_document(family, "child_identity")
    household = Household(family)
    try:
        dossier = await household.created()
        body = content(docs, children=[
            {"first_name": "Léa", "last_name": "Martin", "birth_date": cp_born.isoformat(), "identity_document_id": docs["child_identity"]},
            {"first_name": "Noé", "last_name": "Martin", "birth_date": ps_born.isoformat(), "identity_document_id": second_child},
        ])
        saved = await household.put({**body, "version": dossier["version"]})
        assert saved.status_code == 200, saved.text
        submitted = await household.submitted()
        async with httpx.AsyncClient(base_url=HOUSEHOLD_API, timeout=30,
                                     headers={"Authorization": f"Bearer {await agent_token()}"}) as agent:
            validated = await agent.post(f"/review/dossiers/{submitted['id']}/validate")
            assert validated.status_code == 200, validated.text
    finally:
        await household.close()
    return family, cp_born, ps_born


def session_cookie(pair: dict[str, Any]) -> str:
    """The session cookie the login page would set for identity's token pair (local key).

    Every test's and engineer's page logins reach identity from the gateway's one address, whose
    login limit (50 per 15 minutes) they share; logging in at identity with the person's own
    address and handing the pair to the browser keeps these tests about their own pages (the
    login form is test_web_account's)."""
    key = base64.urlsafe_b64encode(hashlib.sha256(b"ecp-web-session:" + LOCAL_SECRET_KEY.encode()).digest())
    payload = {"a": pair["access_token"], "r": pair["refresh_token"], "e": time.time() + int(pair["expires_in"])}
    return Fernet(key).encrypt(json.dumps(payload).encode()).decode()


async def logged_in_browser(identity: httpx.AsyncClient, email: str, password: str = GOOD_PASSWORD) -> httpx.AsyncClient:
    web = browser()
    web.cookies.set("ecp_session", session_cookie(await logged_in(identity, email, password)))
    return web


async def unlocked_page(web: httpx.AsyncClient, timeout_s: float = 30) -> httpx.Response:
    """The enrolment page once the enrolment service has projected the validation."""
    deadline = time.monotonic() + timeout_s
    while True:
        page = await web.get("/inscription-scolaire")
        assert page.status_code == 200, page.text
        if 'class="card child"' in page.text:  # one card per child once enrolment is open
            return page
        assert "Mon espace" in page.text and 'href="/mon-espace"' in page.text  # the locked page says where to look
        assert time.monotonic() < deadline, "the DossierValidated event did not unlock enrolment in time"
        await asyncio.sleep(0.5)


async def test_a_validated_family_enrols_both_children_asks_a_derogation_and_downloads_the_certificate() -> None:
    family, cp_born, ps_born = await validated_family_with_two_children()
    try:
        async with await logged_in_browser(family.identity, family.email) as web:
            page = await unlocked_page(web)
            text = unescape(page.text)
            assert page.headers["cache-control"] == "no-store"
            assert "Léa Martin" in text and "Noé Martin" in text
            assert "CP" in text and "petite section" in text
            assert "École élémentaire Jean-Jaurès" in text  # Léa's sector school, 12 bis: the even side
            assert f"{cp_born.day if cp_born.day > 1 else '1er'} mai {cp_born.year}" in text

            for name in ("Léa", "Noé"):
                form = Forms(page.text).button(f"Inscrire {name}")
                summary = await web.get(form["action"], params=form["hidden"])  # a summary before confirming
                assert summary.status_code == 200 and "Récapitulatif" in summary.text, summary.text
                confirm = Forms(summary.text).button(f"Confirmer l'inscription de {name}")
                enrolled = await web.post(confirm["action"], data=confirm["hidden"])
                assert enrolled.status_code == 303, enrolled.text
                page = await web.get(enrolled.headers["location"])
                assert page.status_code == 200
                assert f"La demande d'inscription de {name} est enregistrée : inscription confirmée" in unescape(page.text)
                assert 'role="status"' in page.text
                assert "La demande d'inscription" not in unescape((await web.get("/inscription-scolaire")).text)  # once

            text = unescape(page.text)
            assert "Inscrire Léa" not in text and "Inscrire Noé" not in text
            links = re.findall(r'href="(/inscription-scolaire/[^"/]+/certificat)"', page.text)
            assert len(links) == 2
            assert "Télécharger le certificat d'inscription de Léa" in text

            pdf = await certificate(web, links[0])
            assert pdf.headers["content-type"] == "application/pdf"
            assert pdf.content.startswith(b"%PDF")
            disposition = pdf.headers["content-disposition"]
            assert disposition.startswith("attachment") and 'filename="certificat-inscription-INS-' in disposition

            # Léa's dérogation: another school teaching CP, with a reason; its state shows after.
            form = Forms(page.text).button("Demander une dérogation pour Léa")
            school = next(iter(form["options"]))
            empty = await web.post(form["action"], data={**form["hidden"], "requested_school_id": school,
                                                          "reason_category": "fratrie", "reason_text": ""})
            assert empty.status_code == 303 and empty.headers["location"] == "/inscription-scolaire"  # post/redirect/get
            empty = await web.get("/inscription-scolaire")
            assert empty.status_code == 422 and "Expliquez votre demande" in unescape(empty.text)
            asked = await web.post(form["action"], data={**form["hidden"], "requested_school_id": school,
                                                          "reason_category": "fratrie", "reason_text": "Son frère y est en CM1."})
            assert asked.status_code == 303, asked.text
            after = unescape((await web.get(asked.headers["location"])).text)
            assert "transmise au Service Scolaire et Périscolaire" in after
            assert "en cours d'examen" in after and "Son frère y est en CM1." in after
            assert "Demander une dérogation pour Léa" not in after  # one request at a time

            # Another family cannot download it.
            stranger = await new_family()
            try:
                async with await logged_in_browser(stranger.identity, stranger.email) as other:
                    refused = await other.get(links[0])
                    assert refused.status_code == 404 and "Inscription introuvable" in unescape(refused.text)
            finally:
                await stranger.close()
    finally:
        await family.close()


async def certificate(web: httpx.AsyncClient, link: str, timeout_s: float = 30) -> httpx.Response:
    """The PDF, retried while the page says it is still being prepared (409)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await web.get(link)
        if response.status_code != 409:
            assert response.status_code == 200, response.text
            return response
        assert "réessayez" in unescape(response.text).lower()
        assert time.monotonic() < deadline, "the certificate was not ready in time"
        await asyncio.sleep(1)


async def test_before_validation_the_page_explains_why_and_links_to_my_space() -> None:
    family = await new_family()
    try:
        async with await logged_in_browser(family.identity, family.email) as web:
            page = await web.get("/inscription-scolaire")
            assert page.status_code == 200
            text = unescape(page.text)
            assert "pas encore été validé" in text and 'href="/mon-espace"' in page.text
            assert "Inscrire" not in text
    finally:
        await family.close()
