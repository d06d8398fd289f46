"""The file's short reference in the header of every family page, through the gateway: none
before the family declares, then household's MSL-<year>-<six digits> on each page, and in
« Mon compte »'s « Mes informations »."""

from __future__ import annotations

import re

from tests.integration.test_web_dossier import Family, declaration, family, saved  # noqa: F401

HEADER_REFERENCE = re.compile(r'Dossier n° <strong class="ref">(MSL-\d{4}-\d{6})</strong>')
FAMILY_PAGES = ("/mon-espace", "/entourage", "/pieces-justificatives", "/dossier", "/mon-compte")
# « Mon compte » also gives it in « Mes informations », to quote when calling the Service.
ACCOUNT_REFERENCE = re.compile(r'<dt>Référence de mon dossier</dt>\s*<dd><strong class="ref">(MSL-\d{4}-\d{6})</strong>')


def header_reference(page: str) -> str | None:
    found = HEADER_REFERENCE.search(page.split("</header>", 1)[0])
    return found.group(1) if found else None


async def test_each_family_page_shows_the_files_reference_once_the_file_exists(family: Family) -> None:  # noqa: F811
    before = await family.page("/entourage")
    assert before.status_code == 200 and header_reference(before.text) is None
    account = await family.page("/mon-compte")
    assert header_reference(account.text) is None and ACCOUNT_REFERENCE.search(account.text) is None
    assert "Pas encore de dossier" in account.text

    assert (await saved(family, declaration())).status_code == 303
    reference = (await family.household()).json()["reference"]
    assert re.fullmatch(r"MSL-\d{4}-\d{6}", reference)
    for path in FAMILY_PAGES:
        page = await family.page(path)
        assert page.status_code == 200, path
        assert header_reference(page.text) == reference, path
    found = ACCOUNT_REFERENCE.search((await family.page("/mon-compte")).text)
    assert found is not None and found.group(1) == reference
