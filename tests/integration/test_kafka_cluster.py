"""Cluster mode (`make up KAFKA_NODES=3`): every aggregate topic is on three nodes and acknowledges a
write only once two have it. Skipped on the default single broker, where neither can hold."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.kernel.kafka import DLQ_SUFFIX, declared_topics
from tests.integration.kafka_tools import BOOTSTRAP, LOCAL, OPERATOR

CLUSTER = (LOCAL / "run" / "kafka-nodes").is_file() and (LOCAL / "run" / "kafka-nodes").read_text().strip() == "3"
pytestmark = pytest.mark.skipif(not CLUSTER, reason="the single-broker mode: run under `make up KAFKA_NODES=3`")
AGGREGATES = [t.name for t in declared_topics() if not t.name.endswith(DLQ_SUFFIX)]


async def test_every_aggregate_topic_has_three_replicas_in_sync_and_needs_two_to_acknowledge() -> None:
    admin = AIOKafkaAdminClient(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(AGGREGATES)}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {"min.insync.replicas": None}) for name in AGGREGATES]
        )
    finally:
        await admin.close()
    for name in AGGREGATES:
        partitions = described[name]["partitions"]
        assert partitions and all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in partitions), name
    min_isr = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}["min.insync.replicas"]
        for response in responses for resource in response.resources
    }
    assert min_isr == {name: "2" for name in AGGREGATES}
