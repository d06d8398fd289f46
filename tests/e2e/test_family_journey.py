"""The whole family and agent journey of issue 8 in Chromium, with axe-core on every page."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.family_steps import Family, activate_from_email, create_account, log_in, my_space
from tests.e2e.journey import Tabs


def test_a_family_creates_its_space_and_reaches_it_and_every_page_passes_axe(tabs: Tabs) -> None:
    family = Family()
    parent = tabs.open("famille")
    create_account(parent, family)
    activate_from_email(parent, family)
    log_in(parent, family.email, family.password)
    my_space(parent, family)
    expect(parent.page.get_by_text("Vous n'avez pas encore déclaré votre entourage.")).to_be_visible()
    expect(parent.page.get_by_role("link", name="Inscription scolaire")).to_have_count(0)

    tabs.assert_every_page_accessible()
