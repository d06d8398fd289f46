"""Issue 14's « done when », in Chromium with axe-core on every page: an agent goes through five
files in a row (found by a child's name, taken, each document checked, a correction asked with a
preset reason, the others validated after confirmation, « Dossier suivant » after each decision),
decides a dérogation and finds its name and the time in « Journal des décisions »; an admin
manages the team; a family gets the 403 page on every new back-office page.

The files and the dérogation are made through the services (tests/integration helpers): the
family side has its own browser journey (test_family_journey)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from tests.e2e.agent_steps import FILE_HEADING, agent_joins, ask_for_a_correction, check_documents, find_file, run_async, take, validate
from tests.e2e.family_steps import GATEWAY, log_in
from tests.e2e.journey import Journey, Tabs
from tests.integration.identity_client import GOOD_PASSWORD
from tests.integration.test_backoffice_services import submitted_file
from tests.integration.test_documents import new_family
from tests.integration.test_enrolment import agent as enrolment_agent
from tests.integration.test_enrolment import child, coming_year, dossier_event, ensure_free, family, publish, unlocked

FILES = 5
PRESET = "Justificatif de domicile de plus de 3 mois"
PRECISION = "la facture d'électricité date de janvier"
NEW_PAGES = ["/agents/dossiers/suivant", "/agents/journal", "/agents/equipe", "/agents/motifs-de-correction",
             "/agents/exports/dossiers.csv", "/agents/exports/inscriptions.csv?ecole=elem-jaures"]


@dataclass(frozen=True)
class File:
    dossier_id: str
    reference: str
    child: str
    family_api: dict[str, str]  # the family's bearer header, to read its file's status afterwards


def five_submitted_files() -> list[File]:
    async def make() -> list[File]:
        files = []
        for n in range(FILES):
            household, dossier = await submitted_file("Élouan", f"Pradier{uuid.uuid4().hex[:6]}")
            try:
                child_name = f"Élouan {dossier['children'][0]['last_name']}"
                files.append(File(dossier["id"], dossier["reference"], child_name, dict(household.family.headers)))
            finally:
                await household.close()
                await household.family.close()
        return files

    return run_async(make)


def a_pending_derogation() -> tuple[str, str]:
    """A family whose child's enrolment asks for another school than the sector one: (id, reference)."""
    async def make() -> tuple[str, str]:
        staff, f = await enrolment_agent(), await family()
        try:
            year = await coming_year(f)
            await ensure_free(staff, "prim-curie", "PS", year, 2)
            kid = child("Ambre", date(year - 3, 6, 6))
            await publish(dossier_event(f.account_id, [kid], number="12", street="rue des Lilas"))
            await unlocked(f)
            asked = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year, "derogation": {
                "requested_school_id": "prim-curie", "reason_category": "fratrie", "reason_text": "Son frère est à Marie-Curie."}})
            assert asked.status_code == 201, asked.text
            return asked.json()["id"], asked.json()["reference"]
        finally:
            await staff.aclose()
            await f.close()

    return run_async(make)


async def a_family_email() -> str:
    """A family account, activated, never used: its email (its password is GOOD_PASSWORD)."""
    someone = await new_family()
    await someone.close()
    return someone.email


def status_of(file: File) -> dict[str, object]:
    async def read() -> dict[str, object]:
        async with httpx.AsyncClient(base_url=f"{GATEWAY}/api/household", headers=file.family_api, timeout=30) as api:
            return dict((await api.get("/dossier")).json())

    return run_async(read)


def next_file(agent: Journey) -> None:
    """« Dossier suivant »: the oldest free file, opened but not decided (the queue is shared with
    other runs), or the queue saying nothing is left."""
    page = agent.page
    page.get_by_role("link", name="Dossier suivant").first.click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^(Dossier MSL-\d{4}-\d{6}|Dossiers à instruire)$"))  # older files have one too
    if FILE_HEADING.match(heading.inner_text()):
        expect(page.get_by_role("button", name="Je prends ce dossier")).to_be_visible()
    agent.step("dossier suivant")


def test_an_agent_goes_through_five_files_then_a_derogation_found_in_the_journal_and_every_page_passes_axe(
    tabs: Tabs, artifacts: Path
) -> None:
    files = five_submitted_files()
    derogation_id, derogation_reference = a_pending_derogation()

    agent = tabs.open("agent")
    name = f"Marie Dupont {uuid.uuid4().hex[:4]}"  # one of her own: the admin deactivates her below
    agent_joins(agent, name=name)
    page = agent.page
    for n, file in enumerate(files):
        find_file(agent, file.child, "Camille Martin")
        expect(page.get_by_text(file.reference).first).to_be_visible()
        take(agent)
        if n == 0:
            ask_for_a_correction(agent, "justificatif de domicile", PRECISION, preset=PRESET)
        else:
            check_documents(agent)
            validate(agent)
        next_file(agent)

    first = status_of(files[0])
    assert first["status"] == "corrections_requested"
    assert first["address"]["corrections"] == [f"{PRESET} : {PRECISION}"]  # type: ignore[index]
    assert all(status_of(f)["status"] == "validated" for f in files[1:])

    # The dérogation: found by its reason's filter, accepted, then in the journal with its author and time.
    page.goto(f"{GATEWAY}/agents/inscriptions?motif=derogation")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inscriptions scolaires")
    agent.step("inscriptions a decider")
    request = page.get_by_role("article").filter(has_text=derogation_reference)
    expect(request).to_contain_text("Son frère est à Marie-Curie.")
    expect(request).to_contain_text("rue des Lilas")
    request.get_by_role("button", name="Accepter la dérogation").click()
    expect(page.get_by_role("status").filter(has_text="La dérogation est acceptée")).to_be_visible()
    decided_at = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris"))
    agent.step("derogation acceptee")
    page.goto(f"{GATEWAY}/agents/journal?action=derogation_accepted")
    expect(page.get_by_role("heading", level=1)).to_have_text("Journal des décisions")
    row = page.get_by_role("row").filter(has_text=derogation_reference)
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("Dérogation acceptée")
    expect(row).to_contain_text(f"{decided_at:%d/%m/%Y} à {decided_at.hour} h")
    agent.step("journal des decisions")
    page.goto(f"{GATEWAY}/agents/equipe")
    expect(page.get_by_role("row").filter(has_text=name)).to_be_visible()
    agent.step("equipe")

    # An admin sees the team with its actions, deactivates an agent and reactivates her.
    admin = tabs.open("admin")
    agent_joins(admin, role="admin", name="Alice Admin")
    admin.step("dossiers a instruire (admin)")
    admin.page.goto(f"{GATEWAY}/agents/equipe")
    expect(admin.page.get_by_role("heading", level=2, name="Inviter un agent")).to_be_visible()
    admin.step("equipe admin")
    member = admin.page.get_by_role("row").filter(has_text=name)
    member.get_by_role("button", name=re.compile("^Désactiver")).click()
    expect(admin.page.get_by_role("status")).to_contain_text("Le compte est désactivé")
    admin.step("agent desactive")
    admin.page.get_by_role("row").filter(has_text=name).get_by_role("button", name=re.compile("^Réactiver")).click()
    expect(admin.page.get_by_role("status")).to_contain_text("Le compte est réactivé")
    admin.step("agent reactive")

    # A family: the 403 page on every new back-office page.
    parent = tabs.open("famille")
    log_in(parent, run_async(a_family_email), GOOD_PASSWORD)
    parent.step("mon espace")
    for path in [*NEW_PAGES, f"/agents/dossiers/{files[1].dossier_id}"]:
        response = parent.page.goto(f"{GATEWAY}{path}")
        assert response is not None and response.status == 403, (path, response.status if response else None)
        expect(parent.page.get_by_role("heading", level=1)).to_have_text("Accès réservé aux agents")
        parent.step(f"refuse {path}")

    tabs.assert_every_page_accessible()
