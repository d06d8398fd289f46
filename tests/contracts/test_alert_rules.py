"""The alert rules load in Prometheus, fire on the series they are about (promtool's rule unit
tests), and Kubernetes carries the same rules as the local runner and compose."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "observability" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "observability" / "alerts.test.yml"
K8S = ROOT / "deploy" / "k8s" / "observability.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not found: `make up` installs Debian's prometheus package, which ships it")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_alert_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


def test_each_alert_fires_on_its_series_and_stays_quiet_otherwise() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_links_to_its_section_of_the_runbook() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
            assert f"\n### {rule['alert']}\n" in runbook


def test_kubernetes_carries_the_same_alert_rules() -> None:
    documents = [d for d in yaml.safe_load_all(K8S.read_text()) if d]
    (rule,) = [d for d in documents if d["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
