"""Everything that touches aiokafka: producer, publisher, consumer subscription, topic admin."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

TOPICS_FILE = Path(__file__).resolve().parents[2] / "schemas" / "topics.yaml"
DLQ_SUFFIX = ".dlq"

@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: str
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class IncomingMessage:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)


def create_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer with acks from all in-sync replicas: no duplicate from retries."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=10000,
    )


class KafkaPublisher:
    """Owns an idempotent producer; ``publish`` returns once the broker acknowledged every message."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # A fresh producer per attempt: one whose start failed is not reused.
        producer = create_producer(self._bootstrap, self._client_id)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if self._producer is None:
            raise KafkaConnectionError("producer not started")
        # send() enqueues in call order, so events of one key keep their order in the partition.
        pending = [
            await self._producer.send(m.topic, value=m.value, key=m.key.encode(), headers=list(m.headers))
            for m in messages
        ]
        await asyncio.gather(*pending)

    async def ready(self, timeout_s: float = 2.0) -> None:
        if self._producer is None:
            raise KafkaConnectionError("producer not started")
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout_s)


class KafkaSubscription:
    """A consumer-group member that commits offsets only when told to."""

    def __init__(self, bootstrap: str, group_id: str, topics: Sequence[str], client_id: str) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._topics = list(topics)
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise KafkaConnectionError("consumer not started")
        return self._consumer

    async def fetch(self, timeout_ms: int = 500) -> list[IncomingMessage]:
        batches = await self._started.getmany(timeout_ms=timeout_ms)
        return [
            IncomingMessage(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key.decode() if r.key is not None else None,
                value=r.value or b"",
                headers={k: v for k, v in (r.headers or ())},
            )
            for records in batches.values()
            for r in records
        ]

    async def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        await self._started.commit({TopicPartition(t, p): o for (t, p), o in next_offsets.items()})


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    restricted: bool = False


def declared_topics(path: Path = TOPICS_FILE) -> list[TopicSpec]:
    """The aggregate topics of schemas/topics.yaml and a dead-letter topic for each."""
    doc = yaml.safe_load(path.read_text())
    defaults = doc.get("defaults", {})
    specs: list[TopicSpec] = []
    for entry in doc["topics"]:
        partitions = int(entry.get("partitions", defaults.get("partitions", 3)))
        replication = int(entry.get("replication_factor", defaults.get("replication_factor", 1)))
        restricted = bool(entry.get("restricted", False))
        specs.append(TopicSpec(entry["name"], partitions, replication, restricted))
        specs.append(TopicSpec(entry["name"] + DLQ_SUFFIX, partitions, replication, restricted))
    return specs


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Creates the topics that do not exist yet; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ecp-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if wanted:
            try:
                await admin.create_topics(
                    [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor) for s in wanted]
                )
            except TopicAlreadyExistsError:
                pass
        return [s.name for s in wanted]
    finally:
        await admin.close()


# The broker is unreachable or refused for now: worth retrying, and a 503 for a request.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (KafkaError,)


def is_transient_kafka_error(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Messages after the group's committed offset, per partition this member holds. Asked of
        the broker (end offsets, committed offsets), so a consumer stuck in a handler still shows
        its lag growing."""
        consumer = self._started
        partitions = sorted(consumer.assignment())
        if not partitions:
            return {}
        ends = await consumer.end_offsets(partitions)
        committed = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
        never = [tp for tp, offset in zip(partitions, committed) if offset is None]
        starts = await consumer.beginning_offsets(never) if never else {}
        return {
            (tp.topic, tp.partition): max(0, ends[tp] - (offset if offset is not None else starts[tp]))
            for tp, offset in zip(partitions, committed)
        }


def message_headers(pairs: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in pairs.items()]


__all__ = [
    "DLQ_SUFFIX",
    "IncomingMessage",
    "KafkaPublisher",
    "KafkaSubscription",
    "OutgoingMessage",
    "TopicSpec",
    "create_producer",
    "declared_topics",
    "ensure_topics",
    "is_transient_kafka_error",
    "message_headers",
]
