// The back-office's PDF viewer (progressive enhancement of agent_dossier.html): pdf.js, served
// from our own origin (/static/pdfjs/, deploy/web-assets/fetch-pdfjs.sh), draws one page at a time
// on a canvas, with real buttons for the pages and the zoom and a live region that says the page.
// Without JavaScript the page shows the browser's own viewer (the <noscript> iframe); when pdf.js
// cannot load or read the file, this script puts that iframe back and says why.
//
// The site's CSP is unchanged (script-src 'self', no 'unsafe-eval', no 'wasm-unsafe-eval'): the
// worker is a same-origin module (worker-src falls back to script-src), pdf.js is told not to
// compile code from strings (isEvalSupported) nor to use WebAssembly (useWasm: JPEG 2000 is
// decoded by its plain JavaScript fallback), and sizes are set through the CSSOM, which
// style-src does not govern.

const ZOOM_STEPS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];

function button(text) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "button--secondary button--small";
  element.textContent = text;
  return element;
}

// aria-disabled rather than disabled: a disabled button drops the keyboard focus on the page's
// body when the last page is reached; this one keeps it, says it is unavailable, and does nothing.
function setAvailable(element, available) {
  element.setAttribute("aria-disabled", available ? "false" : "true");
}

function fallBack(container, frameHtml, message) {
  container.replaceChildren();
  const note = document.createElement("p");
  note.className = "notice";
  note.textContent = message;
  container.append(note);
  // The same iframe the server wrote for browsers without JavaScript (markup escaped by Jinja).
  const template = document.createElement("template");
  template.innerHTML = frameHtml;
  container.append(template.content);
}

async function start(container) {
  const source = container.dataset.document;
  const label = container.dataset.label || "document";
  const base = container.dataset.pdfjs;
  const noscript = container.querySelector("noscript");
  const frameHtml = noscript ? noscript.textContent : "";

  let pdfjs;
  try {
    pdfjs = await import(`${base}pdf.min.mjs`);
  } catch (error) {
    fallBack(container, frameHtml, "La visionneuse intégrée n'a pas pu démarrer : le PDF s'affiche dans l'aperçu du navigateur.");
    return;
  }
  pdfjs.GlobalWorkerOptions.workerSrc = `${base}pdf.worker.min.mjs`;

  let pdf;
  try {
    pdf = await pdfjs.getDocument({
      url: source,
      isEvalSupported: false,
      useWasm: false,
      wasmUrl: `${base}wasm/`,
      cMapUrl: `${base}cmaps/`,
      cMapPacked: true,
      standardFontDataUrl: `${base}standard_fonts/`,
      enableXfa: false,
    }).promise;
  } catch (error) {
    fallBack(container, frameHtml, "La visionneuse intégrée ne sait pas lire ce PDF : il s'affiche dans l'aperçu du navigateur, ou téléchargez-le.");
    return;
  }

  const toolbar = document.createElement("div");
  toolbar.className = "pdf-viewer__bar";
  const previous = button("Page précédente");
  const next = button("Page suivante");
  const position = document.createElement("p");
  position.className = "pdf-viewer__position";
  // Polite, whole sentence: « Page 2 sur 5 » is read after each move, without a role="status"
  // that would compete with the page's own status messages.
  position.setAttribute("aria-live", "polite");
  position.setAttribute("aria-atomic", "true");
  const zoomOut = button("Zoom arrière");
  const zoomIn = button("Zoom avant");
  const fit = button("Ajuster à la largeur");
  const zoomLevel = document.createElement("p");
  zoomLevel.className = "pdf-viewer__zoom";
  zoomLevel.setAttribute("aria-live", "polite");
  const pages = document.createElement("div");
  pages.className = "pdf-viewer__pages";
  pages.append(previous, position, next);
  const zoom = document.createElement("div");
  zoom.className = "pdf-viewer__pages";
  zoom.append(zoomOut, zoomLevel, zoomIn, fit);
  toolbar.append(pages, zoom);

  // The page may be wider than the column once zoomed: a scrolling box, focusable so the
  // keyboard scrolls it too (WCAG 2.1.1), named for screen readers.
  const frame = document.createElement("div");
  frame.className = "pdf-viewer__frame";
  frame.tabIndex = 0;
  frame.setAttribute("role", "group");
  frame.setAttribute("aria-label", `Page affichée : ${label}`);
  const canvas = document.createElement("canvas");
  canvas.className = "pdf-viewer__canvas";
  canvas.setAttribute("role", "img");
  frame.append(canvas);
  container.replaceChildren(toolbar, frame);

  const state = { page: 1, scale: 1, fitWidth: true, task: null };

  async function render() {
    const page = await pdf.getPage(state.page);
    const natural = page.getViewport({ scale: 1 });
    if (state.fitWidth) {
      state.scale = Math.max(0.25, (frame.clientWidth - 2) / natural.width);
    }
    const viewport = page.getViewport({ scale: state.scale });
    const ratio = window.devicePixelRatio || 1;
    if (state.task) { state.task.cancel(); }
    canvas.width = Math.floor(viewport.width * ratio);
    canvas.height = Math.floor(viewport.height * ratio);
    canvas.style.width = `${Math.floor(viewport.width)}px`;
    canvas.style.height = `${Math.floor(viewport.height)}px`;
    canvas.setAttribute("aria-label", `Page ${state.page} sur ${pdf.numPages} : ${label}`);
    position.textContent = `Page ${state.page} sur ${pdf.numPages}`;
    zoomLevel.textContent = `Zoom ${Math.round(state.scale * 100)} %`;
    setAvailable(previous, state.page > 1);
    setAvailable(next, state.page < pdf.numPages);
    setAvailable(zoomOut, state.scale > ZOOM_STEPS[0] + 0.001);
    setAvailable(zoomIn, state.scale < ZOOM_STEPS[ZOOM_STEPS.length - 1] - 0.001);
    const task = page.render({
      canvas, canvasContext: canvas.getContext("2d"), viewport,
      transform: ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0],
    });
    state.task = task;
    try {
      await task.promise;
      if (state.task === task) { container.dataset.rendered = String(state.page); }
    } catch (error) {
      if (error && error.name === "RenderingCancelledException") { return; }
      throw error;
    }
  }

  function act(control, change) {
    control.addEventListener("click", () => {
      if (control.getAttribute("aria-disabled") === "true") { return; }
      change();
      render();
    });
  }
  act(previous, () => { state.page -= 1; frame.scrollTop = 0; });
  act(next, () => { state.page += 1; frame.scrollTop = 0; });
  act(zoomIn, () => {
    state.fitWidth = false;
    state.scale = ZOOM_STEPS.find((step) => step > state.scale + 0.001) ?? state.scale;
  });
  act(zoomOut, () => {
    state.fitWidth = false;
    state.scale = [...ZOOM_STEPS].reverse().find((step) => step < state.scale - 0.001) ?? state.scale;
  });
  act(fit, () => { state.fitWidth = true; });

  let resizing = null;
  window.addEventListener("resize", () => {
    if (!state.fitWidth) { return; }
    clearTimeout(resizing);
    resizing = setTimeout(render, 150);
  });

  await render();
}

for (const container of document.querySelectorAll("[data-pdf-viewer]")) {
  start(container);
}
