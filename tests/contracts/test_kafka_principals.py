"""The consumer groups the services' code joins are the ones schemas/topics.yaml grants them: a group
added in code without its ACL would be refused by the broker, a grant without code is a stale right."""

from __future__ import annotations

import importlib.util
import re
from collections import defaultdict
from pathlib import Path

import pytest

from services.kernel.topics import load

ROOT = Path(__file__).resolve().parents[2]
GROUP_CONSTANT = re.compile(r'^[A-Z_]*_GROUP = "([^"]+)"', re.MULTILINE)


def groups_in_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for module in (ROOT / "services").glob("*/*.py"):
        found[module.parent.name].update(GROUP_CONSTANT.findall(module.read_text()))
    return {service: groups for service, groups in found.items() if groups}


def groups_granted() -> dict[str, set[str]]:
    granted: dict[str, set[str]] = defaultdict(set)
    for entry in load()["topics"]:
        for service, groups in entry.get("consumers", {}).items():
            granted[service].update(groups)
    return granted


def test_every_consumer_group_in_the_code_is_granted_to_its_service_and_no_other() -> None:
    code, granted = groups_in_code(), groups_granted()
    assert code, "no *_GROUP constant found: the scan is broken"
    for service, groups in code.items():
        assert groups == granted.get(service, set()), service


@pytest.mark.parametrize("name", ["gen_kafka_users", "gen_kafka_topics"])
def test_the_kubernetes_kafka_users_and_topics_are_generated_from_the_current_topics_file(name: str) -> None:
    path = ROOT / f"deploy/k8s/operators/{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.OUT.read_text() == generator.render(), f"stale: run .local/venv/bin/python {path.relative_to(ROOT)}"
