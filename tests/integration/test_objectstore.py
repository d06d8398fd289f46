"""The kernel's object store (services/kernel/objectstore.py, the only module that speaks S3)
against the real S3 server `make up` runs (SeaweedFS), in the services' bucket, under a prefix of
its own: every call the services make, with SSE-S3 as documents asks for it.

``ECP_S3_ENDPOINT`` points it elsewhere (a second server on another port, before switching)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from services.kernel.objectstore import ObjectStore
from services.kernel.settings import S3Settings


@pytest.fixture
async def store() -> AsyncIterator[ObjectStore]:
    settings = S3Settings()
    objects = ObjectStore(settings, public_endpoint=settings.endpoint, public_secure=settings.secure, sse=True)
    await objects.ready()
    yield objects


@pytest.fixture
def prefix() -> str:
    return f"tests/objectstore-{uuid.uuid4().hex[:10]}/"


async def test_an_object_put_with_sse_reads_back_whole_lists_and_is_gone_after_removal(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    body = os.urandom(300_000)  # more than one read chunk
    path = tmp_path / "piece.pdf"
    path.write_bytes(body)
    key = prefix + "piece.pdf"
    await store.put_file(key, str(path), len(body), "application/pdf", {"original-name": "Relevé d’identité.pdf"})
    try:
        assert await store.exists(key)
        assert b"".join([chunk async for chunk in store.chunks(key, 64 * 1024)]) == body
        listed = await store.list(prefix)
        assert [(o.key, o.size) for o in listed] == [(key, len(body))]
    finally:
        await store.remove(key)
    assert not await store.exists(key)
    assert await store.list(prefix) == []
    await store.remove(key)  # already gone: not an error


async def test_the_server_keeps_and_echoes_server_side_encryption(store: ObjectStore, prefix: str, tmp_path: Path) -> None:
    path = tmp_path / "certificate.pdf"
    path.write_bytes(b"%PDF-1.7 " + os.urandom(1000))
    key = prefix + "certificate.pdf"
    await store.put_file(key, str(path), path.stat().st_size, "application/pdf", {})
    try:
        stat = store._client.stat_object(store.bucket, key)  # the SDK's own answer, headers included
        assert stat.metadata.get("x-amz-server-side-encryption") == "AES256"
    finally:
        await store.remove(key)


async def test_a_presigned_link_downloads_the_object_with_the_asked_name_and_type_until_it_expires(
    store: ObjectStore, prefix: str, tmp_path: Path
) -> None:
    body = b"%PDF-1.7 certificat " + os.urandom(2000)
    path = tmp_path / "c.pdf"
    path.write_bytes(body)
    key = prefix + "c.pdf"
    await store.put_file(key, str(path), len(body), "application/pdf", {})
    try:
        url = await store.download_url(key, timedelta(minutes=5), 'attachment; filename="certificat.pdf"', "application/pdf")
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(url)
            tampered = await http.get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"))
        assert answer.status_code == 200 and answer.content == body
        assert answer.headers["content-disposition"] == 'attachment; filename="certificat.pdf"'
        assert answer.headers["content-type"] == "application/pdf"
        assert tampered.status_code == 403  # the signature covers the expiry
    finally:
        await store.remove(key)


async def test_a_missing_object_is_not_there_rather_than_an_outage(store: ObjectStore, prefix: str) -> None:
    assert not await store.exists(prefix + "never-written")
