"""Test-side observers of the real broker: read a topic from the start, create throwaway topics.

They authenticate as the local operator principal (a super user of the broker), whose password
`make up` generated under .local/secrets/kafka; ``principal(name)`` gives any other principal's.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.kernel.kafka import KafkaAuth, TopicSpec, ensure_topics
from services.kernel.settings import CommonSettings

LOCAL = Path(os.environ.get("ECP_LOCAL", Path(__file__).resolve().parents[2] / ".local"))
SECRETS = LOCAL / "secrets" / "kafka"


def principal(name: str) -> KafkaAuth:
    """A principal of the local broker, with the password `make up` generated for it."""
    return KafkaAuth(name, (SECRETS / f"{name}.password").read_text().strip())


def use_local_operator() -> None:
    """Makes CommonSettings() (and processes started from here) the operator on the local
    broker, over every node of the running mode; explicit ECP_KAFKA_* variables win. Before
    `make up` secured the broker (no generated password) it changes nothing."""
    if (SECRETS / "ecp-operator.password").is_file() and "ECP_KAFKA_USERNAME" not in os.environ:
        os.environ["ECP_KAFKA_USERNAME"] = "ecp-operator"
        os.environ["ECP_KAFKA_PASSWORD"] = principal("ecp-operator").password
    nodes = LOCAL / "run" / "kafka-nodes"
    if nodes.is_file() and nodes.read_text().strip() == "3":
        os.environ.setdefault("ECP_KAFKA_BOOTSTRAP", "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292")


use_local_operator()
BOOTSTRAP = CommonSettings().kafka_bootstrap
OPERATOR = KafkaAuth.of(CommonSettings())


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    value: bytes
    headers: dict[str, bytes]


async def create_test_topic(prefix: str, partitions: int = 3) -> str:
    name = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
    await ensure_topics(BOOTSTRAP, [TopicSpec(name, partitions, 1), TopicSpec(name + ".dlq", partitions, 1)], OPERATOR)
    return name


async def delete_topics(*names: str) -> None:
    admin = AIOKafkaAdminClient(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, in order, from fresh metadata (a topic just created is known)."""
    await consumer._client.force_metadata_update()
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def end_offsets_total(topic: str) -> int:
    """How many messages the topic holds: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await _partitions(consumer, topic))
        return sum(ends.values())
    finally:
        await consumer.stop()


async def group_caught_up(group: str, topic: str) -> bool:
    """Whether consumer ``group`` has committed every message ``topic`` holds now (so handled it:
    the kernel's consumer commits a batch after handling it)."""
    admin = AIOKafkaAdminClient(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    consumer = AIOKafkaConsumer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def read_all(topic: str, timeout_s: float = 20.0) -> list[Record]:
    """Every message currently in ``topic``, partition by partition, in offset order."""
    consumer = AIOKafkaConsumer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
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


async def partition_leader(topic: str, partition: int = 0) -> int:
    """The node id of the broker leading ``topic``'s ``partition`` right now."""
    admin = AIOKafkaAdminClient(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return next(p["leader"] for p in described["partitions"] if p["partition"] == partition)
