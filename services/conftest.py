"""Unit tests do no I/O: the apps they build record metrics and spans but export no span."""

import pytest


@pytest.fixture(autouse=True)
def no_span_export(monkeypatch: pytest.MonkeyPatch) -> None:
    # Per test, not in the process's environment for the whole run: a service that an integration
    # test of the same run restarts must inherit the real endpoint, not this one.
    monkeypatch.setenv("ECP_OTLP_ENDPOINT", "")
