"""Renders every email with sample data to files, for review by people who write French.

    python -m services.notifier.render_samples OUTDIR

writes ``OUTDIR/<template>.txt``, ``<template>.html`` and ``<template>.eml`` (the whole MIME
message, openable in a mail client) for each entry of the registry.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.notifier import domain
from services.notifier.render import Renderer, build_message
from services.notifier.settings import NotifierSettings

SAMPLE_TIME = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)


def sample_data(mail: domain.MailSpec) -> dict[str, Any]:
    """Data as the event would carry it; a name with an apostrophe and accents, to see escaping."""
    data: dict[str, Any] = {
        "account_id": "0b7f3c1e-5d0a-4a8e-9a52-3f1c2d4e5a6b",
        "email": "marie.dupont@example.org",
        "display_name": "Marie-Hélène D'Arcy",
        "registered_at": SAMPLE_TIME,
        "activated_at": SAMPLE_TIME,
        "attempted_at": SAMPLE_TIME,
        "changed_at": SAMPLE_TIME,
        "via": "reset",
    }
    if mail.carries_link:
        ttl = timedelta(hours=48) if mail.template == "activation" else timedelta(hours=1)
        if mail.template == "staff_invitation":
            ttl = timedelta(hours=72)
        data["link"] = "http://127.0.0.1:8080/activation?jeton=EXEMPLE_de_jeton&x=1"
        data["expires_at"] = SAMPLE_TIME + ttl
        data["purpose"] = "staff_invitation" if mail.template == "staff_invitation" else "reset"
    return data


def render_all(outdir: Path, settings: NotifierSettings | None = None) -> list[Path]:
    settings = settings or NotifierSettings()
    renderer = Renderer(settings)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for mail in domain.MAILS:
        data = sample_data(mail)
        rendered = renderer.render(mail, data, SAMPLE_TIME)
        message = build_message(
            rendered, sender=settings.sender, recipient=data["email"], display_name=data["display_name"],
            event_id=f"sample-{mail.template}", date=SAMPLE_TIME,
        )
        for suffix, content in ((".txt", f"Objet : {rendered.subject}\n\n{rendered.text}"), (".html", rendered.html), (".eml", message.as_string())):
            path = outdir / f"{mail.template}{suffix}"
            path.write_text(content, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m services.notifier.render_samples OUTDIR", file=sys.stderr)
        return 2
    for path in render_all(Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
