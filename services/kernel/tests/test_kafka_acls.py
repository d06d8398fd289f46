"""The ACLs generated from schemas/topics.yaml (services/kernel/topics.py), without a broker."""

from __future__ import annotations

from services.kernel.kafka import AclOperation, AclPattern, AclResource, KafkaAuth
from services.kernel.topics import acl_plan, load, passwords, principals

DOC = load()
PLAN = acl_plan(DOC)


def grants(principal: str, operation: AclOperation, resource: AclResource = AclResource.TOPIC) -> set[str]:
    return {a.name for a in PLAN[principal] if a.operation == operation and a.resource == resource}


def test_the_mail_topic_is_readable_by_the_notifier_alone() -> None:
    readers = {name for name in PLAN if "identity.mail.v1" in grants(name, AclOperation.READ)}
    assert readers == {"notifier"}


def test_each_aggregate_topic_has_exactly_one_writer_its_owner() -> None:
    for entry in DOC["topics"]:
        writers = {name for name in PLAN if entry["name"] in grants(name, AclOperation.WRITE)}
        assert writers == {entry["producer"]}, entry["name"]


def test_a_consumer_writes_the_dead_letters_of_what_it_reads_and_nothing_else_of_it() -> None:
    assert grants("household", AclOperation.WRITE) == {
        "household.dossier.v1", "identity.account.v1.dlq", "documents.document.v1.dlq", "enrolment.enrolment.v1.dlq",
    }
    assert grants("household", AclOperation.READ) == {"identity.account.v1", "documents.document.v1", "enrolment.enrolment.v1"}
    assert grants("household", AclOperation.READ, AclResource.GROUP) == {
        "household-accounts", "household-erasure", "household-documents", "household-enrolments",
    }


def test_the_city_subscriber_reads_the_public_topics_in_its_own_groups_and_writes_nothing() -> None:
    public = {e["name"] for e in DOC["topics"] if not e.get("restricted")}
    assert grants("city-subscriber", AclOperation.READ) == public
    assert "identity.mail.v1" not in public
    groups = [a for a in PLAN["city-subscriber"] if a.resource == AclResource.GROUP]
    assert [(g.name, g.pattern) for g in groups] == [("city-subscriber", AclPattern.PREFIXED)]
    assert not grants("city-subscriber", AclOperation.WRITE)
    assert not grants("city-subscriber", AclOperation.IDEMPOTENT_WRITE, AclResource.CLUSTER)


def test_the_insights_stream_app_owns_its_changelog_topics_and_transactions() -> None:
    prefixed = {(a.resource, a.operation) for a in PLAN["insights"] if a.pattern == AclPattern.PREFIXED}
    assert {(AclResource.TOPIC, op) for op in (AclOperation.CREATE, AclOperation.READ, AclOperation.WRITE)} <= prefixed
    assert (AclResource.TRANSACTIONAL_ID, AclOperation.WRITE) in prefixed
    owned = {e["name"] for e in DOC["topics"] if e.get("producer") == "insights"}
    owned |= set(DOC["principals"]["insights"].get("produces", ()))
    dead_letters = {f"{t}.dlq" for t in grants("insights", AclOperation.READ) if t != "insights-"}
    assert grants("insights", AclOperation.WRITE) == {"insights-", *owned, *dead_letters}
    assert "identity.mail.v1" not in grants("insights", AclOperation.READ)


def test_the_operator_is_a_principal_without_rules_a_super_user() -> None:
    assert "ecp-operator" in principals(DOC)
    assert PLAN["ecp-operator"] == []


def test_passwords_come_from_the_environment_before_the_secrets_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "city-subscriber.password").write_text("from-file\n")
    (tmp_path / "household.password").write_text("from-file\n")
    env = {"ECP_KAFKA_SECRETS_DIR": str(tmp_path), "ECP_KAFKA_PASSWORD_CITY_SUBSCRIBER": "from-env"}
    assert passwords(["city-subscriber", "household", "notifier"], env) == {
        "city-subscriber": "from-env", "household": "from-file",
    }


def test_a_client_without_a_username_is_anonymous_and_with_one_uses_scram() -> None:
    assert KafkaAuth().client_options() == {}
    options = KafkaAuth("household", "secret").client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
