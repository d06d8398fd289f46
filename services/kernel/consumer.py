"""Idempotent event consumer: at-least-once delivery in, exactly-once effects out.

For each message: parse the CloudEvent, skip it if this consumer group already handled its id,
run the handler (retrying transient failures with backoff for as long as they last, other
failures a few times), record the id, and commit offsets after the batch. A message that cannot
be handled goes to ``<topic>.dlq`` unchanged, with headers naming the group and the error, and
the partition keeps flowing.

With ``concurrency`` above 1, a batch's events are split into lanes by message key (the
aggregate or account id) and up to that many lanes run at once: one key's events keep their
order, handlers that mostly wait (a database, an SMTP server) overlap.

Handlers make their own effect idempotent by event id (``outbox.applied_once``, or an insert
whose key derives from the event id): a consumer killed after the effect but before the commit
sees the event again and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from services.kernel import telemetry
from services.kernel.envelope import CloudEvent, EventData, UnknownEventType, parse_event
from services.kernel.kafka import DLQ_SUFFIX, IncomingMessage, OutgoingMessage
from services.kernel.logging import get_logger, log_context

log = get_logger(__name__)

Handler = Callable[[CloudEvent[Any]], Awaitable[None]]
# One lane: a key's messages in offset order, each with its event or the reason it is malformed.
Lane = list[tuple[IncomingMessage, "CloudEvent[Any] | str"]]
T = TypeVar("T")


class TransientError(Exception):
    """Raised by a handler when retrying later may succeed (a dependency is down)."""


class Subscription(Protocol):
    async def fetch(self, timeout_ms: int = ...) -> list[IncomingMessage]: ...
    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None: ...


class Publisher(Protocol):
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None: ...


class ProcessedEvents(Protocol):
    """Remembers which event ids a consumer group has fully handled."""

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]: ...
    async def remember(self, group: str, event_ids: Sequence[str]) -> None: ...


class NoProcessedIds:
    """The bookkeeping of a group whose every handler is idempotent by construction (a unique
    key per effect, a ``$set`` of the event's values): no look-up and no record of processed ids,
    two database commands a batch saved. A redelivered event runs its handler again, to no effect."""

    async def seen(self, group: str, event_ids: Sequence[str]) -> set[str]:
        return set()

    async def remember(self, group: str, event_ids: Sequence[str]) -> None:
        return None


class EventConsumer:
    def __init__(
        self,
        *,
        group_id: str,
        subscription: Subscription,
        handlers: Mapping[type[EventData], Handler],
        processed: ProcessedEvents,
        dead_letters: Publisher,
        is_transient: Callable[[BaseException], bool],
        max_attempts: int = 3,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        concurrency: int = 1,
    ) -> None:
        self.group_id = group_id
        self._subscription = subscription
        # Keyed by model class, so a handler's event type is always registered for parsing.
        self._handlers = {model.event_type: handler for model, handler in handlers.items()}
        self._processed = processed
        self._dead_letters = dead_letters
        self._is_transient = is_transient
        self._max_attempts = max_attempts
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        # Lanes (message keys) of one batch handled at once: worth it when handlers mostly wait.
        self._concurrency = max(1, concurrency)
        self.handled = 0
        self.dead_lettered = 0

    async def run_forever(self) -> None:
        while True:
            await self.consume_once()

    async def consume_once(self, timeout_ms: int = 500) -> int:
        """Handles one fetched batch, records what it handled, then commits; returns the batch size.

        The processed-ids look-up and record are one round trip each per batch, not per message.
        Offsets are committed after the whole batch, so a crash replays it and the handlers'
        idempotence drops what was already done.
        """
        messages = await self._subscription.fetch(timeout_ms)
        if not messages:
            return 0
        parsed = [(message, self._parse(message)) for message in messages]
        ids = [event.id for _, event in parsed if isinstance(event, CloudEvent) and event.name in self._handlers]
        done = await self._retry_transient(lambda: self._processed.seen(self.group_id, ids)) if ids else set()
        lanes: dict[str | None, Lane] = {}
        for message, event in parsed:
            if isinstance(event, CloudEvent):
                if event.name not in self._handlers:
                    continue
                if event.id in done:
                    telemetry.EVENTS_HANDLED.inc(group=self.group_id, type=event.name, outcome="duplicate")
                    continue
                done.add(event.id)  # a duplicate later in the same batch is skipped too
            elif event is None:
                continue  # a type nobody here handles
            # One lane per message key (the aggregate): its events keep their order. With a
            # concurrency of 1, a single lane keeps the whole batch in offset order.
            lanes.setdefault(message.key if self._concurrency > 1 else None, []).append((message, event))
        handled: list[str] = []
        slots = asyncio.Semaphore(self._concurrency)

        async def run(lane: Lane) -> None:
            async with slots:
                for message, event in lane:
                    if isinstance(event, str):
                        telemetry.EVENTS_HANDLED.inc(group=self.group_id, type="(malformed)", outcome="dead_lettered")
                        await self._dead_letter(message, event)
                        continue
                    with self._observed(message, event) as span:
                        with log_context(event_id=event.id, event_type=event.name, correlation_id=event.correlationid):
                            error = await self._handle_with_retries(self._handlers[event.name], event)
                        outcome = "handled" if error is None else "dead_lettered"
                        telemetry.EVENTS_HANDLED.inc(group=self.group_id, type=event.name, outcome=outcome)
                        if error is None:
                            handled.append(event.id)
                        else:
                            telemetry.mark_failed(span, error)
                            await self._dead_letter(message, error)

        try:
            async with asyncio.TaskGroup() as lanes_running:
                for lane in lanes.values():
                    lanes_running.create_task(run(lane))
        except BaseExceptionGroup as failed:
            # The other lanes are cancelled; callers expect the failure itself, as one lane raises it.
            raise failed.exceptions[0] from None
        if handled:
            await self._retry_transient(lambda: self._processed.remember(self.group_id, handled))
            self.handled += len(handled)
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            position = (message.topic, message.partition)
            next_offsets[position] = max(next_offsets.get(position, 0), message.offset + 1)
        await self._subscription.commit(next_offsets)
        return len(messages)

    @contextmanager
    def _observed(self, message: IncomingMessage, event: CloudEvent[Any]) -> Iterator[Any]:
        """The span of one event's handling (child of the publication, else of the event's own
        trace context) and its duration."""
        header = message.headers.get("traceparent")
        traceparent = header.decode("latin-1") if header else event.traceparent
        started = time.perf_counter()
        with telemetry.consumer_span(
            group=self.group_id,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            event_id=event.id,
            event_type=event.name,
            traceparent=traceparent,
        ) as span:
            yield span
        telemetry.EVENT_HANDLING.observe(time.perf_counter() - started, group=self.group_id, type=event.name)

    @staticmethod
    def _parse(message: IncomingMessage) -> CloudEvent[Any] | str | None:
        """The event; None for a type nobody here handles; the reason text for a malformed one."""
        try:
            return parse_event(message.value)
        except UnknownEventType:
            return None  # another consumer's business: topics carry several event types
        except ValueError as exc:
            return f"malformed event: {exc}"

    async def _handle_with_retries(self, handler: Handler, event: CloudEvent[Any]) -> str | None:
        """Runs the handler; returns the error text when it must be dead-lettered."""
        attempt = 0
        delay = self._backoff_initial_s
        while True:
            try:
                await handler(event)
                return None
            except Exception as exc:
                if self._is_transient(exc) or isinstance(exc, TransientError):
                    telemetry.HANDLER_RETRIES.inc(group=self.group_id, kind="transient")
                    log.warning("transient failure, retrying", error=repr(exc), retry_in_s=delay)
                else:
                    attempt += 1
                    if attempt >= self._max_attempts:
                        log.error("handler failed, dead-lettering", error=repr(exc), attempts=attempt)
                        return "".join(traceback.format_exception_only(exc)).strip()
                    telemetry.HANDLER_RETRIES.inc(group=self.group_id, kind="failure")
                    log.warning("handler failed, retrying", error=repr(exc), attempt=attempt)
                await self._sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)

    async def _retry_transient(self, action: Callable[[], Awaitable[T]]) -> T:
        delay = self._backoff_initial_s
        while True:
            try:
                return await action()
            except Exception as exc:
                if not self._is_transient(exc):
                    raise
                await self._sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)

    async def _dead_letter(self, message: IncomingMessage, reason: str) -> None:
        headers = {
            **{k: v for k, v in message.headers.items() if not k.startswith("dlq.")},
            "dlq.consumer_group": self.group_id.encode(),
            "dlq.error": reason[:2000].encode(),
            "dlq.original_topic": message.topic.encode(),
            "dlq.original_partition": str(message.partition).encode(),
            "dlq.original_offset": str(message.offset).encode(),
            "dlq.failed_at": datetime.now(UTC).isoformat().encode(),
        }
        topic = message.topic + DLQ_SUFFIX
        dead = OutgoingMessage(topic=topic, key=message.key or "", value=message.value, headers=tuple(headers.items()))
        await self._retry_transient(lambda: self._dead_letters.publish([dead]))
        self.dead_lettered += 1
        telemetry.DEAD_LETTERS.inc(group=self.group_id, topic=topic)
        log.error("event dead-lettered", topic=topic, reason=reason[:200], offset=message.offset)
