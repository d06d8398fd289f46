"""A person's visit in the browser: every page is checked with axe-core and photographed.

`Journey.step(name)` is called after each action that lands on a page: it runs axe-core (WCAG 2.1
A and AA rules) on the page as it is now and saves a full-page screenshot named after the step.
Every document the tab loads is remembered until a step audits it, so a page that was never
checked fails the test (`assert_every_page_accessible`) instead of slipping through."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Route

WCAG_21_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# A family's pages are photographed at a small phone's width, a tablet's and a laptop's; axe runs
# at the widest and the narrowest (the layouts differ there most).
FAMILY_WIDTHS = (320, 768)
DESKTOP = {"width": 1280, "height": 900}
_RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html, summary: n.failureSummary})),
  }));
}"""


@dataclass(frozen=True)
class PageViolations:
    step: str
    url: str
    title: str
    violations: list[dict[str, Any]]

    def describe(self) -> str:
        lines = [f"— step {self.step!r}: {self.title!r} {self.url}"]
        for violation in self.violations:
            lines.append(f"    [{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
            for node in violation["nodes"][:5]:
                summary = " / ".join(line.strip() for line in (node["summary"] or "").splitlines()[1:3])
                lines.append(f"        {node['target']}  {node['html'][:160]}  → {summary}")
            if len(violation["nodes"]) > 5:
                lines.append(f"        … and {len(violation['nodes']) - 5} more elements")
        return "\n".join(lines)


@dataclass
class Journey:
    """One tab of one person (family or agent), with its screenshots under ``artifacts``."""

    page: Page
    artifacts: Path
    axe_source: str
    # With JavaScript disabled axe cannot run in the tab itself: the page's HTML is replayed in a
    # scripted twin tab at the same address (same stylesheet, same origin) and audited there.
    audit_twin: Page | None = None
    who: str = "famille"
    steps: list[str] = field(default_factory=list)
    findings: list[PageViolations] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # loaded, then left for another page unaudited
    counter: list[int] = field(default_factory=lambda: [0])  # shared by the tabs of one test

    def __post_init__(self) -> None:
        self.page.on("load", lambda page: self.unaudited.append(page.url))

    def step(self, name: str) -> Page:
        """Audits and photographs the page the tab shows now; returns the page for chaining."""
        self.page.wait_for_load_state("load")
        self.counter[0] += 1
        label = f"{self.counter[0]:02d}-{_slug(self.who + ' ' + name)}"
        violations = self._axe()
        if violations:
            self.findings.append(PageViolations(label, self.page.url, self.page.title(), violations))
        if self.who.startswith("famille"):
            self._other_widths(label)
        # Reloads of this page while waiting (for a virus scan, say) are this page; any other is not.
        here = urlsplit(self.page.url).path
        self.skipped.extend(url for url in self.unaudited if urlsplit(url).path != here)
        self.unaudited.clear()
        shot = self.artifacts / f"{label}.png"
        self.page.screenshot(path=shot, full_page=True)
        self.steps.append(label)
        print(f"[e2e] {time.strftime('%H:%M:%S')} {label}: {self.page.url} → {shot}")
        return self.page

    def _other_widths(self, label: str) -> None:
        """Screenshots at a phone's and a tablet's width (the 1280 px one follows), axe at 320 px."""
        for width in FAMILY_WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            if width == min(FAMILY_WIDTHS):
                overflow = self.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 0:  # WCAG 1.4.10 reflow: no horizontal scrolling at 320 px
                    self.findings.append(PageViolations(f"{label}-{width}", self.page.url, self.page.title(), [{
                        "id": "reflow", "impact": "serious", "help": f"The page is {overflow} px wider than {width} px",
                        "helpUrl": "https://www.w3.org/WAI/WCAG21/Understanding/reflow.html", "nodes": []}]))
                violations = self._axe()
                if violations:
                    self.findings.append(PageViolations(f"{label}-{width}", self.page.url, self.page.title(), violations))
            self.page.screenshot(path=self.artifacts / f"{label}-{width}.png", full_page=True)
        self.page.set_viewport_size(DESKTOP)

    def back_and_refresh(self, *, gone: str | None = None) -> None:
        """After a form: refresh, then Back and Forward. Each must be a plain GET of a page (a POST's
        answer would make the browser ask to send the form again, or show its error page), and
        ``gone`` (the notice the post left) is not shown again."""
        page = self.page
        here = page.url
        seen = len(self.unaudited)
        with page.expect_request(lambda r: r.is_navigation_request()) as refreshed:
            page.reload()
        assert refreshed.value.method == "GET", f"refreshing {here} sends a {refreshed.value.method}"
        if gone:
            assert page.get_by_text(gone).count() == 0, f"« {gone} » is shown again after a refresh of {here}"
        for move in (page.go_back, page.go_forward):
            with page.expect_request(lambda r: r.is_navigation_request()) as moved:
                move()
            assert moved.value.method == "GET", f"{move.__name__} from {here} sends a {moved.value.method}"
            assert page.url.startswith("http"), f"{move.__name__} from {here} shows the browser's {page.url}"
        assert page.url == here, f"Back then Forward should come back to {here}, not {page.url}"
        del self.unaudited[seen:]  # pages audited before, reloaded by the browser's history

    def reload_until(self, ready: Callable[[], bool], what: str, *, timeout_s: float = 40) -> None:
        """Reloads the page until ``ready()`` (what the services do after an event takes a moment)."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still not the case after {timeout_s:.0f} s on {self.page.url}")
            time.sleep(1)
            self.page.reload()

    def _axe(self) -> list[dict[str, Any]]:
        if self.audit_twin is None:
            return _run_axe(self.page, self.axe_source)
        html, title = self.page.content(), self.page.title()
        url = urldefrag(self.page.url).url  # a request never carries the #fragment

        def is_this_page(address: str) -> bool:
            return address == url

        def serve_snapshot(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

        self.audit_twin.route(is_this_page, serve_snapshot)
        try:
            self.audit_twin.goto(url)
            # Had the snapshot not been served, this would be whatever the server gives a tab
            # without the session (the login page): never audit that in its place.
            assert self.audit_twin.title() == title, f"the audit twin shows {self.audit_twin.title()!r}, not {title!r}"
            return _run_axe(self.audit_twin, self.axe_source)
        finally:
            self.audit_twin.unroute(is_this_page, serve_snapshot)


def _run_axe(page: Page, axe_source: str) -> list[dict[str, Any]]:
    # Injected through the DevTools protocol, not a <script> tag: the site's CSP (script-src 'self')
    # stays in force and untouched, and it is what the tests check the pages under.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    return list(page.evaluate(_RUN_AXE, WCAG_21_AA_TAGS))


class Tabs:
    """The tabs a test opens, one browser profile each (a family, an agent), numbered in one
    sequence of screenshots; closes them and writes the axe findings next to the screenshots."""

    def __init__(self, browser: Browser, artifacts: Path, axe_source: str) -> None:
        self.browser = browser
        self.artifacts = artifacts
        self.axe_source = axe_source
        self.journeys: list[Journey] = []
        self._contexts: list[BrowserContext] = []
        self._counter = [0]

    def open(self, who: str, *, javascript: bool = True) -> Journey:
        context = self._new_context(javascript)
        twin = None if javascript else self._new_context(True).new_page()
        journey = Journey(context.new_page(), self.artifacts, self.axe_source, audit_twin=twin, who=who,
                          counter=self._counter)
        self.journeys.append(journey)
        return journey

    def _new_context(self, javascript: bool) -> BrowserContext:
        """A fresh profile (no cookies), French, with short waits so a missing button fails fast."""
        context = self.browser.new_context(java_script_enabled=javascript, locale="fr-FR", accept_downloads=True,
                                           viewport=DESKTOP)
        context.set_default_timeout(20_000)
        self._contexts.append(context)
        return context

    def report(self) -> str:
        """Every violation of every audited page, and every page left unaudited, as readable text."""
        parts: list[str] = []
        for journey in self.journeys:
            parts.extend(finding.describe() for finding in journey.findings)
            if journey.skipped or journey.unaudited:
                parts.append(f"— pages loaded but never audited ({journey.who}): {journey.skipped + journey.unaudited}")
        return "\n".join(parts)

    def assert_every_page_accessible(self) -> None:
        audited = sum(len(journey.steps) for journey in self.journeys)
        report = self.report()
        assert not report, f"axe-core (WCAG 2.1 A/AA) on {audited} pages found:\n{report}"

    def close(self) -> Path:
        """Closes every profile; returns the JSON file of the findings."""
        for context in self._contexts:
            context.close()
        path = self.artifacts / "axe-violations.json"
        findings = [
            {"step": f.step, "url": f.url, "title": f.title, "violations": f.violations}
            for journey in self.journeys for f in journey.findings
        ]
        path.write_text(json.dumps(findings, ensure_ascii=False, indent=2))
        return path


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.strip().lower()).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60]
