"""« Motifs de correction » in Chromium with axe-core on every page: an admin adds a preset
correction reason, edits it, moves it up with the keyboard and sees each change in the history
with her name; an agent then picks it when asking a family to correct a document, and the family
reads it; the admin removes it; a family gets the 403 page. The list is shared with every other
run: this test touches only a reason of its own."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.e2e.agent_steps import agent_joins, ask_for_a_correction, find_file, run_async, take
from tests.e2e.family_steps import GATEWAY, log_in
from tests.e2e.journey import Journey, Tabs
from tests.e2e.test_agent_backoffice import File, a_family_email, status_of
from tests.integration.identity_client import GOOD_PASSWORD, staff_token
from tests.integration.test_backoffice_services import submitted_file

PAGE = f"{GATEWAY}/agents/motifs-de-correction"
PRECISION = "on ne lit pas la date"


def a_submitted_file() -> File:
    async def make() -> File:
        household, dossier = await submitted_file("Maëlys", f"Quéré{uuid.uuid4().hex[:6]}")
        try:
            child = f"Maëlys {dossier['children'][0]['last_name']}"
            return File(dossier["id"], dossier["reference"], child, dict(household.family.headers))
        finally:
            await household.close()
            await household.family.close()

    return run_async(make)


def remove_reasons_starting(prefix: str) -> None:
    """Removes what a failed run of this test left in the shared list (an admin of its own)."""
    async def remove() -> None:
        headers = {"Authorization": f"Bearer {await staff_token('admin', 'Nettoyage Motifs')}"}
        async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/household", headers=headers, timeout=30) as api:
            for _ in range(5):
                current = (await api.get("/review/correction-reasons")).json()
                kept = [r for r in current["reasons"] if not r["text"].startswith(prefix)]
                if len(kept) == len(current["reasons"]):
                    return
                answer = await api.put("/review/correction-reasons", json={"version": current["version"], "reasons": kept})
                if answer.status_code != 409:
                    return

    run_async(remove)


def reason_item(journey: Journey, text: str):  # type: ignore[no-untyped-def]
    """The list item of the reason whose buttons name ``text``."""
    page = journey.page
    return page.get_by_role("listitem").filter(has=page.get_by_role("button", name=f"Supprimer le motif « {text} »"))


def position_of(journey: Journey, text: str) -> int:
    values = journey.page.locator("ol.reasons input[type=text]").evaluate_all("inputs => inputs.map(i => i.value)")
    return list(values).index(text)


def test_an_admin_edits_the_preset_reasons_an_agent_picks_the_new_one_and_every_page_passes_axe(tabs: Tabs, artifacts: Path) -> None:
    file = a_submitted_file()
    mine = f"Photo floue {uuid.uuid4().hex[:4]}"
    edited = f"{mine} ou coupée"
    name = f"Alice Admin {uuid.uuid4().hex[:4]}"

    try:
        admin = tabs.open("admin")
        agent_joins(admin, role="admin", name=name)
        admin.step("dossiers a instruire (admin)")
        page = admin.page
        page.get_by_role("navigation", name="Menu principal").get_by_role("link", name="Motifs de correction").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Motifs de correction")
        expect(page.get_by_role("textbox", name="Motif n° 1")).not_to_have_value("")
        admin.step("motifs de correction")

        # An empty reason: the error summary, focused, links to the field.
        page.get_by_role("button", name="Ajouter le motif").click()
        summary = page.get_by_role("alert")
        expect(summary).to_contain_text("Saisissez le motif à ajouter.")
        expect(summary).to_be_focused()
        admin.step("motif vide refuse")

        page.get_by_label("Nouveau motif").fill(mine)
        page.get_by_role("button", name="Ajouter le motif").click()
        expect(page.get_by_role("status")).to_contain_text("Le motif est ajouté")
        item = reason_item(admin, mine)
        expect(item).to_be_visible()
        admin.step("motif ajoute")
        admin.back_and_refresh(gone="Le motif est ajouté")

        item.get_by_role("textbox").fill(edited)
        item.get_by_role("button", name=f"Enregistrer le motif « {mine} »").click()
        expect(page.get_by_role("status")).to_contain_text("Le motif est modifié")
        admin.step("motif modifie")

        # Moved up with the keyboard alone: Tab to the button, Enter.
        before = position_of(admin, edited)
        assert before > 0
        reason_item(admin, edited).get_by_role("button", name=f"Enregistrer le motif « {edited} »").focus()
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name=f"Monter le motif « {edited} »")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("Le motif est déplacé")
        assert position_of(admin, edited) == before - 1
        admin.step("motif monte")

        history = page.get_by_role("table", name=re.compile("modifications"))
        for change in (f"Ajouté : « {mine} »", f"Modifié : « {mine} » devient « {edited} »", "Ordre de la liste modifié"):
            expect(history.get_by_role("row").filter(has_text=change).first).to_contain_text(name)

        # An agent picks it for a document of a real file; the family reads it.
        agent = tabs.open("agent")
        agent_joins(agent)
        find_file(agent, file.child, "Camille Martin")
        take(agent)
        ask_for_a_correction(agent, "justificatif de domicile", PRECISION, preset=edited)
        assert status_of(file)["address"]["corrections"] == [f"{edited} : {PRECISION}"]  # type: ignore[index]

        # The admin removes it: agents no longer see it, corrections already asked keep their text.
        page.goto(PAGE)
        admin.step("motifs avant suppression")
        reason_item(admin, edited).get_by_role("button", name=f"Supprimer le motif « {edited} »").click()
        expect(page.get_by_role("status")).to_contain_text("Le motif est supprimé")
        expect(reason_item(admin, edited)).to_have_count(0)
        expect(history.get_by_role("row").filter(has_text=f"Supprimé : « {edited} »").first).to_contain_text(name)
        admin.step("motif supprime")
        assert status_of(file)["address"]["corrections"] == [f"{edited} : {PRECISION}"]  # type: ignore[index]

        # An agent reads the list but has no form to change it.
        agent.page.goto(PAGE)
        expect(agent.page.get_by_text("Seul un administrateur peut modifier cette liste.")).to_be_visible()
        expect(agent.page.get_by_role("button", name="Ajouter le motif")).to_have_count(0)
        agent.step("motifs (agent)")

        parent = tabs.open("famille")
        log_in(parent, run_async(a_family_email), GOOD_PASSWORD)
        parent.step("mon espace")
        response = parent.page.goto(PAGE)
        assert response is not None and response.status == 403
        expect(parent.page.get_by_role("heading", level=1)).to_have_text("Accès réservé aux agents")
        parent.step("motifs refuses")

        tabs.assert_every_page_accessible()
    finally:
        remove_reasons_starting(mine)  # a run stopped halfway leaves nothing behind
