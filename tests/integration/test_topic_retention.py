"""Personal data on Kafka topics goes after the retention schemas/topics.yaml declares (issue #18,
item 8): the provisioning sets it on new topics and on the topics already there."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.kernel.kafka import declared_topics, ensure_topics
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR


async def test_every_declared_topic_carries_its_declared_retention_on_the_broker() -> None:
    specs = declared_topics()
    await ensure_topics(BOOTSTRAP, specs, OPERATOR)  # what `make up` runs: idempotent
    admin = AIOKafkaAdminClient(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs])
    finally:
        await admin.close()
    on_broker: dict[str, str] = {}
    for answer in answers:
        for _code, _message, _type, name, entries in answer.resources:
            on_broker[name] = next(str(e[1]) for e in entries if e[0] == "retention.ms")
    assert on_broker == {s.name: str(int(s.retention_hours * 3_600_000)) for s in specs}
    assert on_broker["identity.mail.v1"] == str(72 * 3_600_000)
