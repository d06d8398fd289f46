"""The certificat d'inscription PDF: a jinja2 HTML template rendered by WeasyPrint (in a separate process)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.kernel import telemetry

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


# HTML to PDF (WeasyPrint, in its worker process), waiting for the worker included.
RENDER_TIME = telemetry.histogram(
    "ecp_certificate_render_seconds", "Time to render one certificat d'inscription to PDF.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)


@dataclass(frozen=True)
class Certificate:
    town: str
    town_postcode: str
    signatory_name: str  # the mayor's delegate who signs (settings)
    signatory_title: str  # e.g. « L'adjointe au Maire chargée de l'éducation »
    child_first_name: str
    child_last_name: str
    child_birth_date: str  # French, e.g. "14 mars 2023"
    level_label: str
    school_name: str
    school_address: str
    school_year: str  # "2027-2028"
    reference: str
    issued_on: str  # French date
    derogation: bool = False
    verification_code: str = ""  # checked on the public page verification_url
    verification_url: str = ""


def render_html(certificate: Certificate) -> str:
    return _templates.get_template("certificate.html").render(c=certificate)


_font_config: Any = None


def _pdf(html: str) -> bytes:
    """Runs in the rendering process. Its fonts are looked up once and kept: a fresh font
    configuration per certificate doubled the render time."""
    global _font_config
    from weasyprint import HTML  # imported on first use: it loads the system's Pango
    from weasyprint.text.fonts import FontConfiguration

    if _font_config is None:
        _font_config = FontConfiguration()
    return HTML(string=html).write_pdf(font_config=_font_config)


_pool: ProcessPoolExecutor | None = None


def _leave_with(service_pid: int) -> None:
    """Runs in the rendering process: a service killed -9 closes nothing, and its renderer
    would wait for work forever; it leaves as soon as it has been orphaned."""

    def watch() -> None:
        while os.getppid() == service_pid:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="leave-with-service", daemon=True).start()


def _renderer() -> ProcessPoolExecutor:
    """One rendering process (spawned, so it shares nothing with the service's threads): a
    CPU-bound render (~1 s) then never holds the service's GIL and its event loop keeps serving."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_leave_with, initargs=(os.getpid(),)
        )
    return _pool


async def render_pdf(certificate: Certificate, *, in_process: bool = False) -> bytes:
    with telemetry.span("certificate render"), RENDER_TIME.time():
        html = render_html(certificate)
        if in_process:
            return await asyncio.to_thread(_pdf, html)
        try:
            return await asyncio.get_running_loop().run_in_executor(_renderer(), _pdf, html)
        except BrokenProcessPool:
            global _pool
            _pool = None  # the worker died: a new one next time
            raise


def shutdown() -> None:
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
