"""Group commit: concurrent callers' single-document operations reach the database as one bulk call.

The notifier handles a batch's emails concurrently; each still claims and records its own
delivery (the exactly-once protocol is per document) and looks up its own recipient, but a round
trip to the database server costs far more than the operation itself, so the operations queued
while one bulk call is in flight go together in the next one (``insert_many``, ``bulk_write``,
one ``find`` with ``$in``). A caller waits no longer than it would for its own call: the first
of an idle batcher leaves at once (after one turn of the event loop, so callers woken by the
same event join it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# One outcome per item, in order: its result, or the exception its caller must see.
BulkWrite = Callable[[Sequence[Item]], Awaitable[Sequence["Result | Exception"]]]


class BulkBatcher(Generic[Item, Result]):
    def __init__(self, bulk_write: BulkWrite[Item, Result], *, max_batch: int = 200) -> None:
        self._bulk_write = bulk_write
        self._max_batch = max_batch
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="notifier-group-commit")
        return await future

    async def _flush_all(self) -> None:
        await asyncio.sleep(0)
        while self._queued:
            batch, self._queued = self._queued[: self._max_batch], self._queued[self._max_batch :]
            try:
                outcomes = await self._bulk_write([item for item, _ in batch])
            except Exception as exc:  # the whole call failed (e.g. database unreachable): every caller sees it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
