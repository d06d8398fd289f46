"""Upload benchmark (not a test): MB/s through the documents service versus raw minio puts.

Against a running `make up`. In one run, for 1 MB and 8 MB PDFs: uploads through the gateway
(streamed to disk, typed, hashed, stored with SSE, record + outbox) versus the minio SDK putting
the same bytes to the same S3 server; then the clamd scan time per MB with the service's scanner. Usage: python -m bench.uploads [--files 5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from services.documents.scanner import ClamdScanner
from services.kernel.objectstore import ObjectStore
from services.kernel.settings import S3Settings
from tests.integration.identity_client import logged_in, person, registered_and_activated

API = "http://127.0.0.1:8080/api/documents"
RESULTS = Path(__file__).parent / "results"


def pdf_of(size: int) -> bytes:
    head = b"%PDF-1.4\n% bench " + uuid.uuid4().hex.encode() + b"\n"
    return head + os.urandom(size - len(head) - 6) + b"\n%%EOF"


async def through_service(token: str, payloads: list[bytes]) -> tuple[float, list[str]]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=API, timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        start = time.perf_counter()
        for data in payloads:
            r = await http.post("/documents", files={"file": ("bench.pdf", data, "application/pdf")}, data={"kind": "other"})
            r.raise_for_status()
            ids.append(r.json()["id"])
        elapsed = time.perf_counter() - start
    return sum(map(len, payloads)) / elapsed / 1e6, ids


def raw_puts(payloads: list[bytes]) -> float:
    store = ObjectStore(S3Settings(), sse=True)
    client = store._client  # the same SDK client the service builds, without the service around it
    start = time.perf_counter()
    keys = []
    for data in payloads:
        key = f"bench/{uuid.uuid4()}"
        client.put_object(store.bucket, key, io.BytesIO(data), length=len(data), content_type="application/pdf", sse=store._sse)
        keys.append(key)
    elapsed = time.perf_counter() - start
    for key in keys:
        client.remove_object(store.bucket, key)
    return sum(map(len, payloads)) / elapsed / 1e6


async def scan_ms_per_mb(payloads: list[bytes]) -> float:
    """INSTREAM scans with the service's own clamd client, 64 KiB chunks as it streams from S3."""
    scanner = ClamdScanner("127.0.0.1", 3310)

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    start = time.perf_counter()
    for data in payloads:
        await scanner.scan(chunks(data))
    return (time.perf_counter() - start) * 1000 / (sum(map(len, payloads)) / 1e6)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5)
    args = parser.parse_args()
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
        token = (await logged_in(client, email))["access_token"]
    rows: dict[str, dict[str, Any]] = {}
    for label, size in (("1 MB", 1_000_000), ("8 MB", 8_000_000)):
        payloads = [pdf_of(size) for _ in range(args.files)]
        raw = await asyncio.to_thread(raw_puts, payloads)
        service, _ = await through_service(token, payloads)
        rows[label] = {"service_mb_s": service, "raw_mb_s": raw, "ratio": service / raw, "scan_ms_per_mb": await scan_ms_per_mb(payloads)}
    print(f"| file | through the service MB/s | raw minio put MB/s | ratio | scan ms/MB |  ({args.files} files each)")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows.items():
        print(f"| {label} | {r['service_mb_s']:.1f} | {r['raw_mb_s']:.1f} | {r['ratio']:.2f} | {r['scan_ms_per_mb']:.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "uploads.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
