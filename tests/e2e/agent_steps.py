"""What an agent of the Service Scolaire et Périscolaire does in the back-office pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
from playwright.sync_api import expect

from tests.e2e.family_steps import GATEWAY, Family, log_in
from tests.e2e.journey import Journey
from tests.e2e.mailbox import link_in, wait_for_mail
from tests.integration.identity_client import NEW_PASSWORD, invited_staff, staff_token
from tests.integration.test_enrolment import API as ENROLMENT_API
from tests.integration.test_enrolment import ensure_free

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Runs an async helper of tests/integration from a Playwright (sync) test: in a thread of its
    own, because Playwright's sync API keeps an event loop of its own in this one."""
    async def run() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def agent_joins(journey: Journey, role: str = "agent", name: str = "Anne Agent") -> str:
    """A staff account made by the admin command; the agent follows the invitation email, chooses
    a password and logs in, landing on the queue of files. Returns the agent's email."""
    email, _ = run_async(lambda: invited_staff(role, name))
    invitation = wait_for_mail(email, "Choisissez votre mot de passe")
    page = journey.page
    page.goto(link_in(invitation, "/mot-de-passe/nouveau?jeton="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choisir un nouveau mot de passe")
    journey.step("invitation")
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmer le nouveau mot de passe").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Enregistrer mon nouveau mot de passe").click()
    # Post/redirect/get: the login page, with the news said once.
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    expect(page.get_by_role("status")).to_contain_text("Votre mot de passe est modifié")
    log_in(journey, email, NEW_PASSWORD, landing="/agents/dossiers")
    return email


FILE_HEADING = re.compile(r"^Dossier MSL-\d{4}-\d{6}$")


def open_family_file(journey: Journey, family: Family) -> str:
    """From the queue, the family's file found by its name (the search box); returns its address."""
    return find_file(journey, family.last_name, family.last_name)


def find_file(journey: Journey, query: str, family_name: str) -> str:
    """Searches the queue (a reference, a parent's or child's name, an email) and opens the file
    of ``family_name``; returns the file's address."""
    page = journey.page
    page.goto(f"{GATEWAY}/agents/dossiers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossiers à instruire")
    journey.step("dossiers a instruire")
    page.get_by_role("searchbox", name="Rechercher").fill(query)
    page.get_by_role("button", name="Afficher les dossiers").click()
    expect(page.get_by_role("status").filter(has_text="dossier")).to_contain_text("1 dossier")
    journey.step("recherche")
    page.get_by_role("link", name=re.compile(f"examiner le dossier de .*{family_name}")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(FILE_HEADING)
    journey.step("examen du dossier")
    return page.url


def reopen_file(journey: Journey, address: str) -> None:
    """The agent comes back to a file already opened (from the browser's history)."""
    journey.page.goto(address)
    expect(journey.page.get_by_role("heading", level=1)).to_have_text(FILE_HEADING)
    journey.step("dossier rouvert")


def take(journey: Journey) -> None:
    """« Je prends ce dossier »: the others then see who examines it."""
    page = journey.page
    page.get_by_role("button", name="Je prends ce dossier").click()
    expect(page.get_by_role("status")).to_contain_text("Vous examinez ce dossier")
    journey.step("dossier pris")


def check_documents(journey: Journey, wrong: str | None = None, preset: str = "", precision: str = "") -> None:
    """The checklist: every document left « Conforme » but the one whose title matches ``wrong``,
    given a preset reason and a precision."""
    page = journey.page
    checks = page.get_by_role("group").filter(has=page.get_by_label("Vérification"))
    assert checks.count() >= 1
    for check in checks.all():
        legend = check.locator("legend").inner_text()
        if wrong and re.search(wrong, legend):
            check.get_by_label("Vérification").select_option(label=f"À corriger : {preset}")
            check.get_by_label("Précision pour la famille (facultatif)").fill(precision)
        else:
            expect(check.get_by_label("Vérification")).to_have_value("")  # « Conforme »


def ask_for_a_correction(journey: Journey, document: str, reason: str, preset: str = "Document illisible") -> None:
    """Asks the family to correct the document whose title matches ``document``: a preset reason
    completed by ``reason``."""
    check_documents(journey, document, preset, reason)
    page = journey.page
    page.get_by_role("button", name="Demander les corrections").click()
    expect(page.get_by_role("status")).to_contain_text("Les corrections ont été demandées")
    journey.step("corrections demandees")


def validate(journey: Journey) -> None:
    """« Valider… », then the confirmation page saying what follows, then « Confirmer »."""
    page = journey.page
    page.get_by_role("button", name="Valider…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Valider le dossier")
    expect(page.get_by_text("reçoit un email")).to_be_visible()
    journey.step("confirmation de la validation")
    page.get_by_role("button", name="Confirmer la validation").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_text("Ce dossier n'est pas en attente d'examen")).to_be_visible()
    journey.step("dossier valide")


def make_room_at(schools: tuple[str, ...], seats: int = 2) -> None:
    """Raises the coming year's capacity where fewer than ``seats`` are free: every run enrols
    children in the same sample schools, and a full level would refuse this family."""
    async def top_up() -> None:
        # A staff member of its own: test_enrolment's cached agent token would outlive its
        # 10 minutes if this test made it first.
        headers = {"Authorization": f"Bearer {await staff_token('agent', 'Agnès Agent')}"}
        async with httpx.AsyncClient(base_url=ENROLMENT_API, headers=headers, timeout=30) as staff:
            for school in schools:
                overview = await staff.get(f"/schools/{school}/enrolments")
                assert overview.status_code == 200, overview.text
                year = int(str(overview.json()["school_year"])[:4])
                for level in overview.json()["levels"]:
                    await ensure_free(staff, school, level["level"], year, seats)

    run_async(top_up)
