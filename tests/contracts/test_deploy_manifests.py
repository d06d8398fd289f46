"""The compose file and the Kubernetes manifests are never run here (no Docker engine, no
cluster), so nothing else notices when an edit breaks their YAML or forgets a component: these
tests parse them and check that each names every service of services/ and every component the
local runner starts, and that Prometheus scrapes every service in both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/compose/compose.yaml"
K8S = ROOT / "deploy/k8s"

# Every folder of services/ but the shared kernel is a deployable service.
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "main.py").exists() and p.name != "kernel")
# What `make up` starts beside the services, by the name compose gives it.
COMPOSE_COMPONENTS = ["kafka", "mongo", "seaweedfs", "clamav", "mailpit", "gateway", "prometheus", "alertmanager", "jaeger"]
# In Kubernetes, Kafka and MongoDB come from operators' resources, Prometheus from its operator
# (ServiceMonitor, PrometheusRule) and mail from the city's relay; the rest are workloads here.
K8S_WORKLOADS = ["clamav", "seaweedfs", "gateway", "jaeger"]
K8S_OPERATOR_KINDS = ["Kafka", "MongoDBCommunity", "ServiceMonitor", "PrometheusRule"]


def k8s_documents() -> list[dict[str, Any]]:
    return [d for path in sorted(K8S.rglob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_services_list_is_read_from_the_services_folder() -> None:
    assert {"identity", "household", "documents", "notifier", "enrolment", "web"} <= set(SERVICES)


@pytest.mark.parametrize("path", sorted(K8S.rglob("*.yaml")) + [COMPOSE], ids=lambda p: str(p.relative_to(ROOT)))
def test_each_manifest_parses_as_yaml(path: Path) -> None:
    assert [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_compose_runs_every_service_and_every_component_of_the_local_runner() -> None:
    names = set(yaml.safe_load(COMPOSE.read_text())["services"])
    assert set(SERVICES + COMPOSE_COMPONENTS) - names == set()


def test_kubernetes_deploys_every_service_and_component() -> None:
    deployed = {(d.get("kind"), d.get("metadata", {}).get("name")) for d in k8s_documents()}
    workloads = {name for kind, name in deployed if kind in ("Deployment", "StatefulSet")}
    assert set(SERVICES + K8S_WORKLOADS) - workloads == set()
    assert set(K8S_OPERATOR_KINDS) - {kind for kind, _ in deployed} == set()


def test_the_kustomization_applies_every_manifest_beside_it() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    beside = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert beside - listed == set()


def test_compose_prometheus_scrapes_every_service() -> None:
    jobs = {job["job_name"] for job in yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())["scrape_configs"]}
    assert set(SERVICES) - jobs == set()


def test_the_kubernetes_service_monitor_selects_every_service() -> None:
    [monitor] = [d for d in k8s_documents() if d.get("kind") == "ServiceMonitor" and d["metadata"]["name"] == "ecp-services"]
    [names] = [e["values"] for e in monitor["spec"]["selector"]["matchExpressions"] if e["key"] == "app.kubernetes.io/name"]
    assert set(SERVICES) - set(names) == set()


def test_every_kubernetes_kafka_topic_keeps_its_messages_only_as_long_as_the_topics_file_says() -> None:
    doc = yaml.safe_load((ROOT / "schemas/topics.yaml").read_text())
    hours = {t["name"]: t.get("retention_hours", doc["defaults"]["retention_hours"]) for t in doc["topics"]}
    topics = {d["metadata"]["name"]: d["spec"]["config"] for d in k8s_documents() if d.get("kind") == "KafkaTopic"}
    for name, retention in hours.items():
        for topic in (name, name + ".dlq"):
            assert topics[topic]["retention.ms"] == retention * 3600 * 1000, topic
