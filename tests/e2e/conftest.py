"""Browser tests: Debian's Chromium driven by Playwright against the running portal (`make up`).

`deploy/local/ecp test` installs Chromium and axe-core first (deploy/local/components/browser.sh).
Screenshots and the axe findings of each test go to .local/artifacts/e2e/<test>/."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.e2e.journey import Tabs

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("ECP_CHROMIUM", "/usr/bin/chromium"))
AXE_JS = Path(os.environ.get("ECP_AXE_JS", ROOT / ".local/axe/node_modules/axe-core/axe.min.js"))
ARTIFACTS = ROOT / ".local/artifacts/e2e"
INSTALL_HINT = "`deploy/local/ecp test tests/e2e` installs it (deploy/local/components/browser.sh)"
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# closed network refuses many times a second; --no-sandbox because the tests run as root.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--lang=fr-FR",  # the browser's own controls in French (chromium-l10n)
]

# Uploads go through the antivirus and the object store on a machine shared with other runs:
# seconds, not milliseconds. A missing element still fails, with the page's aria snapshot.
expect.set_options(timeout=20_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives a real browser through the running portal")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.is_file():
        pytest.fail(f"axe-core is not installed at {AXE_JS}: {INSTALL_HINT}")
    return AXE_JS.read_text()


# Per module, not per session: while Playwright's sync API runs, this thread has an event loop of
# Playwright's, and the async tests that come after (tests/integration) could not run theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: {INSTALL_HINT}")
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", 8080)) != 0:
            pytest.fail("the gateway is not listening on 127.0.0.1:8080: run `make up` (or `make test`)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """An empty folder for this test's screenshots (the previous run's are replaced)."""
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def tabs(browser: Browser, artifacts: Path, axe_source: str) -> Iterator[Tabs]:
    opened = Tabs(browser, artifacts, axe_source)
    try:
        yield opened
    finally:
        findings = opened.close()
        print(f"[e2e] screenshots in {artifacts}; axe findings in {findings}")
