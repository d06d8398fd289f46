"""The axe-core audit of tests/e2e reports what it should, so a green journey means something.
Served from a route of the test itself (no portal needed, nothing leaves the browser)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Route

from tests.e2e.journey import Journey, Tabs

PAGE = "http://audit.example.test/page"
BROKEN_PAGE = """<!doctype html><html lang="fr"><head><title>Page fautive</title></head><body><main>
<h1>Page fautive</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<form><input type="text" name="nom"></form></main></body></html>"""


def serve(journey: Journey, html: str) -> None:
    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    journey.page.route("http://audit.example.test/**", fulfil)


@pytest.mark.parametrize("javascript", [True, False], ids=["with-javascript", "without-javascript"])
def test_an_image_without_alternative_and_an_unlabelled_field_are_reported_with_page_and_element(
    tabs: Tabs, javascript: bool
) -> None:
    visitor = tabs.open("visiteur", javascript=javascript)
    serve(visitor, BROKEN_PAGE)
    visitor.page.goto(f"{PAGE}#contenu")  # a fragment, as after a redirect to one child's block
    visitor.step("page fautive")

    with pytest.raises(AssertionError) as failure:
        tabs.assert_every_page_accessible()
    report = str(failure.value)
    assert "'Page fautive' http://audit.example.test/page#contenu" in report
    assert "image-alt: Images must have alternative text" in report and "<img src=" in report
    assert "label: Form elements must have labels" in report and '<input type="text" name="nom">' in report


def test_a_page_loaded_but_never_audited_fails_the_check(tabs: Tabs) -> None:
    visitor = tabs.open("visiteur")
    serve(visitor, BROKEN_PAGE)
    visitor.page.goto(PAGE)

    with pytest.raises(AssertionError, match="pages loaded but never audited.*audit.example.test/page"):
        tabs.assert_every_page_accessible()
