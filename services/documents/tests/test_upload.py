"""The streaming multipart receiver, fed from memory (no server): counts, hashes, limits."""

import hashlib
import os

import pytest

from services.documents.upload import MalformedUpload, UploadTooLarge, receive_form

BOUNDARY = "----ecpboundary"


def _body(file_bytes: bytes, kind: str = "other", filename: str = "scan.pdf") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{kind}\r\n"
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
        "Content-Type: application/pdf\r\n\r\n"
    ).encode() + file_bytes + f"\r\n--{BOUNDARY}--\r\n".encode()


async def _chunks(data: bytes, size: int = 1000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _receive(body: bytes, max_bytes: int = 10_000, content_type: str = f"multipart/form-data; boundary={BOUNDARY}"):
    return await receive_form(content_type, _chunks(body), file_field="file", max_bytes=max_bytes, tmp_dir=None)


async def test_the_file_is_streamed_to_disk_counted_and_hashed() -> None:
    payload = b"%PDF-1.4\n" + os.urandom(5000)
    form = await _receive(_body(payload, kind="child_identity"))
    try:
        assert form.fields == {"kind": "child_identity"}
        assert form.file is not None
        assert form.file.size == len(payload)
        assert form.file.sha256 == hashlib.sha256(payload).hexdigest()
        assert form.file.head.startswith(b"%PDF-1.4")
        assert form.file.filename == "scan.pdf"
        with open(form.file.path, "rb") as f:
            assert f.read() == payload
    finally:
        form.discard()


async def test_a_file_over_the_limit_is_refused_and_its_temp_file_removed(tmp_path) -> None:
    with pytest.raises(UploadTooLarge):
        await receive_form(
            f"multipart/form-data; boundary={BOUNDARY}", _chunks(_body(b"x" * 20_000)),
            file_field="file", max_bytes=10_000, tmp_dir=str(tmp_path),
        )
    assert list(tmp_path.iterdir()) == []


async def test_a_form_without_a_file_says_so() -> None:
    body = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nother\r\n--{BOUNDARY}--\r\n".encode()
    form = await _receive(body)
    assert form.file is None and form.fields == {"kind": "other"}


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", "text/plain; boundary=x"])
async def test_a_body_that_is_not_multipart_is_malformed(content_type: str) -> None:
    with pytest.raises(MalformedUpload):
        await _receive(b"{}", content_type=content_type)


async def test_an_oversized_text_field_is_malformed() -> None:
    with pytest.raises(MalformedUpload):
        await _receive(_body(b"%PDF", kind="x" * 5000))
