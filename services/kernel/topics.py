"""Provisions the broker from schemas/topics.yaml: ``python -m services.kernel.topics``.

Creates the topics that are missing, sets each principal's SCRAM-SHA-512 password, and makes the
ACLs of the principals the file names exactly what the file grants (missing rules created, stale
ones deleted; rules of other principals are left alone). It must authenticate as a super user.

``--print-acls`` prints the generated rules, ``--principals`` the principals' names; neither connects.
``--topics-only`` creates the missing topics and leaves principals alone (where another tool owns
them: Strimzi's User Operator applies deploy/k8s/operators/kafka-users.yaml).

Passwords: ``ECP_KAFKA_PASSWORD_<PRINCIPAL>`` (upper case, "-" as "_") or the file
``<ECP_KAFKA_SECRETS_DIR>/<principal>.password``; a principal without one keeps its credential.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from services.kernel.kafka import (
    CLUSTER_RESOURCE,
    DLQ_SUFFIX,
    TOPICS_FILE,
    Acl,
    AclOperation,
    AclPattern,
    AclResource,
    KafkaAdmin,
    KafkaAuth,
    declared_topics,
    ensure_topics,
)
from services.kernel.settings import CommonSettings

Op = AclOperation


def _user(principal: str) -> str:
    return f"User:{principal}"


def _topic(principal: str, name: str, *ops: Op, pattern: AclPattern = AclPattern.LITERAL) -> list[Acl]:
    return [Acl(_user(principal), AclResource.TOPIC, name, pattern, op) for op in ops]


def _writer(principal: str) -> Acl:
    # An idempotent producer asks the cluster for a producer id first.
    return Acl(_user(principal), AclResource.CLUSTER, CLUSTER_RESOURCE, AclPattern.LITERAL, Op.IDEMPOTENT_WRITE)


def principals(doc: Mapping[str, Any]) -> list[str]:
    """Every principal the file grants something to, in a stable order."""
    names: list[str] = []
    for entry in doc["topics"]:
        for name in (entry.get("producer"), *entry.get("consumers", {})):
            if name and name not in names:
                names.append(name)
    names += [n for n in doc.get("principals", {}) if n not in names]
    return names


def acl_plan(doc: Mapping[str, Any]) -> dict[str, list[Acl]]:
    """Per principal, the rules that let it do what schemas/topics.yaml says, and nothing more."""
    plan: dict[str, set[Acl]] = {name: set() for name in principals(doc)}
    public: list[str] = []
    for entry in doc["topics"]:
        topic = entry["name"]
        if not entry.get("restricted", False):
            public.append(topic)
        if producer := entry.get("producer"):
            plan[producer].update([*_topic(producer, topic, Op.WRITE), _writer(producer)])
        for consumer, groups in entry.get("consumers", {}).items():
            # Reads the topic in its own groups; may write the topic's dead letters, not the topic.
            plan[consumer].update(_topic(consumer, topic, Op.READ))
            plan[consumer].update(_topic(consumer, topic + DLQ_SUFFIX, Op.WRITE))
            plan[consumer].add(_writer(consumer))
            plan[consumer].update(Acl(_user(consumer), AclResource.GROUP, g, AclPattern.LITERAL, Op.READ) for g in groups)
    for name, extra in doc.get("principals", {}).items():
        for topic in extra.get("produces", ()):
            plan[name].update([*_topic(name, topic, Op.WRITE), _writer(name)])
        if prefix := extra.get("internal_topics_prefix"):
            # faust creates its changelog and repartition topics, then reads and writes them.
            plan[name].update(_topic(name, prefix, Op.CREATE, Op.READ, Op.WRITE, Op.DESCRIBE_CONFIGS, pattern=AclPattern.PREFIXED))
            plan[name].add(_writer(name))
        if prefix := extra.get("transactional_id_prefix"):
            plan[name].update(
                Acl(_user(name), AclResource.TRANSACTIONAL_ID, prefix, AclPattern.PREFIXED, op) for op in (Op.WRITE, Op.DESCRIBE)
            )
        if extra.get("subscriber"):
            plan[name].update(a for topic in public for a in _topic(name, topic, Op.READ))
            plan[name].add(Acl(_user(name), AclResource.GROUP, extra["group_prefix"], AclPattern.PREFIXED, Op.READ))
    return {name: sorted(acls) for name, acls in plan.items()}


def load(path: Path = TOPICS_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def passwords(names: Iterable[str], env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The passwords given for ``names`` (see the module docstring); the others are left out."""
    secrets_dir = env.get("ECP_KAFKA_SECRETS_DIR", "")
    found: dict[str, str] = {}
    for name in names:
        value = env.get(f"ECP_KAFKA_PASSWORD_{name.upper().replace('-', '_')}", "")
        file = Path(secrets_dir) / f"{name}.password" if secrets_dir else None
        if not value and file is not None and file.is_file():
            value = file.read_text().strip()
        if value:
            found[name] = value
    return found


async def provision(bootstrap: str, auth: KafkaAuth, doc: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, int]:
    """Users, then ACLs: a principal never exists on the broker with another's rules."""
    wanted = {a for acls in acl_plan(doc).values() for a in acls}
    managed = {_user(name) for name in principals(doc)}
    async with KafkaAdmin(bootstrap, auth) as admin:
        await admin.set_scram_passwords(secrets)
        present = await admin.acls()
        stale = sorted(a for a in present - wanted if a.principal in managed)
        missing = sorted(wanted - present)
        await admin.delete_acls(stale)
        await admin.create_acls(missing)
    return {"users": len(secrets), "acls created": len(missing), "acls deleted": len(stale)}


def print_acls(doc: Mapping[str, Any]) -> None:
    for name, acls in acl_plan(doc).items():
        print(name)
        for a in acls:
            print(f"  {a.operation.name:<16} {a.resource.name:<16} {a.pattern.name.lower():<8} {a.name}")


async def main(argv: list[str]) -> int:
    doc = load()
    if "--print-acls" in argv:
        print_acls(doc)
        return 0
    if "--principals" in argv:
        print("\n".join(principals(doc)))
        return 0
    settings = CommonSettings()
    auth = KafkaAuth.of(settings)
    specs = declared_topics()
    if settings.topics_replication_factor is not None:
        replicas = settings.topics_replication_factor
        # Aggregate topics keep acknowledged events through the loss of one broker of three.
        specs = [
            dataclasses.replace(
                s, replication_factor=replicas,
                min_insync_replicas=2 if replicas >= 3 and not s.name.endswith(DLQ_SUFFIX) else None,
            )
            for s in specs
        ]
    created = await ensure_topics(settings.kafka_bootstrap, specs, auth)
    print(f"topics created: {', '.join(created) if created else 'none (all present)'}")
    if "--topics-only" in argv:
        return 0
    if auth.username:
        figures = await provision(settings.kafka_bootstrap, auth, doc, passwords(principals(doc)))
        print(", ".join(f"{k}: {v}" for k, v in figures.items()))
    else:
        print("anonymous connection: principals and ACLs not provisioned (a broker without authentication)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
