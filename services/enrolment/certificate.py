"""The certificat d'inscription PDF: a jinja2 HTML template rendered by WeasyPrint (in a thread)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


@dataclass(frozen=True)
class Certificate:
    town: str
    town_postcode: str
    mayor_name: str
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


def render_html(certificate: Certificate) -> str:
    return _templates.get_template("certificate.html").render(c=certificate)


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported on first use: it loads the system's Pango

    return HTML(string=html).write_pdf()


async def render_pdf(certificate: Certificate) -> bytes:
    return await asyncio.to_thread(_pdf, render_html(certificate))
