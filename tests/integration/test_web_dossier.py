"""A family's file through the gateway's pages only, as a browser without JavaScript sends it:
declare a household with two children, send the supporting documents (a real HEIC photo, a
JPEG, PDFs, the pre-filled sworn statement signed), submit, and see the status and timeline.
Checks with the family's own API token that a refused form saved nothing. Needs `make up` (and
the web service restarted after a change)."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from tests.integration.identity_client import GATEWAY, GOOD_PASSWORD, logged_in, person, registered_and_activated
from tests.integration.test_documents import eicar, image_bytes, pdf_bytes
from tests.integration.test_web_links import HiddenFields, browser

SLOT = re.compile(r'name="fichier:([^"]+)"')


class Family:
    """A browser logged in through the pages, and the same account's API token for checks."""

    def __init__(self, web: httpx.AsyncClient, token: str) -> None:
        self.web = web
        self.api = httpx.AsyncClient(base_url=f"{GATEWAY}/api", timeout=30, headers={"Authorization": f"Bearer {token}"})

    async def page(self, path: str) -> httpx.Response:
        response = await self.web.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        return response

    async def post(self, path: str, fields: dict[str, str], form_page: str) -> httpx.Response:
        hidden = HiddenFields((await self.page(form_page)).text).fields
        return await self.web.post(path, data={**hidden, **fields})

    async def upload(self, slot: str, kind: str, name: str, data: bytes, mime: str) -> httpx.Response:
        hidden = HiddenFields((await self.page("/pieces-justificatives")).text).fields
        return await self.web.post("/pieces-justificatives", data={"csrf_token": hidden["csrf_token"], "piece": slot, "type": kind},
                                   files={"fichier": (name, data, mime)}, timeout=60)

    async def upload_several(self, files: list[tuple[str, str, bytes, str]], sworn: set[str]) -> httpx.Response:
        """The proofs form with several files at once, as a browser without JavaScript sends it."""
        hidden = HiddenFields((await self.page("/pieces-justificatives")).text).fields
        fields = {"csrf_token": hidden["csrf_token"], **{f"attestation:{slot}": "oui" for slot in sworn}}
        return await self.web.post("/pieces-justificatives", data=fields, timeout=120, files=[
            (f"fichier:{slot}", (name, data, mime)) for slot, name, data, mime in files])

    async def household(self) -> httpx.Response:
        return await self.api.get("/household/dossier")


@pytest.fixture
async def family() -> AsyncIterator[Family]:
    identity, email = person()
    async with identity, browser() as web:
        await registered_and_activated(identity, email)
        token = (await logged_in(identity, email))["access_token"]
        login = await web.get("/connexion")
        logged = await web.post("/connexion", data={**HiddenFields(login.text).fields, "email": email, "password": GOOD_PASSWORD})
        assert logged.status_code == 303, logged.text
        found = Family(web, token)
        try:
            yield found
        finally:
            await found.api.aclose()


def declaration(**changes: str) -> dict[str, str]:
    fields = {
        "adresse-numero": "12 bis", "adresse-voie": "rue des Lilas", "adresse-code-postal": "45000", "adresse-commune": "Montclair-sur-Loire",
        "parent-1-prenom": "Camille", "parent-1-nom": "Martin", "parent-1-lien": "mère", "parent-1-telephone": "06 12 34 56 78",
        "parent-1-email": "", "parent-2-prenom": "Dominique", "parent-2-nom": "Martin", "parent-2-lien": "père",
        "parent-2-telephone": "", "parent-2-email": "dominique.martin@example.org",
        "enfants": "2", "enfant-1-prenom": "Léa", "enfant-1-nom": "Martin", "enfant-1-naissance": "2019-03-14",
        "enfant-2-prenom": "Noé", "enfant-2-nom": "Martin", "enfant-2-naissance": "21/09/2021",
        "action": "enregistrer",
    }
    return {**fields, **changes}


async def saved(family: Family, fields: dict[str, str], timeout_s: float = 20) -> httpx.Response:
    """Saves the declaration; household may not know the activation yet (its projection follows
    identity's event), which the page says with a 403: retried until it does."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await family.post("/entourage", fields, "/entourage")
        if response.status_code != 403 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.5)


async def ready_to_submit(family: Family, timeout_s: float = 60) -> dict[str, Any]:
    """Household learns of each document and its scan from the documents events."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = (await family.household()).json()
        if not body["submission_problems"] or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.5)


async def test_a_family_declares_two_children_sends_its_documents_submits_and_sees_the_status(family: Family) -> None:
    # Déclarer mon entourage: one more child block without JavaScript
    first = await family.page("/entourage")
    assert "<h1>Déclarer mon entourage</h1>" in first.text
    more = await family.post("/entourage", {**declaration(), "enfants": "1", "action": "ajouter-enfant"}, "/entourage")
    assert more.status_code == 303 and more.headers["location"] == "/entourage#enfant-2"  # post/redirect/get
    card = await family.page("/entourage")
    assert 'name="enfant-2-prenom"' in card.text and 'value="Léa"' in card.text  # what was typed is kept
    assert (await family.household()).status_code == 404  # creating a card saves nothing

    response = await saved(family, declaration())
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/pieces-justificatives"
    dossier = (await family.household()).json()
    assert [c["first_name"] for c in dossier["children"]] == ["Léa", "Noé"]
    assert dossier["children"][1]["birth_date"] == "2021-09-21"
    assert [g["relationship"] for g in dossier["guardians"]] == ["mère", "père"]

    # Submitting too early: household's list of what is missing, each with a link to fix it
    early = await family.post("/dossier/transmettre", {}, "/dossier")
    assert early.status_code == 303 and early.headers["location"] == "/dossier"  # post/redirect/get
    early = await family.web.get("/dossier")
    assert early.status_code == 422
    text = html.unescape(early.text)
    assert "Votre dossier ne peut pas encore être transmis" in text
    assert "Il manque la pièce d'identité de l'enfant Léa Martin" in text
    assert 'href="/pieces-justificatives#piece-domicile"' in early.text

    # One block per required proof: the address, two guardians, two children
    proofs = await family.page("/pieces-justificatives")
    slots = SLOT.findall(proofs.text)
    assert len(slots) == 5 and slots[0] == "domicile"
    guardians = [s for s in slots if s.startswith("representant-")]
    children = [s for s in slots if s.startswith("enfant-")]

    # A file that is neither a PDF nor a photo: a French refusal, nothing attached
    refused = await family.upload("domicile", "proof_of_address", "facture.txt", b"juste du texte", "text/plain")
    assert refused.status_code == 303 and refused.headers["location"] == "/pieces-justificatives"  # post/redirect/get
    refused = await family.web.get("/pieces-justificatives")
    assert refused.status_code == 415
    assert "ni un PDF ni une photo" in html.unescape(refused.text)
    assert (await family.household()).json()["address"]["proof_document_id"] is None

    # The sworn statement for the second child, pre-filled, relayed from the page's own origin
    sworn = await family.web.get(f"/pieces-justificatives/attestation?piece={children[1]}")
    assert sworn.status_code == 200 and sworn.headers["content-type"] == "application/pdf"
    assert sworn.content.startswith(b"%PDF")

    # Five files in one post (no JavaScript), the last one the signed sworn statement
    sent = [
        ("domicile", "facture-edf.pdf", pdf_bytes("Facture"), "application/pdf"),
        (guardians[0], "cni-camille.jpg", image_bytes("JPEG"), "image/jpeg"),
        (guardians[1], "passeport.pdf", pdf_bytes("Passeport"), "application/pdf"),
        (children[0], "IMG_0042.HEIC", image_bytes("HEIF"), "image/heic"),
        (children[1], "attestation-signee.pdf", sworn.content, "application/pdf"),
    ]
    response = await family.upload_several(sent, sworn={children[1]})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/pieces-justificatives"
    confirmation = html.unescape((await family.page("/pieces-justificatives")).text)
    assert confirmation.count("a été envoyé") == 5 and "Léa Martin » a été envoyé" in confirmation
    assert "le fichier IMG_0042.HEIC a été converti en JPEG (IMG_0042.jpg)" in confirmation
    assert "a été envoyé" not in html.unescape((await family.page("/pieces-justificatives")).text)  # said once

    dossier = await ready_to_submit(family)
    assert dossier["submission_problems"] == []
    heic_id = dossier["children"][0]["identity_document_id"]
    heic = (await family.api.get(f"/documents/documents/{heic_id}")).json()
    assert heic["content_type"] == "image/jpeg" and heic["name"] == "IMG_0042.jpg"  # converted by documents
    proofs = await family.page("/pieces-justificatives")
    assert proofs.text.count(">Reçu<") == 5 and "IMG_0042.jpg" in proofs.text
    assert "(attestation sur l'honneur)" in html.unescape(proofs.text)

    # Replacing a proof: the new document is attached and the old one deleted
    old_id = dossier["address"]["proof_document_id"]
    replaced = await family.upload("domicile", "sworn_statement", "attestation-domicile.pdf", pdf_bytes("Attestation"), "application/pdf")
    assert replaced.status_code == 303, replaced.text
    new_id = (await family.household()).json()["address"]["proof_document_id"]
    assert new_id != old_id
    assert (await family.api.get(f"/documents/documents/{old_id}")).status_code == 404  # deleted: no longer the family's
    await ready_to_submit(family)

    submitted = await family.post("/dossier/transmettre", {}, "/pieces-justificatives")
    assert submitted.status_code == 303, submitted.text
    assert submitted.headers["location"] == "/dossier"
    status = await family.page("/dossier")
    text = html.unescape(status.text)
    assert "<h1>Mon dossier</h1>" in status.text
    assert "Transmis au Service Scolaire et Périscolaire, en attente d'examen" in text
    assert "Votre dossier a été transmis" in text and "Dossier transmis" in text
    assert re.search(rf"\d{{1,2}} [a-zéû]+ {date.today().year} à \d{{1,2}} h \d\d", text)

    # Under review: the declaration is shown, not editable, and says why
    locked = await family.page("/entourage")
    assert "en cours d'examen" in html.unescape(locked.text) and "Enregistrer et continuer" not in locked.text
    refused_edit = await family.post("/entourage", declaration(**{"enfant-2-prenom": "Noa"}), "/entourage")
    assert refused_edit.status_code == 303 and refused_edit.headers["location"] == "/entourage"
    assert (await family.household()).json()["children"][1]["first_name"] == "Noé"


async def test_a_bad_declaration_is_a_french_422_next_to_its_fields_and_nothing_is_saved(family: Family) -> None:
    future = date(date.today().year + 1, 1, 15).isoformat()
    posted = await family.post("/entourage", declaration(**{
        "adresse-code-postal": "4500", "parent-1-lien": "", "enfant-2-naissance": future, "parent-2-email": "pas-une-adresse",
    }), "/entourage")
    assert posted.status_code == 303 and posted.headers["location"] == "/entourage"  # post/redirect/get
    response = await family.web.get("/entourage")
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Le formulaire contient 4 erreurs" in text
    for anchor in ("#adresse-code-postal", "#parent-1-lien", "#parent-2-email", "#enfant-2-naissance"):
        assert f'href="{anchor}"' in response.text
    assert "Le code postal doit comporter 5 chiffres" in text and "dans le futur" in text
    assert 'aria-invalid="true"' in response.text and 'value="Noé"' in response.text  # typed values kept
    assert (await family.household()).status_code == 404


async def test_a_too_large_or_infected_file_is_explained_in_french_and_never_counts_as_a_proof(family: Family) -> None:
    assert (await saved(family, declaration())).status_code == 303

    # Over documents' 10 MB for one file: documents' French reason next to its field
    too_large = await family.upload("domicile", "proof_of_address", "scan.pdf", pdf_bytes() + b"0" * (10 * 1024 * 1024), "application/pdf")
    assert too_large.status_code == 303
    too_large = await family.web.get("/pieces-justificatives")
    assert too_large.status_code == 413
    assert "trop volumineux (10 Mo maximum)" in html.unescape(too_large.text) and 'href="#fichier-domicile"' in too_large.text
    # A post over 40 MB (several files): the web service refuses it on its Content-Length
    over = await family.upload("domicile", "proof_of_address", "scan.pdf", b"0" * (40 * 1024 * 1024 + 100_000), "application/pdf")
    assert over.status_code == 413 and "40 Mo" in html.unescape(over.text) and "<h1>Fichiers trop volumineux</h1>" in over.text
    # Over the gateway's limit for this page (41 MB): its French page, before the web service
    huge = await family.upload("domicile", "proof_of_address", "scan.pdf", b"0" * (42 * 1024 * 1024), "application/pdf")
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("text/html")
    assert "<h1>Fichiers trop volumineux</h1>" in huge.text
    assert (await family.household()).json()["address"]["proof_document_id"] is None

    # A virus: stored, then found by the scan; the page says so with the reason, submission names it
    assert (await family.upload("domicile", "proof_of_address", "facture.pdf", b"%PDF-1.4\n" + eicar() + b"\n%%EOF\n",
                                "application/pdf")).status_code == 303
    deadline = time.monotonic() + 30
    while "fichier dangereux" not in (page := await family.page("/pieces-justificatives")).text and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    text = html.unescape(page.text)
    assert ">Refusé : fichier dangereux<" in text and "contient un virus" in text
    problems = (await ready_to_submit(family, timeout_s=0)).get("submission_problems")
    assert any("virus" in p or "vérification antivirus" in p for p in problems)
