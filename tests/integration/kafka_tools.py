"""Test-side observers of the real broker: read a topic from the start, create throwaway topics."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.kernel.kafka import TopicSpec, ensure_topics

BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    value: bytes
    headers: dict[str, bytes]


async def create_test_topic(prefix: str, partitions: int = 3) -> str:
    name = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
    await ensure_topics(BOOTSTRAP, [TopicSpec(name, partitions, 1), TopicSpec(name + ".dlq", partitions, 1)])
    return name


async def delete_topics(*names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def end_offsets_total(topic: str) -> int:
    """How many messages the topic holds: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def read_all(topic: str, timeout_s: float = 20.0) -> list[Record]:
    """Every message currently in ``topic``, partition by partition, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            batches = await consumer.getmany(timeout_ms=500)
            for tp_records in batches.values():
                records.extend(
                    Record(r.partition, r.offset, (r.key or b"").decode(), r.value or b"", dict(r.headers or ()))
                    for r in tp_records
                )
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
