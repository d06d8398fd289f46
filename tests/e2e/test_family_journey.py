"""The whole family and agent journey of issue 8 in Chromium, with axe-core on every page.

Needs `make up` and `deploy/local/ecp test` (or its browser install); screenshots of each step
and the axe findings go to .local/artifacts/e2e/<test>/."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.agent_steps import (
    agent_joins,
    ask_for_a_correction,
    make_room_at,
    open_family_file,
    reopen_file,
    validate,
)
from tests.e2e.family_steps import (
    GATEWAY,
    SECTOR_SCHOOLS,
    Family,
    enrols_both_children,
    go_to,
    pdf_file,
    proof,
    send_proofs,
    submit_file,
    submits_a_complete_file,
    wait_for_virus_scans,
)
from tests.e2e.journey import Journey, Tabs
from tests.e2e.mailbox import wait_for_mail

CORRECTION = "La photo est floue : envoyez une copie lisible de l'acte de naissance."


def test_a_family_and_an_agent_go_from_a_new_account_to_two_school_certificates_and_every_page_passes_axe(
    tabs: Tabs, artifacts: Path
) -> None:
    family = Family()
    noe = family.children[1]
    parent = tabs.open("famille")
    submits_a_complete_file(parent, family)

    agent = tabs.open("agent")
    agent_joins(agent)
    file_address = open_family_file(agent, family)
    sees_the_documents(agent)
    ask_for_a_correction(agent, f"enfant {noe.first_name}", CORRECTION)

    wait_for_mail(family.email, "Votre dossier est à corriger")
    sees_the_correction_and_replaces_the_document(parent, f"Pièce d'identité de l'enfant {family.child_name(noe)}")
    submit_file(parent)

    reopen_file(agent, file_address)
    expect(agent.page.get_by_text("transmis à nouveau après corrections")).to_be_visible()
    validate(agent)

    make_room_at(SECTOR_SCHOOLS)
    enrols_both_children(parent, family, artifacts)

    tabs.assert_every_page_accessible()


def sees_the_documents(agent: Journey) -> None:
    """The four proofs are in the review, one at a time from its list; the phone photo was
    converted to JPEG, and the photos' previews really load from the object store (a broken image
    has no natural width)."""
    page = agent.page
    documents = page.get_by_role("navigation", name="Pièces du dossier").get_by_role("link")
    expect(documents).to_have_count(4)
    photos, names = 0, []
    for n in range(4):
        documents.nth(n).click()
        expect(page.get_by_role("navigation", name="Pièces du dossier").get_by_role("link").nth(n)).to_have_attribute("aria-current", "true")
        names += [link.inner_text() for link in page.get_by_role("link", name=re.compile(r"^Télécharger ")).all()]
        preview = page.get_by_role("img", name=re.compile("^Aperçu"))
        if preview.count():
            expect(preview).to_have_js_property("complete", True)
            assert preview.evaluate("image => image.naturalWidth") == 640, preview
            photos += 1
        agent.step(f"piece {n + 1}")
    assert photos == 2, photos  # the HEIC photo (now a JPEG) and the PNG
    assert any(name.startswith("Télécharger IMG_0042.jpg") for name in names), names


def sees_the_correction_and_replaces_the_document(parent: Journey, title: str) -> None:
    page = parent.page
    go_to(parent, "Mon espace")
    parent.step("mon espace a corriger")
    page.goto(f"{GATEWAY}/dossier")
    expect(page.get_by_role("region", name="État de mon dossier")).to_contain_text(CORRECTION)
    parent.step("mon dossier corrections")
    go_to(parent, "Mes pièces justificatives")
    expect(proof(page, title)).to_contain_text(CORRECTION)
    parent.step("pieces a corriger")
    send_proofs(parent, {title: pdf_file("acte-naissance-lisible.pdf")}, replacing=True)
    wait_for_virus_scans(parent)
