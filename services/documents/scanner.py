"""Talks to clamd over TCP (the clamd protocol, so no client library is needed for a ping)."""

from __future__ import annotations

import asyncio


class ClamdScanner:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port

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
