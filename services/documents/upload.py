"""Receiving an upload: the multipart body is parsed as it streams in and the file part is written
to a temporary file while its bytes are counted and hashed, so a large file is never held whole in
memory and an oversized one is refused as soon as it passes the limit. HEIC/HEIF photos are
converted to JPEG (pillow-heif) in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from services.documents.domain import HEAD_BYTES

MAX_FIELD_BYTES = 1024
MAX_PARTS = 8


class UploadTooLarge(Exception):
    pass


class MalformedUpload(Exception):
    pass


class UnreadableImage(Exception):
    pass


@dataclass
class ReceivedFile:
    path: str
    size: int
    sha256: str
    head: bytes
    filename: str | None


@dataclass
class ReceivedForm:
    file: ReceivedFile | None
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file.path)


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    is_file: bool = False
    text: bytearray = field(default_factory=bytearray)


async def receive_form(
    content_type: str, body: AsyncIterator[bytes], *, file_field: str, max_bytes: int, tmp_dir: str | None
) -> ReceivedForm:
    """Parses a multipart/form-data body. The part named ``file_field`` goes to a temporary file
    (the caller deletes it, or calls ``discard``); other small fields are kept as text."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise MalformedUpload("not multipart/form-data")

    fd, path = tempfile.mkstemp(prefix="ecp-upload-", dir=tmp_dir)
    out = os.fdopen(fd, "wb")
    digest = hashlib.sha256()
    state = {"size": 0, "parts": 0, "error": None, "file_seen": False}
    head = bytearray()
    pending: list[bytes] = []  # file bytes parsed from the last chunk, written after it
    fields: dict[str, str] = {}
    filename: list[str | None] = [None]
    current = _Part()
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        nonlocal current
        state["parts"] += 1
        if state["parts"] > MAX_PARTS:
            state["error"] = MalformedUpload("too many parts")
        current = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current.headers[bytes(header_field).decode("latin-1").lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        disposition, options = parse_options_header(current.headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            state["error"] = MalformedUpload("part without a name")
            return
        current.name = options[b"name"].decode("utf-8", "replace")
        if current.name == file_field:
            if state["file_seen"]:
                state["error"] = MalformedUpload("two files")
                return
            state["file_seen"] = True
            current.is_file = True
            raw = options.get(b"filename")
            filename[0] = raw.decode("utf-8", "replace") if raw is not None else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["error"] is not None:
            return
        chunk = data[start:end]
        if current.is_file:
            state["size"] += len(chunk)
            if state["size"] > max_bytes:
                state["error"] = UploadTooLarge()
                return
            if len(head) < HEAD_BYTES:
                head.extend(chunk[: HEAD_BYTES - len(head)])
            digest.update(chunk)
            pending.append(chunk)
        else:
            current.text.extend(chunk)
            if len(current.text) > MAX_FIELD_BYTES:
                state["error"] = MalformedUpload("field too long")

    def on_part_end() -> None:
        if current.name is not None and not current.is_file and state["error"] is None:
            fields[current.name] = current.text.decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        try:
            async for chunk in body:
                parser.write(chunk)
                if state["error"] is not None:
                    raise state["error"]  # type: ignore[misc]
                if pending:
                    data = b"".join(pending)
                    pending.clear()
                    await asyncio.to_thread(out.write, data)
            parser.finalize()
        except (UploadTooLarge, MalformedUpload):
            raise
        except Exception as exc:  # the parser's own errors: a broken body
            raise MalformedUpload(str(exc)) from exc
        finally:
            out.close()
        if state["error"] is not None:
            raise state["error"]  # type: ignore[misc]
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    if not state["file_seen"]:
        os.unlink(path)
        return ReceivedForm(file=None, fields=fields)
    received = ReceivedFile(path=path, size=state["size"], sha256=digest.hexdigest(), head=bytes(head), filename=filename[0])
    return ReceivedForm(file=received, fields=fields)


def _convert_heic(source: str, target: str, max_pixels: int) -> None:
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise UnreadableImage("too many pixels")
            photo = ImageOps.exif_transpose(image).convert("RGB")
            photo.save(target, format="JPEG", quality=88, optimize=True)
    except UnreadableImage:
        raise
    except Exception as exc:  # corrupt file, bomb, unsupported codec
        raise UnreadableImage(repr(exc)) from exc


async def heic_to_jpeg(source: str, *, max_pixels: int, tmp_dir: str | None) -> ReceivedFile:
    """Converts a HEIC/HEIF photo to a JPEG temporary file; returns its size and hash."""
    fd, target = tempfile.mkstemp(prefix="ecp-jpeg-", suffix=".jpg", dir=tmp_dir)
    os.close(fd)
    try:
        await asyncio.to_thread(_convert_heic, source, target, max_pixels)
        return await asyncio.to_thread(_describe, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise


def _describe(path: str) -> ReceivedFile:
    digest = hashlib.sha256()
    size = 0
    head = b""
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            if not head:
                head = chunk[:HEAD_BYTES]
            size += len(chunk)
            digest.update(chunk)
    return ReceivedFile(path=path, size=size, sha256=digest.hexdigest(), head=head, filename=None)
