"""The back-office's PDF viewer, the services faked: pdf.js served at /static/pdfjs/ from the
folder ECP_PDFJS_DIR names (as JavaScript, under the site's one CSP), the review page enhancing
its PDF iframe only when it is, and the iframe kept for browsers without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from services.web.main import CONTENT_SECURITY_POLICY, create_app
from services.web.tests.test_backoffice import (  # noqa: F401 (services: the fake services fixture)
    DOC_PDF, DOSSIER_ID, FakeServices, dossier_answers, logged_in, services,
)
from services.web.tests.test_links import shown

IFRAME = f'<iframe class="viewer" src="/agents/documents/{DOC_PDF}/apercu#view=FitH"'
MODULE = '<script type="module" src="/static/pdf-viewer.mjs"></script>'


def agent_client(services: FakeServices, monkeypatch: pytest.MonkeyPatch, pdfjs_dir: str) -> Iterator[TestClient]:
    monkeypatch.setenv("ECP_PDFJS_DIR", pdfjs_dir)
    app = create_app()
    with TestClient(app, follow_redirects=False) as client:
        app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(services.handler))
        logged_in(client, services)
        yield client


@pytest.fixture
def pdfjs(tmp_path: Path) -> Path:
    """A folder shaped like deploy/web-assets/fetch-pdfjs.sh's (its files' content does not matter here)."""
    (tmp_path / "pdf.min.mjs").write_text("export const version = 'x';\n")
    (tmp_path / "cmaps").mkdir()
    (tmp_path / "cmaps" / "Adobe-Japan1-UCS2.bcmap").write_bytes(b"\x00bcmap")
    return tmp_path


@pytest.fixture
def with_pdfjs(services: FakeServices, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
               pdfjs: Path) -> Iterator[TestClient]:
    yield from agent_client(services, monkeypatch, str(pdfjs))


@pytest.fixture(params=["", "missing"], ids=["not-set", "folder-without-pdfjs"])
def without_pdfjs(request: pytest.FixtureRequest, services: FakeServices, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                  tmp_path: Path) -> Iterator[TestClient]:
    yield from agent_client(services, monkeypatch, str(tmp_path) if request.param else "")


def test_pdfjs_is_served_from_our_origin_as_javascript_under_the_sites_csp(with_pdfjs: TestClient) -> None:
    library = with_pdfjs.get("/static/pdfjs/pdf.min.mjs")
    assert library.status_code == 200 and library.text.startswith("export")
    # A module script of another type is refused by the browser (and the gateway sends nosniff).
    assert library.headers["content-type"].startswith("text/javascript")
    assert library.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert with_pdfjs.get("/static/pdfjs/cmaps/Adobe-Japan1-UCS2.bcmap").content == b"\x00bcmap"
    assert with_pdfjs.get("/static/pdf-viewer.mjs").headers["content-type"].startswith("text/javascript")
    assert with_pdfjs.get("/static/site.css").status_code == 200  # the site's own files still come from /static
    assert with_pdfjs.get("/static/pdfjs/../main.py").status_code == 404


def test_the_review_page_enhances_its_pdf_and_keeps_the_iframe_for_browsers_without_javascript(
    with_pdfjs: TestClient, services: FakeServices  # noqa: F811
) -> None:
    dossier_answers(services)
    text = shown(with_pdfjs.get(f"/agents/dossiers/{DOSSIER_ID}"))
    assert MODULE in text
    viewer = text[text.index("<div class=\"pdf-viewer\""):]
    assert viewer.startswith(
        f'<div class="pdf-viewer" data-pdf-viewer data-document="/agents/documents/{DOC_PDF}/apercu"')
    assert 'data-pdfjs="/static/pdfjs/"' in viewer
    noscript = viewer[viewer.index("<noscript>"):viewer.index("</noscript>")]
    assert IFRAME in noscript and text.count(IFRAME) == 1
    assert "Ouvrir le PDF dans un nouvel onglet" in text


def test_a_photo_shown_loads_no_pdf_viewer(with_pdfjs: TestClient, services: FakeServices) -> None:  # noqa: F811
    dossier_answers(services)
    text = shown(with_pdfjs.get(f"/agents/dossiers/{DOSSIER_ID}", params={"piece": "1"}))
    assert MODULE not in text and "data-pdf-viewer" not in text and "<img class=\"viewer" in text


def test_without_pdfjs_the_pdf_shows_in_the_browsers_own_viewer_and_nothing_is_served(
    without_pdfjs: TestClient, services: FakeServices  # noqa: F811
) -> None:
    dossier_answers(services)
    text = shown(without_pdfjs.get(f"/agents/dossiers/{DOSSIER_ID}"))
    assert IFRAME in text and "<noscript>" not in text and MODULE not in text and "data-pdf-viewer" not in text
    assert without_pdfjs.get("/static/pdfjs/pdf.min.mjs").status_code == 404
