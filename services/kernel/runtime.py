"""The clients a service opens in its lifespan, and the background work it runs.

Nothing here connects at import time. ``ServiceRuntime.start`` opens the database client and
the Kafka producer, then runs the outbox relay and the event consumers as tasks. Kafka being
down at start-up does not stop the HTTP API from serving `/readyz` (which then says so):
the producer and consumers keep trying to connect in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.kernel import kafka, mongo, telemetry
from services.kernel.auth import RevokedAccounts
from services.kernel.consumer import EventConsumer, Handler, NoProcessedIds
from services.kernel.envelope import EventData
from services.kernel.health import ReadinessCheck
from services.kernel.logging import get_logger
from services.kernel.relay import OutboxRelay
from services.kernel.settings import CommonSettings

log = get_logger(__name__)


# A dependency down or slow right now (database, broker, S3 — the object store raises a
# ConnectionError — or anything timing out): consumers retry these, requests answer a 503.
DEPENDENCY_DOWN: tuple[type[Exception], ...] = (*mongo.TRANSIENT_ERRORS, *kafka.TRANSIENT_ERRORS, ConnectionError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """Failures worth retrying: a dependency that is down or slow right now."""
    return isinstance(exc, DEPENDENCY_DOWN)


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group of this service: the topics it reads and a handler per event type."""

    group_id: str
    topics: Sequence[str]
    handlers: Mapping[type[EventData], Handler]
    # Lanes (message keys) of a batch handled at once; one key's events always stay in order.
    concurrency: int = 1
    # True when every handler is idempotent by itself: the group then keeps no processed event ids.
    idempotent_handlers: bool = False


@dataclass
class ServiceRuntime:
    settings: CommonSettings
    outbox_collections: Sequence[str] = ()
    mongo_client: Any = None
    db: Any = None
    publisher: kafka.KafkaPublisher | None = None
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    _producer_started: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        s = self.settings
        self.mongo_client = mongo.connect(s.mongo_url, s.mongo_timeout_ms)
        self.db = self.mongo_client[s.database_name]
        self.publisher = kafka.KafkaPublisher(s.kafka_bootstrap, client_id=s.service_name, auth=kafka.KafkaAuth.of(s))
        self._spawn(self._start_producer(), "producer")
        if self.outbox_collections:
            self.relay = OutboxRelay(
                [self.db[name] for name in self.outbox_collections],
                self.publisher,
                owner=f"{s.service_name}-{id(self):x}",
                lease_s=s.outbox_lease_s,
                batch_size=s.outbox_batch_size,
                poll_interval_s=s.outbox_poll_interval_s,
            )
            if s.run_outbox_relay:
                self._spawn(self._run_relay(), "outbox-relay")
            telemetry.on_scrape(self._observe_outbox)

    def add_consumer(self, spec: ConsumerSpec) -> EventConsumer:
        s = self.settings
        assert self.publisher is not None, "start() the runtime before adding consumers"
        subscription = kafka.KafkaSubscription(
            s.kafka_bootstrap, spec.group_id, list(spec.topics), client_id=f"{s.service_name}-{spec.group_id}",
            auth=kafka.KafkaAuth.of(s),
        )
        consumer = EventConsumer(
            group_id=spec.group_id,
            subscription=subscription,
            handlers=spec.handlers,
            processed=NoProcessedIds() if spec.idempotent_handlers else mongo.MongoProcessedEvents(self.db),
            dead_letters=self.publisher,
            is_transient=is_transient,
            max_attempts=s.consumer_max_attempts,
            backoff_initial_s=s.consumer_backoff_initial_s,
            backoff_max_s=s.consumer_backoff_max_s,
            concurrency=spec.concurrency,
        )
        self.consumers.append(consumer)
        for topic in spec.topics:
            # At zero from the start: the first dead letter then shows as an increase.
            telemetry.DEAD_LETTERS.declare(group=spec.group_id, topic=topic + kafka.DLQ_SUFFIX)
        telemetry.on_scrape(_lag_observer(spec.group_id, subscription))
        self._spawn(self._run_consumer(subscription, consumer), f"consumer-{spec.group_id}")
        return consumer

    def every(self, interval_s: float, action: Callable[[], Awaitable[Any]], name: str) -> None:
        """Runs ``action`` at start and then every ``interval_s`` while the service runs (the
        scheduled purges). Each run must be idempotent: replicas run theirs too. A failure is
        logged and the next run tries again."""

        async def loop() -> None:
            while True:
                try:
                    done = await action()
                    if done:
                        log.info(f"{name} done", result=done)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning(f"{name} failed; the next run retries", exc_info=True)
                await asyncio.sleep(interval_s)

        self._spawn(loop(), name)

    def follow_revocations(self, revoked: RevokedAccounts) -> None:
        """Feeds ``revoked`` for as long as the service runs (``feed_revocations``)."""
        self._spawn(feed_revocations(self.settings, revoked), "revocations")

    def events_queued(self) -> None:
        """A store calls this after writing events to the outbox: relay them without waiting."""
        if self.relay is not None:
            self.relay.notify()

    async def stop_background(self) -> None:
        """Stops the relay and the consumers, before the clients their handlers use are closed."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def stop(self) -> None:
        await self.stop_background()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.stop()
        if self.mongo_client is not None:
            self.mongo_client.close()

    def readiness_checks(self) -> list[ReadinessCheck]:
        return [ReadinessCheck("database", self._check_database), ReadinessCheck("kafka", self._check_kafka)]

    async def _check_database(self) -> None:
        await mongo.ping(self.db)

    async def _check_kafka(self) -> None:
        if not self._producer_started.is_set():
            raise ConnectionError("Kafka producer not connected yet")
        assert self.publisher is not None
        await self.publisher.ready()

    async def _observe_outbox(self) -> None:
        assert self.relay is not None
        for collection, pending, oldest_age_s in await self.relay.backlog():
            telemetry.OUTBOX_PENDING.set(pending, collection=collection)
            telemetry.OUTBOX_OLDEST_AGE.set(oldest_age_s, collection=collection)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

    async def _start_producer(self) -> None:
        assert self.publisher is not None
        await retry_forever(self.publisher.start, "Kafka producer")
        self._producer_started.set()

    async def _run_relay(self) -> None:
        assert self.relay is not None
        await retry_forever(self.relay.ensure_indexes, "outbox indexes")
        await self._producer_started.wait()
        await self.relay.run_forever()

    async def _run_consumer(self, subscription: kafka.KafkaSubscription, consumer: EventConsumer) -> None:
        await retry_forever(subscription.start, f"consumer {consumer.group_id}")
        try:
            await self._producer_started.wait()  # dead letters need the producer
            await consumer.run_forever()
        finally:
            with contextlib.suppress(Exception):
                await subscription.stop()


def _lag_observer(group: str, subscription: kafka.KafkaSubscription) -> Callable[[], Awaitable[None]]:
    """A scrape hook setting the group's lag per partition this member holds (and forgetting the
    partitions it gave up)."""
    reported: set[tuple[str, int]] = set()

    async def observe() -> None:
        lag = await subscription.lag()
        for topic, partition in reported - lag.keys():
            telemetry.CONSUMER_LAG.remove(group=group, topic=topic, partition=str(partition))
        for (topic, partition), messages in lag.items():
            telemetry.CONSUMER_LAG.set(messages, group=group, topic=topic, partition=str(partition))
        reported.clear()
        reported.update(lag)

    return observe


async def feed_revocations(settings: CommonSettings, revoked: RevokedAccounts) -> None:
    """Feeds ``revoked`` from the account topic, from the look-back on, for ever: every process
    reads every partition (no consumer group). Needs only Read on the topic."""
    s = settings
    while True:
        since = datetime.now(UTC) - timedelta(minutes=s.revocation_lookback_minutes)
        tail = kafka.KafkaTail(
            s.kafka_bootstrap, [s.revocation_topic], f"{s.service_name}-revocations",
            int(since.timestamp() * 1000), auth=kafka.KafkaAuth.of(s),
        )
        await retry_forever(tail.start, "revocation feed")
        try:
            while True:
                for message in await tail.fetch(timeout_ms=200):
                    if revoked.take(message.value):
                        log.info("access tokens of a deleted account refused from now on", account_id=message.key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("revocation feed interrupted; reconnecting", error=repr(exc))
        finally:
            with contextlib.suppress(Exception):
                await tail.stop()


async def retry_forever(action: Callable[[], Awaitable[Any]], what: str, max_delay_s: float = 5.0) -> None:
    """Runs ``action`` until it succeeds, waiting longer between failures (dependencies starting)."""
    delay = 0.5
    while True:
        try:
            await action()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(f"{what} not available yet, retrying", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
