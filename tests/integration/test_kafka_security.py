"""The broker's authentication and the ACLs generated from schemas/topics.yaml, on the real broker.

Nothing here joins a service's consumer group (it would take partitions from the running
service) nor writes to an aggregate topic: reads use assigned partitions without a group, and
every write attempted is one the broker must refuse.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from services.kernel.kafka import ANONYMOUS, KafkaAuth
from services.kernel.topics import load, principals
from tests.integration.kafka_tools import BOOTSTRAP, principal

MAIL = "identity.mail.v1"
DOSSIERS = "household.dossier.v1"
ACCOUNTS = "identity.account.v1"


async def read_from_start(auth: KafkaAuth, topic: str) -> tuple[int, int]:
    """Reads the topic's partitions to their end without a group: (records read, records held)."""
    consumer = AIOKafkaConsumer(**auth.client_options(), bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                request_timeout_ms=10000)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        await consumer._client.force_metadata_update()
        # The broker answers the metadata request with TOPIC_AUTHORIZATION_FAILED for the topic.
        if topic in consumer._client.cluster.unauthorized_topics:
            raise TopicAuthorizationFailedError(topic)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        read = 0
        for _ in range(20):  # at least one fetch: a producer of the topic may describe it, not read it
            batches = await consumer.getmany(timeout_ms=500)
            read += sum(len(records) for records in batches.values())
            if all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                break
        return read, sum(ends.values())
    finally:
        await consumer.stop()


async def join_group(auth: KafkaAuth, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(topic, **auth.client_options(), bootstrap_servers=BOOTSTRAP, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="latest")
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=2000)
        await consumer.commit()
    finally:
        await consumer.stop()


async def write(auth: KafkaAuth, topic: str) -> None:
    producer = AIOKafkaProducer(**auth.client_options(), bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"not": "an event"}', key=b"acl-test")
    finally:
        await producer.stop()


async def test_an_anonymous_client_is_refused() -> None:
    with pytest.raises(KafkaConnectionError):
        await read_from_start(ANONYMOUS, DOSSIERS)


async def test_a_wrong_password_is_refused() -> None:
    with pytest.raises(KafkaError):
        await read_from_start(KafkaAuth("household", "not-its-password"), DOSSIERS)


async def test_a_service_cannot_write_a_topic_it_does_not_own() -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(principal("household"), ACCOUNTS)


async def test_a_service_cannot_read_a_topic_it_does_not_consume() -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read_from_start(principal("enrolment"), "documents.document.v1")


async def test_a_service_reads_what_it_consumes_but_only_in_its_own_groups() -> None:
    household = principal("household")
    read, held = await read_from_start(household, ACCOUNTS)
    assert read == held
    with pytest.raises(GroupAuthorizationFailedError):
        await join_group(household, ACCOUNTS, f"notifier-accounts-{uuid.uuid4().hex[:6]}")


@pytest.mark.parametrize("name", [n for n in principals(load()) if n not in ("notifier", "ecp-operator")])
async def test_the_mail_topic_is_readable_by_the_notifier_alone(name: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read_from_start(principal(name), MAIL)


async def test_the_notifier_reads_the_mail_topic() -> None:
    read, held = await read_from_start(principal("notifier"), MAIL)
    assert read == held


async def test_the_city_subscriber_reads_household_files_in_its_own_group() -> None:
    subscriber = principal("city-subscriber")
    read, held = await read_from_start(subscriber, DOSSIERS)
    assert read == held
    await join_group(subscriber, DOSSIERS, f"city-subscriber-test-{uuid.uuid4().hex[:6]}")


async def test_the_city_subscriber_cannot_read_the_mail_topic() -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read_from_start(principal("city-subscriber"), MAIL)


@pytest.mark.parametrize("topic", [DOSSIERS, "notifier.delivery.v1", DOSSIERS + ".dlq"])
async def test_the_city_subscriber_writes_nothing(topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(principal("city-subscriber"), topic)
