"""What the journey benchmark (bench/journey.py) and the fault run (bench/faults.py) share: an HTTP
client that behaves like a browser user (a few retries with backoff on an outage) and records
every attempt, the Mailpit reader, and generated PDFs.

Each simulated person gets its own loopback source address (127.x.y.z, all of 127/8 is local on
Linux), so the gateway's per-address rate limit on /api/identity/auth/ treats them as the distinct
people they are, as it would in production, instead of as one client sending everything.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

GATEWAY = "http://127.0.0.1:8080"
MAILPIT = "http://127.0.0.1:8025/api/v1"
PASSWORD = "tartine au miel de mai"
TOKEN_IN_LINK = re.compile(r"jeton=([A-Za-z0-9_.~%-]+)")

# What a user does when the page says « réessayez » or does not load: waits a bit longer each
# time, and gives up after about a minute (the sum of these delays).
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0)
RETRIED_STATUSES = frozenset({429, 502, 503, 504})

_addresses = itertools.count(1)


def next_source_address() -> str:
    """A fresh loopback address per simulated person (never 127.0.0.1 itself)."""
    n = next(_addresses)
    return f"127.{(n >> 16) % 250 + 1}.{(n >> 8) % 256}.{n % 256 or 1}"


@dataclass
class Attempt:
    route: str
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    seconds: float
    at: float  # wall clock (time.time()) when the answer came
    error: str = ""  # the transport error's name when there was no answer


@dataclass
class Recorder:
    """Every attempt of every call, for percentiles per route and the 5xx timeline."""

    attempts: list[Attempt] = field(default_factory=list)

    def add(self, route: str, status: int, seconds: float, error: str = "") -> None:
        self.attempts.append(Attempt(route, status, seconds, time.time(), error))

    def successful_latencies(self) -> dict[str, list[float]]:
        by_route: dict[str, list[float]] = defaultdict(list)
        for a in self.attempts:
            if 200 <= a.status < 300:
                by_route[a.route].append(a.seconds)
        return by_route

    def failures(self) -> list[Attempt]:
        """Answers a user would see as « the site is broken »: 5xx and no answer at all."""
        return [a for a in self.attempts if a.status == 0 or a.status >= 500]


class GaveUp(RuntimeError):
    """A call still failing after every retry: the journey is lost."""


class ApiClient:
    """One simulated person's browser, talking to the gateway's JSON API."""

    def __init__(self, recorder: Recorder, token: str | None = None, timeout_s: float = 60, traceparent: str | None = None) -> None:
        self.recorder = recorder
        # A W3C trace context sent with every call: the person's whole journey is one trace.
        self.traceparent = traceparent
        self.source_address = next_source_address()
        transport = httpx.AsyncHTTPTransport(local_address=self.source_address, retries=0)
        self.http = httpx.AsyncClient(base_url=GATEWAY, transport=transport, timeout=timeout_s)
        self.token = token
        self.retried = 0  # calls that needed at least one retry

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        return headers

    async def call(self, method: str, path: str, route: str | None = None, **kwargs: Any) -> httpx.Response:
        """Sends the request, retrying on no answer, 429 and 502-504 as a patient user would.

        Returns the first other answer (2xx or a 4xx the caller interprets); raises GaveUp when the
        outage outlasts the retries. ``route`` names the endpoint without ids, for the report."""
        route = route or f"{method} {path}"
        last = "?"
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            started = time.perf_counter()
            try:
                response = await self.http.request(method, path, headers=self.headers(), **kwargs)
            except httpx.TransportError as exc:
                self.recorder.add(route, 0, time.perf_counter() - started, type(exc).__name__)
                last = f"{type(exc).__name__}: {exc}"
            else:
                self.recorder.add(route, response.status_code, time.perf_counter() - started)
                if response.status_code not in RETRIED_STATUSES:
                    if attempt:
                        self.retried += 1
                    return response
                last = f"HTTP {response.status_code} {response.text[:200]}"
                retry_after = response.headers.get("Retry-After", "")
                if delay is not None and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
            if delay is None:
                break
            await asyncio.sleep(delay)
        raise GaveUp(f"{route}: still failing after {len(RETRY_DELAYS_S)} retries ({last})")

    async def close(self) -> None:
        await self.http.aclose()


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise AssertionError(f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else {}


class Mailpit:
    """Reads the mail catcher's HTTP API (what the families would find in their inbox)."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=MAILPIT, timeout=30)

    async def messages_to(self, address: str) -> list[dict[str, Any]]:
        """Every message sent to ``address`` (summary: ID, Subject, Created), oldest first."""
        found: list[dict[str, Any]] = []
        start = 0
        while True:
            try:
                response = await self.http.get("/search", params={"query": f'to:"{address}"', "start": start, "limit": 200})
                response.raise_for_status()
            except httpx.HTTPError:
                await asyncio.sleep(0.5)  # Mailpit is never killed, but may be slow under load
                continue
            body = response.json()
            found.extend(body["messages"])
            start += len(body["messages"])
            if not body["messages"] or start >= body["messages_count"]:
                return sorted(found, key=lambda m: m["Created"])

    async def link_token(self, address: str, subject: str, timeout_s: float) -> tuple[str, float]:
        """The token of the newest link in a message of that subject, and when Mailpit got it."""
        deadline = time.monotonic() + timeout_s
        while True:
            matching = [m for m in await self.messages_to(address) if m["Subject"] == subject]
            if matching:
                newest = matching[-1]
                full = (await self.http.get(f"/message/{quote(newest['ID'])}")).json()
                token = TOKEN_IN_LINK.search(full["Text"])
                if token:
                    return token.group(1), mailpit_time(newest["Created"])
            if time.monotonic() > deadline:
                raise GaveUp(f"no « {subject} » email to {address} within {timeout_s:.0f} s")
            await asyncio.sleep(0.25)

    async def close(self) -> None:
        await self.http.aclose()


def mailpit_time(created: str) -> float:
    """Mailpit's ISO "Created" (UTC, millisecond precision) as a Unix time."""
    from datetime import datetime

    return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()


def pdf_document(label: str, size: int = 200_000) -> bytes:
    """A PDF of about ``size`` bytes: a one-page document whose content stream carries incompressible
    filler, so the upload, the S3 put and the clamd scan handle realistic volumes."""
    filler = os.urandom(size).hex()[: size - 600].encode()
    text = f"BT /F1 12 Tf 72 720 Td (Justificatif {label} {uuid.uuid4().hex[:8]}) Tj ET\n".encode()
    stream = text + b"% " + filler + b"\n"
    parts = [
        b"%PDF-1.4\n",
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n",
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n",
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >> endobj\n",
        b"4 0 obj << /Length " + str(len(stream)).encode() + b" >> stream\n" + stream + b"endstream endobj\n",
        b"trailer << /Root 1 0 R >>\n%%EOF\n",
    ]
    return b"".join(parts)
