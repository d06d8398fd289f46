"""Integration tests run against the real servers that `make up` starts (`make test` does it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.kernel import mongo
from services.kernel.settings import CommonSettings
from tests.integration import kafka_tools  # noqa: F401  (its import makes CommonSettings() the broker's operator)

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_PORTS = {"Kafka": 9092, "database": 27017}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def servers_are_running() -> None:
    for name, port in REQUIRED_PORTS.items():
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                pytest.fail(f"{name} is not listening on 127.0.0.1:{port}: run `make up` (or `make test`)")


@pytest.fixture
def settings() -> CommonSettings:
    return CommonSettings()


@pytest.fixture
async def db(settings: CommonSettings) -> AsyncIterator[Any]:
    client = mongo.connect(settings.mongo_url)
    name = f"ecp_test_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        client.close()


class Processes:
    """Child processes a test starts; whatever is still alive at the end is killed."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "ECP_LOG_LEVEL": "WARNING", **(env or {})},
        )
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
async def db_client(settings: CommonSettings) -> AsyncIterator[Any]:
    """A client of the real database server, to look at (or age) what a service stored."""
    client = mongo.connect(settings.mongo_url)
    try:
        yield client
    finally:
        client.close()
