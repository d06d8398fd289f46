"""The family journey with JavaScript disabled in the browser: every step must work with the
pages' plain HTML forms (uploads included), and every page still passes axe-core."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.agent_steps import agent_joins, make_room_at, open_family_file, validate
from tests.e2e.family_steps import SECTOR_SCHOOLS, Family, enrols_both_children, submits_a_complete_file
from tests.e2e.journey import Tabs


def test_a_family_without_javascript_goes_from_a_new_account_to_school_certificates(
    tabs: Tabs, artifacts: Path
) -> None:
    family = Family()
    parent = tabs.open("famille sans js", javascript=False)
    submits_a_complete_file(parent, family)

    agent = tabs.open("agent sans js", javascript=False)
    agent_joins(agent)
    open_family_file(agent, family)
    validate(agent)

    make_room_at(SECTOR_SCHOOLS)
    enrols_both_children(parent, family, artifacts)

    tabs.assert_every_page_accessible()
