"""Waiting for what happens asynchronously (projections, consumers, emails), shared by the
integration tests and the benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 30,
                     every_s: float = 0.3) -> T:
    """Calls the async ``check`` until it returns something truthy, and returns that; raises
    AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(every_s)
