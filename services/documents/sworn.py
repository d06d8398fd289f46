"""The sworn statement PDF: a jinja2 HTML template rendered by WeasyPrint (in a thread)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.documents.domain import SwornStatement

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


def render_html(statement: SwornStatement) -> str:
    return _templates.get_template("sworn_statement.html").render(statement=statement)


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported on first use: it loads the system's Pango

    return HTML(string=html).write_pdf()


async def render_pdf(statement: SwornStatement) -> bytes:
    return await asyncio.to_thread(_pdf, render_html(statement))
