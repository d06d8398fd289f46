"""Everything that touches aiokafka: producer, publisher, consumer subscription, topic admin."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactBytes, CompactString, Int8, Int16, Int32, Schema, TaggedFields
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

if TYPE_CHECKING:
    from services.kernel.settings import CommonSettings

TOPICS_FILE = Path(__file__).resolve().parents[2] / "schemas" / "topics.yaml"
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class KafkaAuth:
    """Who a client is on the broker. No username: an anonymous PLAINTEXT client, which a
    secured broker refuses. With one: SASL (SCRAM-SHA-512 by default), over TLS when a CA is given."""

    username: str = ""
    password: str = ""
    mechanism: str = "SCRAM-SHA-512"
    ssl_cafile: str = ""

    def client_options(self) -> dict[str, Any]:
        """The aiokafka constructor arguments (producer, consumer and admin take the same)."""
        tls = {"ssl_context": create_ssl_context(cafile=self.ssl_cafile)} if self.ssl_cafile else {}
        if not self.username:
            return {"security_protocol": "SSL", **tls} if tls else {}
        return {
            "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            **tls,
        }

    @classmethod
    def of(cls, settings: CommonSettings) -> KafkaAuth:
        return cls(settings.kafka_username, settings.kafka_password, settings.kafka_sasl_mechanism, settings.kafka_ssl_cafile)


ANONYMOUS = KafkaAuth()


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


def create_producer(bootstrap: str, client_id: str, auth: KafkaAuth = ANONYMOUS) -> AIOKafkaProducer:
    """Idempotent producer with acks from all in-sync replicas: no duplicate from retries."""
    return AIOKafkaProducer(
        **auth.client_options(),
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=10000,
    )


class KafkaPublisher:
    """Owns an idempotent producer; ``publish`` returns once the broker acknowledged every message."""

    def __init__(self, bootstrap: str, client_id: str, auth: KafkaAuth = ANONYMOUS) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._auth = auth
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # A fresh producer per attempt: one whose start failed is not reused.
        producer = create_producer(self._bootstrap, self._client_id, self._auth)
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

    def __init__(
        self, bootstrap: str, group_id: str, topics: Sequence[str], client_id: str, auth: KafkaAuth = ANONYMOUS
    ) -> None:
        self._bootstrap = bootstrap
        self._auth = auth
        self._group_id = group_id
        self._topics = list(topics)
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *self._topics,
            **self._auth.client_options(),
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

    async def lag(self) -> dict[tuple[str, int], int]:
        """Messages after the group's committed offset, per partition this member holds. Asked of
        the broker (end offsets, committed offsets), so a consumer stuck in a handler still shows
        its lag growing. Nothing while the member is not connected yet (its service says so)."""
        consumer = self._consumer
        if consumer is None:
            return {}
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


class KafkaTail(KafkaSubscription):
    """Reads every partition of its topics from a moment on, in no consumer group: each process
    sees every message (a per-process cache needs that) and commits nothing. Needs only Read on
    the topics."""

    def __init__(self, bootstrap: str, topics: Sequence[str], client_id: str, since_ms: int, auth: KafkaAuth = ANONYMOUS) -> None:
        super().__init__(bootstrap, "", topics, client_id, auth)
        self._since_ms = since_ms

    async def start(self) -> None:
        # Without a group, the consumer is given every partition of its topics when it starts.
        consumer = AIOKafkaConsumer(
            *self._topics, **self._auth.client_options(), bootstrap_servers=self._bootstrap, group_id=None,
            client_id=self._client_id, enable_auto_commit=False, auto_offset_reset="latest", max_poll_records=500,
        )
        try:
            await consumer.start()
            partitions = sorted(consumer.assignment())
            if not partitions:
                raise KafkaConnectionError(f"no partitions known for {self._topics}")
            starts = await consumer.offsets_for_times({tp: self._since_ms for tp in partitions})
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else ends[tp])
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    restricted: bool = False
    # Acknowledged writes survive one broker lost only with 2 in-sync replicas (on 3): None = broker default.
    min_insync_replicas: int | None = None
    # How long messages stay (personal data on the topics: docs/rgpd.md); None = broker default.
    retention_hours: float | None = None

    def configs(self) -> dict[str, str]:
        configs = {"min.insync.replicas": str(self.min_insync_replicas)} if self.min_insync_replicas else {}
        if self.retention_hours is not None:
            configs["retention.ms"] = str(int(self.retention_hours * 3600 * 1000))
        return configs


def declared_topics(path: Path = TOPICS_FILE) -> list[TopicSpec]:
    """The aggregate topics of schemas/topics.yaml and a dead-letter topic for each."""
    doc = yaml.safe_load(path.read_text())
    defaults = doc.get("defaults", {})
    specs: list[TopicSpec] = []
    for entry in doc["topics"]:
        partitions = int(entry.get("partitions", defaults.get("partitions", 3)))
        replication = int(entry.get("replication_factor", defaults.get("replication_factor", 1)))
        restricted = bool(entry.get("restricted", False))
        retention = entry.get("retention_hours", defaults.get("retention_hours"))
        hours = float(retention) if retention is not None else None
        specs.append(TopicSpec(entry["name"], partitions, replication, restricted, retention_hours=hours))
        specs.append(TopicSpec(entry["name"] + DLQ_SUFFIX, partitions, replication, restricted, retention_hours=hours))
    return specs


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], auth: KafkaAuth = ANONYMOUS) -> list[str]:
    """Creates the topics that do not exist yet and sets the declared configs (retention) of
    those that do; returns the names it created."""
    admin = AIOKafkaAdminClient(**auth.client_options(), bootstrap_servers=bootstrap, client_id="ecp-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if wanted:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            s.name,
                            num_partitions=s.partitions,
                            replication_factor=s.replication_factor,
                            topic_configs=s.configs(),
                        )
                        for s in wanted
                    ]
                )
            except TopicAlreadyExistsError:
                pass
        # A retention changed in schemas/topics.yaml applies to the topics already there.
        present = [s for s in specs if s.name in existing and s.configs()]
        if present:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.name, configs=s.configs()) for s in present])
        return [s.name for s in wanted]
    finally:
        await admin.close()


# ---- principals and ACLs (provisioning: services/kernel/topics.py) --------------------------------


class AclResource(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class AclPattern(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    # READ and WRITE imply DESCRIBE on the broker: no DESCRIBE entries needed beside them.
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10
    IDEMPOTENT_WRITE = 12


_ANY, _ALLOW, _SCRAM_SHA_512 = 1, 3, 2
CLUSTER_RESOURCE = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule, from any host: ``principal`` may do ``operation`` on the resource."""

    principal: str  # "User:<name>"
    resource: AclResource
    name: str
    pattern: AclPattern
    operation: AclOperation


def _acl_rows(acls: Sequence[Acl]) -> list[tuple[Any, ...]]:
    """CreateAcls creations and DeleteAcls filters (v1) share this shape: exact rules, any host."""
    return [(a.resource, a.name, a.pattern, a.principal, "*", a.operation, _ALLOW) for a in acls]


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, acls: Sequence[Acl]) -> None:
        self._rows = _acl_rows(acls)

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._rows)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, acls: Sequence[Acl]) -> None:
        self._rows = _acl_rows(acls)

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._rows)


class _AlterUserScramCredentialsResponse(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("user", CompactString("utf-8")), ("error_code", Int16),
                                 ("error_message", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentialsStruct(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterUserScramCredentialsResponse
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
        ("upsertions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("iterations", Int32),
                                    ("salt", CompactBytes), ("salted_password", CompactBytes), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentials(Request[_AlterUserScramCredentialsStruct]):
    API_KEY = 51
    ITERATIONS = 8192

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = passwords

    def build(self, request_struct_class: type[_AlterUserScramCredentialsStruct]) -> _AlterUserScramCredentialsStruct:
        upsertions = []
        for user, password in sorted(self._passwords.items()):
            # The broker stores keys derived from the salted password, never the password itself.
            salt = secrets.token_bytes(32)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, self.ITERATIONS)
            upsertions.append((user, _SCRAM_SHA_512, self.ITERATIONS, salt, salted, {}))
        return request_struct_class([], upsertions, {})


class KafkaAdmin:
    """Principals and ACLs on the broker, for the provisioning tool; needs a super user's ``auth``."""

    def __init__(self, bootstrap: str, auth: KafkaAuth, client_id: str = "ecp-provisioning") -> None:
        self._admin = AIOKafkaAdminClient(**auth.client_options(), bootstrap_servers=bootstrap, client_id=client_id)

    async def __aenter__(self) -> KafkaAdmin:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._admin.close()

    async def set_scram_passwords(self, passwords: Mapping[str, str]) -> None:
        """Creates or updates each user's SCRAM-SHA-512 credential."""
        if not passwords:
            return
        response = await self._admin._send_request(_AlterUserScramCredentials(passwords))
        failed = [f"{user}: {code} {message}" for user, code, message, _ in response.results if code]
        if failed:
            raise KafkaError(f"SCRAM credentials refused: {'; '.join(failed)}")

    async def acls(self) -> set[Acl]:
        """Every ALLOW rule on the broker (the others are not this project's)."""
        response = await self._admin._send_request(
            DescribeAclsRequest(_ANY, None, _ANY, None, None, _ANY, _ALLOW)  # type: ignore[arg-type]
        )
        if response.error_code:
            raise KafkaError(f"describing ACLs failed: {response.error_code} {response.error_message}")
        return {
            Acl(principal, AclResource(rtype), name, AclPattern(pattern), AclOperation(op))
            for rtype, name, pattern, rules in response.resources
            for principal, _host, op, _perm in rules
            if rtype in AclResource._value2member_map_ and pattern in AclPattern._value2member_map_
            and op in AclOperation._value2member_map_
        }

    async def create_acls(self, acls: Sequence[Acl]) -> None:
        if not acls:
            return
        response = await self._admin._send_request(_CreateAcls(acls))
        failed = [f"{code} {message}" for code, message in response.creation_responses if code]
        if failed:
            raise KafkaError(f"ACL creation refused: {'; '.join(failed)}")

    async def delete_acls(self, acls: Sequence[Acl]) -> None:
        if not acls:
            return
        response = await self._admin._send_request(_DeleteAcls(acls))
        failed = [f"{code} {message}" for code, message, _ in response.filter_responses if code]
        if failed:
            raise KafkaError(f"ACL deletion refused: {'; '.join(failed)}")


# The broker is unreachable or refused for now: worth retrying, and a 503 for a request.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (KafkaError,)


def is_transient_kafka_error(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def message_headers(pairs: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in pairs.items()]


__all__ = [
    "ANONYMOUS",
    "Acl",
    "AclOperation",
    "AclPattern",
    "AclResource",
    "CLUSTER_RESOURCE",
    "DLQ_SUFFIX",
    "IncomingMessage",
    "KafkaAdmin",
    "KafkaAuth",
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
