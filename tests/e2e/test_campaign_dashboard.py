"""Issue 13's « Tableau de bord de la campagne » in Chromium, axe-core on every page: an agent
opens it from the menu, reads each chart's figures in the table beside it, with and without
JavaScript; a family gets the 403."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.agent_steps import agent_joins, run_async
from tests.e2e.family_steps import GATEWAY, log_in
from tests.e2e.journey import Tabs
from tests.integration.identity_client import GOOD_PASSWORD
from tests.integration.test_documents import new_family

CHARTS = ("Dossiers par état", "Parcours des familles")


@pytest.mark.parametrize("javascript", [True, False], ids=["with-javascript", "without-javascript"])
def test_an_agent_reads_the_campaign_dashboard_charts_and_their_tables(tabs: Tabs, javascript: bool) -> None:
    agent = tabs.open("agent", javascript=javascript)
    agent_joins(agent, name="Inès Tableau")
    agent.step("dossiers a instruire")
    page = agent.page
    page.get_by_role("navigation", name="Menu principal").get_by_role("link", name="Tableau de bord").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tableau de bord de la campagne")
    agent.step("tableau de bord")
    for title in CHARTS:
        expect(page.get_by_role("img", name=re.compile(title))).to_be_visible()
    statuses = page.get_by_role("table", name="Dossiers par état")
    expect(statuses.get_by_role("rowheader", name="Validés")).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Familles par étape"))).to_be_visible()
    tabs.assert_every_page_accessible()


def test_a_family_gets_the_403_page_on_the_dashboard(tabs: Tabs) -> None:
    family = run_async(new_family)
    parent = tabs.open("famille")
    log_in(parent, family.email, GOOD_PASSWORD)
    parent.step("mon espace")
    response = parent.page.goto(f"{GATEWAY}/agents/tableau-de-bord")
    assert response is not None and response.status == 403
    expect(parent.page.get_by_role("heading", level=1)).to_have_text("Accès réservé aux agents")
    parent.step("refuse le tableau de bord")
    tabs.assert_every_page_accessible()
