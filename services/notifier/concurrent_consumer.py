"""The kernel's idempotent consumer, handling a fetched batch concurrently across accounts.

The kernel's ``EventConsumer`` runs a batch's handlers one after the other: right for most
services, slow for the notifier, whose handlers mostly wait (database, SMTP server). Here a
batch's events are split into lanes by message key (the account id: an account's events keep
their order, so the projection is still up to date when a PasswordChanged needs it) and up to
``concurrency`` lanes run at once. Everything else is the kernel's: dedup by event id in one
query, retries, dead letters, the handled ids recorded in one insert, offsets committed after
the whole batch (so a crash replays it and the delivery keys drop what was already sent).

(A ``concurrency`` option on the kernel's ``ConsumerSpec`` would let other services share this;
it lives here while the notifier is the only one to need it.)
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from services.kernel import kafka, mongo
from services.kernel.consumer import EventConsumer, Handler
from services.kernel.envelope import CloudEvent
from services.kernel.kafka import IncomingMessage
from services.kernel.logging import log_context
from services.kernel.runtime import ConsumerSpec, ServiceRuntime, is_transient, retry_forever

# One lane: a key's messages in offset order, each with its event or the reason it is malformed.
Lane = list[tuple[IncomingMessage, "CloudEvent[Any] | str"]]


class ConcurrentConsumer(EventConsumer):
    def __init__(self, *, concurrency: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._concurrency = max(1, concurrency)

    async def consume_once(self, timeout_ms: int = 500) -> int:
        messages = await self._subscription.fetch(timeout_ms)
        if not messages:
            return 0
        parsed = [(message, self._parse(message)) for message in messages]
        ids = [event.id for _, event in parsed if isinstance(event, CloudEvent) and event.type in self._handlers]
        done = await self._retry_transient(lambda: self._processed.seen(self.group_id, ids)) if ids else set()
        lanes: dict[str | None, Lane] = {}
        for message, event in parsed:
            if isinstance(event, CloudEvent):
                if event.id in done or event.type not in self._handlers:
                    continue
                done.add(event.id)  # a duplicate later in the same batch is skipped too
            elif event is None:
                continue  # a type nobody here handles
            lanes.setdefault(message.key, []).append((message, event))
        handled: list[str] = []
        slots = asyncio.Semaphore(self._concurrency)

        async def run(lane: Lane) -> None:
            async with slots:
                for message, event in lane:
                    if isinstance(event, str):
                        await self._dead_letter(message, event)
                        continue
                    with log_context(event_id=event.id, event_type=event.type, correlation_id=event.correlationid):
                        error = await self._handle_with_retries(self._handlers[event.type], event)
                    if error is None:
                        handled.append(event.id)
                    else:
                        await self._dead_letter(message, error)

        async with asyncio.TaskGroup() as lanes_running:
            for lane in lanes.values():
                lanes_running.create_task(run(lane))
        if handled:
            await self._retry_transient(lambda: self._processed.remember(self.group_id, handled))
            self.handled += len(handled)
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            position = (message.topic, message.partition)
            next_offsets[position] = max(next_offsets.get(position, 0), message.offset + 1)
        await self._subscription.commit(next_offsets)
        return len(messages)


async def run_consumer(runtime: ServiceRuntime, spec: ConsumerSpec, concurrency: int) -> None:
    """What the kernel runtime does for a consumer group, with the concurrent consumer."""
    s = runtime.settings
    assert runtime.publisher is not None, "start() the runtime before running consumers"
    subscription = kafka.KafkaSubscription(
        s.kafka_bootstrap, spec.group_id, list(spec.topics), client_id=f"{s.service_name}-{spec.group_id}"
    )
    handlers: dict[Any, Handler] = dict(spec.handlers)
    consumer = ConcurrentConsumer(
        concurrency=concurrency,
        group_id=spec.group_id,
        subscription=subscription,
        handlers=handlers,
        processed=mongo.MongoProcessedEvents(runtime.db),
        # Dead letters wait for the producer: "not started" is a transient failure, retried.
        dead_letters=runtime.publisher,
        is_transient=is_transient,
        max_attempts=s.consumer_max_attempts,
        backoff_initial_s=s.consumer_backoff_initial_s,
        backoff_max_s=s.consumer_backoff_max_s,
    )
    await retry_forever(subscription.start, f"consumer {spec.group_id}")
    try:
        await consumer.run_forever()
    finally:
        with contextlib.suppress(Exception):
            await subscription.stop()
