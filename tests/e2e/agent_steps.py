"""What an agent of the Service Scolaire et Périscolaire does in the back-office pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
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
QUEUE_PAGES_AT_MOST = 20


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Runs an async helper of tests/integration from a Playwright (sync) test: in a thread of its
    own, because Playwright's sync API keeps an event loop of its own in this one."""
    async def run() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def agent_joins(journey: Journey) -> str:
    """A staff account made by the admin command; the agent follows the invitation email, chooses
    a password and logs in, landing on the queue of files. Returns the agent's email."""
    email, _ = run_async(lambda: invited_staff("agent", "Anne Agent"))
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


def open_family_file(journey: Journey, family: Family) -> str:
    """From the queue, filtered on files sent today, page by page to this family's file; returns
    the file's address."""
    page = journey.page
    page.goto(f"{GATEWAY}/agents/dossiers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossiers à instruire")
    journey.step("dossiers a instruire")
    # The queue's days are UTC days (household's submitted_from).
    page.get_by_label("Transmis à partir du").fill(datetime.now(UTC).date().isoformat())
    page.get_by_role("button", name="Afficher les dossiers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossiers à instruire")
    journey.step("dossiers transmis aujourd'hui")
    examine = page.get_by_role("link", name=re.compile(f"Examiner le dossier de .*{family.last_name}"))
    for _ in range(QUEUE_PAGES_AT_MOST):
        if examine.count():
            break
        page.get_by_role("link", name="Page suivante").click()
        journey.step("page suivante")
    examine.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Examen du dossier")
    journey.step("examen du dossier")
    return page.url


def reopen_file(journey: Journey, address: str) -> None:
    """The agent comes back to a file already opened (from the browser's history)."""
    journey.page.goto(address)
    expect(journey.page.get_by_role("heading", level=1)).to_have_text("Examen du dossier")
    journey.step("dossier rouvert")


def ask_for_a_correction(journey: Journey, item: str, reason: str) -> None:
    """Writes ``reason`` against the correction item whose label matches ``item``."""
    page = journey.page
    page.get_by_label(re.compile(item)).fill(reason)
    page.get_by_role("button", name="Demander des corrections").click()
    expect(page.get_by_role("status")).to_be_visible()
    journey.step("corrections demandees")


def validate(journey: Journey) -> None:
    page = journey.page
    page.get_by_role("button", name="Valider le dossier").click()
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
