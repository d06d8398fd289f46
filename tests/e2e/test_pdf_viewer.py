"""The back-office's PDF viewer (issue 14's one-screen review), in Chromium with axe-core: a real
file whose proof of address is a real two-page PDF; the agent reads « Page 1 sur 2 », goes to page
2 with the mouse and back with the keyboard, zooms in, out and fits the width; pdf.js runs from
our own origin (its worker too) under the site's unchanged CSP, and nothing is refused in the
console. Without JavaScript the same page shows the browser's own viewer (the iframe)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, Route, expect

from tests.e2e.agent_steps import FILE_HEADING, agent_joins, run_async
from tests.e2e.family_steps import GATEWAY, log_in
from tests.e2e.journey import Journey, Tabs
from tests.integration.identity_client import NEW_PASSWORD
from tests.integration.test_documents import new_family
from tests.integration.test_household import Household, clean_document, content

PAGE_TEXTS = ("Facture d'électricité – page 1", "Facture d'électricité – page 2")
# Collects the page's CSP refusals (the event fires in the page for what the page itself loads).
WATCH_CSP = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""
# The same, first thing in pdf.js's worker (prepended to the script on its way, headers unchanged).
WATCH_WORKER_CSP = """self.__csp = [];
self.addEventListener("securitypolicyviolation", (e) => self.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""
WASM_PROBE = ("() => WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))"
              ".then(() => 'permis', (e) => `refusé ${e}`)")


def two_page_pdf() -> bytes:
    """A bill of two pages, drawn by WeasyPrint as the services draw certificates (fonts embedded)."""
    from weasyprint import HTML  # the documents and enrolment services' PDF library

    body = "Consommation du mois. " * 40
    pages = "".join(f'<section style="page-break-after: always"><h1>{text}</h1><p>{body}</p></section>'
                    for text in PAGE_TEXTS)
    return bytes(HTML(string=f"<html lang='fr'><body>{pages}</body></html>").write_pdf())


def a_file_with_a_two_page_proof() -> str:
    """A submitted file (the proof of address being the two-page PDF, scanned clean): its id."""
    async def make() -> str:
        family = await new_family()
        household = Household(family)
        try:
            proof = await family.uploaded(two_page_pdf(), "facture-electricite.pdf", "proof_of_address")
            await family.wait_status(proof["id"], "clean")
            docs = {"proof_of_address": proof["id"]}
            docs.update({kind: await clean_document(family, kind) for kind in ("guardian_identity", "child_identity")})
            docs["guardian2_identity"] = await clean_document(family, "sworn_statement")
            dossier = await household.created()
            saved = await household.put({**content(docs), "version": dossier["version"]})
            assert saved.status_code == 200, saved.text
            return str((await household.submitted())["id"])
        finally:
            await household.close()
            await family.close()

    return run_async(make)


def watch_worker_csp(route: Route) -> None:
    served = route.fetch()
    assert served.status == 200 and "script-src 'self'" in served.headers["content-security-policy"]
    route.fulfill(response=served, body=WATCH_WORKER_CSP + served.text())


def painted_pixels(page: Page) -> int:
    """How many pixels of the viewer's canvas are not white: a page really drawn has its text."""
    return int(page.evaluate("""() => {
      const canvas = document.querySelector(".pdf-viewer canvas");
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200) painted++;
      }
      return painted;
    }"""))


def zoom_percent(page: Page) -> int:
    match = re.fullmatch(r"Zoom (\d+) %", page.locator(".pdf-viewer__zoom").inner_text())
    assert match, page.locator(".pdf-viewer__zoom").inner_text()
    return int(match.group(1))


def canvas_width(page: Page) -> float:
    return float(page.locator(".pdf-viewer canvas").bounding_box()["width"])  # type: ignore[index]


def open_proof(journey: Journey, dossier_id: str) -> Page:
    page = journey.page
    page.goto(f"{GATEWAY}/agents/dossiers/{dossier_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(FILE_HEADING)
    documents = page.get_by_role("navigation", name="Pièces du dossier")
    documents.get_by_role("link", name=re.compile("justificatif de domicile", re.I)).click()
    expect(page.get_by_role("heading", level=3, name=re.compile("justificatif de domicile", re.I))).to_be_visible()
    return page


def test_an_agent_reads_a_two_page_pdf_pages_and_zoom_with_pdfjs_from_our_origin_under_the_unchanged_csp(
    tabs: Tabs,
) -> None:
    dossier_id = a_file_with_a_two_page_proof()

    agent = tabs.open("agent")
    page = agent.page
    page.context.add_init_script(WATCH_CSP)
    page.route("**/static/pdfjs/pdf.worker.min.mjs", watch_worker_csp)
    console: list[ConsoleMessage] = []
    page.on("console", lambda message: console.append(message))
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    email = agent_joins(agent, name="Véra Visionneuse")
    agent.step("dossiers a instruire")

    open_proof(agent, dossier_id)
    viewer = page.locator(".pdf-viewer")
    position = viewer.locator("[aria-live]").first
    expect(position).to_have_text("Page 1 sur 2")
    expect(viewer).to_have_attribute("data-rendered", "1")
    expect(page.locator("iframe")).to_have_count(0)  # the browser's own viewer is not loaded as well
    assert painted_pixels(page) > 500
    drawn = viewer.get_by_role("img", name=re.compile("^Page 1 sur 2 : .*justificatif de domicile", re.I))
    expect(drawn).to_be_visible()
    # pdf.js and its worker come from our origin (worker-src falls back to script-src 'self').
    workers = [w.url for w in page.workers]
    assert f"{GATEWAY}/static/pdfjs/pdf.worker.min.mjs" in workers, workers
    previous = viewer.get_by_role("button", name="Page précédente", exact=True)
    following = viewer.get_by_role("button", name="Page suivante", exact=True)
    expect(previous).to_have_attribute("aria-disabled", "true")
    agent.step("visionneuse pdf page 1")

    first_page = page.evaluate("() => document.querySelector('.pdf-viewer canvas').toDataURL()")
    following.click()
    expect(position).to_have_text("Page 2 sur 2")
    expect(viewer).to_have_attribute("data-rendered", "2")
    expect(following).to_have_attribute("aria-disabled", "true")
    expect(previous).to_have_attribute("aria-disabled", "false")
    assert page.evaluate("() => document.querySelector('.pdf-viewer canvas').toDataURL()") != first_page
    following.click(force=True)  # unavailable on the last page (aria-disabled): nothing moves
    expect(position).to_have_text("Page 2 sur 2")
    agent.step("visionneuse pdf page 2")

    # Zoom: in, out twice, then back to the column's width.
    fitted, fitted_width = zoom_percent(page), canvas_width(page)
    viewer.get_by_role("button", name="Zoom avant").click()
    expect(viewer.locator(".pdf-viewer__zoom")).not_to_have_text(f"Zoom {fitted} %")
    assert zoom_percent(page) > fitted and canvas_width(page) > fitted_width
    agent.step("visionneuse pdf zoom avant")
    zoom_out = viewer.get_by_role("button", name="Zoom arrière")
    zoom_out.click()
    zoom_out.click()
    expect(viewer.locator(".pdf-viewer__zoom")).to_have_text(re.compile(r"Zoom \d+ %"))
    page.wait_for_function("() => document.querySelector('.pdf-viewer canvas').getBoundingClientRect().width > 0")
    assert zoom_percent(page) < fitted and canvas_width(page) < fitted_width
    viewer.get_by_role("button", name="Ajuster à la largeur").click()
    expect(viewer.locator(".pdf-viewer__zoom")).to_have_text(f"Zoom {fitted} %")
    assert abs(canvas_width(page) - fitted_width) <= 1
    agent.step("visionneuse pdf largeur")

    # The keyboard: « Page précédente » with Enter, the focus stays on it once it is unavailable.
    previous.focus()
    page.keyboard.press("Enter")
    expect(position).to_have_text("Page 1 sur 2")
    expect(previous).to_be_focused()
    page.keyboard.press("Tab")
    expect(following).to_be_focused()
    page.keyboard.press("Space")
    expect(position).to_have_text("Page 2 sur 2")
    expect(viewer).to_have_attribute("data-rendered", "2")
    agent.step("visionneuse pdf clavier")

    refused = [m.text for m in console if "Content Security Policy" in m.text or "Refused to" in m.text]
    assert refused == [], refused
    assert page.evaluate("() => window.__csp") == []
    assert errors == [], errors
    # The site has no favicon: Chromium's own request for it is the one 404 allowed.
    failed = [f"{m.text} {m.location.get('url')}" for m in console
              if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")]
    assert failed == [], failed
    # The worker's own refusals fire in the worker: none while it read and drew both pages, and
    # the listener does hear one (WebAssembly, which the CSP forbids and pdf.js was told not to use).
    worker = next(w for w in page.workers if w.url.endswith("/pdf.worker.min.mjs"))
    assert worker.evaluate("() => self.__csp") == []
    assert worker.evaluate(WASM_PROBE).startswith("refusé")
    heard: list[str] = []
    for _ in range(50):  # the event is queued after the refusal: a moment
        heard = worker.evaluate("() => self.__csp")
        if heard:
            break
        page.wait_for_timeout(100)
    assert heard and all(entry.startswith("script-src") for entry in heard), heard

    # A PDF pdf.js cannot read (the other proofs are a bare PDF header): the iframe comes back, said.
    page.get_by_role("navigation", name="Pièces du dossier").get_by_role("link", name=re.compile("Camille Martin")).click()
    expect(page.get_by_text("La visionneuse intégrée ne sait pas lire ce PDF")).to_be_visible()
    expect(viewer.locator("iframe.viewer")).to_have_attribute("src", re.compile(r"/apercu#view=FitH$"))
    agent.step("visionneuse pdf illisible")

    # Without JavaScript: the same page, the browser's own viewer in the iframe.
    plain = tabs.open("agent sans javascript", javascript=False)
    log_in(plain, email, NEW_PASSWORD, landing="/agents/dossiers")
    plain.step("dossiers a instruire")
    open_proof(plain, dossier_id)
    frame = plain.page.locator("iframe.viewer")
    expect(frame).to_have_attribute("src", re.compile(r"^/agents/documents/[^/]+/apercu#view=FitH$"))
    expect(plain.page.get_by_role("link", name=re.compile("^Ouvrir le PDF dans un nouvel onglet"))).to_be_visible()
    plain.step("apercu sans javascript")

    tabs.assert_every_page_accessible()
