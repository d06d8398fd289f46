"""Talks to clamd over TCP with its own protocol (no client library needed): PING, and INSTREAM
to scan a stream of chunks without writing it anywhere clamd could read."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

from services.documents.domain import clamd_signature


class ScanUnavailable(ConnectionError):
    """clamd could not be reached or could not scan: the document stays pending."""


class ScanIncomplete(ScanUnavailable):
    """clamd took the file but gave no verdict (an error answer, a dropped connection, no answer
    in time): retried a few times, then the document is quarantined, never taken as clean."""


@dataclass(frozen=True)
class Verdict:
    clean: bool
    signature: str | None = None


class ClamdScanner:
    def __init__(self, host: str, port: int, timeout_s: float = 60.0) -> None:
        self._host = host
        self._port = port
        self._timeout_s = timeout_s

    async def ping(self) -> None:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(b"zPING\0")
            await writer.drain()
            answer = await reader.read(64)
        finally:
            writer.close()
        if answer.rstrip(b"\0\n") != b"PONG":
            raise ConnectionError(f"unexpected clamd answer {answer!r}")

    async def scan(self, chunks: AsyncIterator[bytes]) -> Verdict:
        """Streams ``chunks`` to clamd (INSTREAM: 4-byte big-endian length, then the bytes; a zero
        length ends the stream). Raises ``ScanUnavailable`` when no verdict was obtained."""
        connected: list[bool] = []
        try:
            return await asyncio.wait_for(self._scan(chunks, connected), self._timeout_s)
        except ScanUnavailable:
            raise
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            if connected:
                raise ScanIncomplete(f"clamd gave no verdict: {exc!r}") from exc
            raise ScanUnavailable(f"clamd unavailable: {exc!r}") from exc

    async def _scan(self, chunks: AsyncIterator[bytes], connected: list[bool]) -> Verdict:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        connected.append(True)
        try:
            writer.write(b"zINSTREAM\0")
            async for chunk in chunks:
                if not chunk:
                    continue
                writer.write(struct.pack("!L", len(chunk)) + chunk)
                await writer.drain()
            writer.write(struct.pack("!L", 0))
            await writer.drain()
            answer = await reader.readuntil(b"\0")
        except ConnectionResetError as exc:
            # clamd closes the connection when the stream exceeds its StreamMaxLength.
            raise ScanIncomplete(f"clamd closed the stream: {exc!r}") from exc
        finally:
            writer.close()
        try:
            clean, signature = clamd_signature(answer.decode("utf-8", "replace"))
        except ValueError as exc:
            raise ScanIncomplete(str(exc)) from exc
        return Verdict(clean=clean, signature=signature)
