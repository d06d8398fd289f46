"""What the family and the agents receive, read from Mailpit's HTTP API (the local mail catcher)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

MAILPIT_API = "http://127.0.0.1:8025/api/v1"


def wait_for_mail(to: str, subject: str, *, timeout_s: float = 30) -> dict[str, Any]:
    """The newest message to ``to`` whose subject contains ``subject`` (Text, HTML, headers...).

    Polls because mails leave through Kafka and the notifier: they arrive a moment after the page."""
    query = f'to:"{to}" subject:"{subject}"'
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=MAILPIT_API, timeout=10) as mailpit:
        while True:
            found = mailpit.get("/search", params={"query": query, "limit": 1})
            found.raise_for_status()
            messages = found.json()["messages"]
            if messages:
                message = mailpit.get(f"/message/{messages[0]['ID']}")
                message.raise_for_status()
                return dict(message.json())
            if time.monotonic() > deadline:
                subjects = _subjects_sent_to(mailpit, to)
                raise AssertionError(
                    f"no email to {to} with a subject containing {subject!r} within {timeout_s:.0f} s; "
                    f"that address received: {subjects or 'nothing'}"
                )
            time.sleep(0.5)


def _subjects_sent_to(mailpit: httpx.Client, to: str) -> list[str]:
    found = mailpit.get("/search", params={"query": f'to:"{to}"', "limit": 20})
    return [m["Subject"] for m in found.json().get("messages", [])] if found.is_success else []


def link_in(message: dict[str, Any], path: str) -> str:
    """The first absolute link of the message's text whose path starts with ``path``."""
    match = re.search(rf"https?://[^\s/]+{re.escape(path)}[^\s]*", message["Text"])
    assert match, f"no link to {path} in the email {message['Subject']!r}:\n{message['Text']}"
    return match.group(0)
