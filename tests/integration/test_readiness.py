"""`/readyz` through the gateway names the component that is down, and recovers when it is back.

Each case really stops the component with the runner (`deploy/local/ecp stop ...`) and starts it again.
"""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.integration.conftest import ROOT

GATEWAY = "http://127.0.0.1:8080"
BACKENDS = ["identity", "household", "documents", "notifier", "enrolment"]


def ecp(*args: str) -> None:
    subprocess.run([str(ROOT / "deploy/local/ecp"), *args], check=True, capture_output=True, timeout=180)


def readiness(service: str) -> tuple[int, dict]:
    response = httpx.get(f"{GATEWAY}/api/{service}/readyz", timeout=10)
    return response.status_code, response.json()


def wait_for_readiness(services: list[str], expect_down: str | None, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        states = {s: readiness(s) for s in services}
        if expect_down is None and all(code == 200 for code, _ in states.values()):
            return
        if expect_down is not None and all(
            code == 503 and expect_down in body["down"] for code, body in states.values()
        ):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"expected down={expect_down!r}, got {states}")
        time.sleep(0.5)


def test_every_service_is_ready_through_the_gateway_when_everything_runs() -> None:
    for service in BACKENDS:
        code, body = readiness(service)
        assert code == 200, body
        assert body["down"] == []


@pytest.mark.parametrize(
    ("component", "check", "affected"),
    [
        ("mongo", "database", BACKENDS),
        ("kafka", "kafka", BACKENDS),
        ("s3", "s3", ["documents", "enrolment"]),
        ("clamd", "clamd", ["documents"]),
        ("mail", "smtp", ["notifier"]),
    ],
)
def test_readyz_turns_503_naming_a_stopped_component_and_back_to_200_when_it_returns(
    component: str, check: str, affected: list[str]
) -> None:
    ecp("stop", component)
    try:
        wait_for_readiness(affected, expect_down=check)
        unaffected = [s for s in BACKENDS if s not in affected]
        for service in unaffected:
            code, body = readiness(service)
            assert check not in body["down"], f"{service} should not depend on {check}"
    finally:
        ecp("start", component)
    wait_for_readiness(BACKENDS, expect_down=None, timeout_s=90)
