"""The file's short reference in the header of every family page, through the gateway: none
before the family declares, then household's MSL-<year>-<six digits> on each page."""

from __future__ import annotations

import re

from tests.integration.test_web_dossier import Family, declaration, family, saved  # noqa: F401

HEADER_REFERENCE = re.compile(r'Dossier n° <strong class="ref">(MSL-\d{4}-\d{6})</strong>')
FAMILY_PAGES = ("/mon-espace", "/entourage", "/pieces-justificatives", "/dossier")


def header_reference(page: str) -> str | None:
    found = HEADER_REFERENCE.search(page.split("</header>", 1)[0])
    return found.group(1) if found else None


async def test_each_family_page_shows_the_files_reference_once_the_file_exists(family: Family) -> None:  # noqa: F811
    before = await family.page("/entourage")
    assert before.status_code == 200 and header_reference(before.text) is None

    assert (await saved(family, declaration())).status_code == 303
    reference = (await family.household()).json()["reference"]
    assert re.fullmatch(r"MSL-\d{4}-\d{6}", reference)
    for path in FAMILY_PAGES:
        page = await family.page(path)
        assert page.status_code == 200, path
        assert header_reference(page.text) == reference, path
