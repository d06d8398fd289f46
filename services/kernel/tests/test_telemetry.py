"""Metrics and trace propagation, with in-memory spans: no collector, no broker, no database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from services.kernel import telemetry
from services.kernel.app import create_service_app
from services.kernel.health import ReadinessCheck
from services.kernel.outbox import outbox_entry
from services.kernel.relay import OutboxRelay
from services.kernel.settings import CommonSettings
from services.kernel.tests.test_consumer import deleted, make_consumer, message

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of the test; the process's tracer provider gets an in-memory exporter once."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_test_exporter_added", False):
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        provider._test_exporter_added = True  # type: ignore[attr-defined]
    was = telemetry.enabled()
    telemetry.set_enabled(True)
    _exporter.clear()
    yield _exporter
    telemetry.set_enabled(was)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def named(spans: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith(prefix)]


router = APIRouter()


@router.get("/families/{family_id}/children")
async def children(family_id: str) -> list[str]:
    return []


async def no_checks(app: FastAPI) -> Sequence[ReadinessCheck]:
    return []


async def nothing(app: FastAPI) -> None:
    return None


def app_client() -> TestClient:
    app = create_service_app(
        CommonSettings(service_name="t"), title="t", description="d", routers=[router], startup=no_checks, shutdown=nothing
    )
    return TestClient(app)


def test_requests_are_counted_by_route_template_never_by_the_raw_path(spans: InMemorySpanExporter) -> None:
    route = "/families/{family_id}/children"
    before = sample("ecp_http_request_duration_seconds_count", method="GET", route=route, status="200")
    with app_client() as client:
        assert client.get("/families/jeanne.martin@example.fr/children").status_code == 200
        assert client.get("/no/such/page").status_code == 404
        metrics = client.get("/metrics").text
    assert sample("ecp_http_request_duration_seconds_count", method="GET", route=route, status="200") == before + 1
    assert sample("ecp_http_request_duration_seconds_count", method="GET", route="unmatched", status="404") >= 1
    assert "jeanne.martin" not in metrics and "/no/such/page" not in metrics
    assert [s.name for s in named(spans, "GET ")] == [f"GET {route}", "GET unmatched"]


def test_a_request_continues_the_trace_its_caller_names_in_traceparent(spans: InMemorySpanExporter) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with app_client() as client:
        client.get("/families/f1/children", headers={"traceparent": caller})
    (server,) = named(spans, "GET ")
    assert f"{server.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent is not None and f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert server.kind == trace.SpanKind.SERVER


def test_an_event_written_during_a_request_carries_the_request_trace_to_the_outbox(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("request") as request:
        entry = outbox_entry(deleted_event(), "identity.account.v1")
    expected = telemetry.traceparent_of(request)
    assert expected is not None
    assert entry["traceparent"] == expected
    assert b'"traceparent":"' + expected.encode() + b'"' in entry["value"]


def deleted_event():  # type: ignore[no-untyped-def]
    from services.kernel.envelope import parse_event

    return parse_event(deleted("acc-1"))


def test_an_event_written_with_telemetry_off_carries_no_traceparent(spans: InMemorySpanExporter) -> None:
    telemetry.set_enabled(False)
    with trace.get_tracer("test").start_as_current_span("request"):
        entry = outbox_entry(deleted_event(), "identity.account.v1")
    assert entry["traceparent"] is None
    assert b"traceparent" not in entry["value"]


def test_the_relay_publishes_each_event_in_a_child_span_and_names_it_in_the_kafka_header(
    spans: InMemorySpanExporter,
) -> None:
    with trace.get_tracer("test").start_as_current_span("request") as request:
        entry = outbox_entry(deleted_event(), "identity.account.v1")
    producer = OutboxRelay._producer_span(entry)
    producer.end()
    (publish,) = named(spans, "publish ")
    assert publish.parent is not None and publish.parent.span_id == request.get_span_context().span_id
    assert producer.traceparent == telemetry.traceparent_of(publish)  # type: ignore[arg-type]
    headers = dict(OutboxRelay._message(entry, producer.traceparent).headers)
    assert headers["traceparent"] == producer.traceparent.encode()  # type: ignore[union-attr]


async def test_a_consumer_handles_an_event_in_a_span_of_the_trace_it_came_from(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("request") as request:
        raw = deleted("acc-2")
    seen_trace: list[int] = []

    async def handler(event: object) -> None:
        seen_trace.append(trace.get_current_span().get_span_context().trace_id)

    consumer, _, _ = make_consumer([message(0, raw)], handler)
    before = sample("ecp_events_handled_total", group="g", type="AccountDeleted", outcome="handled")
    await consumer.consume_once()
    (process,) = named(spans, "process ")
    assert process.name == "process AccountDeleted"
    assert process.parent is not None and process.parent.span_id == request.get_span_context().span_id
    assert seen_trace == [request.get_span_context().trace_id]
    assert sample("ecp_events_handled_total", group="g", type="AccountDeleted", outcome="handled") == before + 1


async def test_a_dead_lettered_message_is_counted_per_group_and_dead_letter_topic(spans: InMemorySpanExporter) -> None:
    async def broken(event: object) -> None:
        raise ValueError("cannot handle")

    consumer, _, dlq = make_consumer([message(0, deleted("acc-3")), message(1, b"not json")], broken)
    before = sample("ecp_dead_letters_total", group="g", topic="identity.account.v1.dlq")
    await consumer.consume_once()
    assert len(dlq.sent) == 2
    assert sample("ecp_dead_letters_total", group="g", topic="identity.account.v1.dlq") == before + 2
    (process,) = named(spans, "process ")
    assert process.status.status_code == trace.StatusCode.ERROR


def test_metrics_record_nothing_while_telemetry_is_off(spans: InMemorySpanExporter) -> None:
    counter = telemetry.counter("ecp_test_switch", "A counter for this test.", ["kind"])
    counter.inc(kind="a")
    with app_client() as client:
        telemetry.set_enabled(False)
        counter.inc(kind="a")
        client.get("/families/f2/children")
    assert sample("ecp_test_switch_total", kind="a") == 1
    assert named(spans, "GET ") == []


def command(name: str, collection: str, request_id: int) -> Any:
    from pymongo import monitoring

    return monitoring.CommandStartedEvent({name: collection, "filter": {"email": "jeanne@example.fr"}}, "ecp_identity",
                                          request_id, ("127.0.0.1", 27017), None)


def test_a_database_command_within_a_request_is_a_client_span_named_without_its_content(spans: InMemorySpanExporter) -> None:
    from datetime import timedelta

    from pymongo import monitoring

    from services.kernel.mongo import CommandSpans

    listener = CommandSpans()
    listener.started(command("find", "accounts", 1))  # outside any trace: the relay's polling
    listener.succeeded(monitoring.CommandSucceededEvent(timedelta(milliseconds=1), {"ok": 1}, "find", 1, ("127.0.0.1", 27017), None))
    with trace.get_tracer("test").start_as_current_span("request") as request:
        listener.started(command("find", "accounts", 2))
        listener.started(command("insert", "accounts", 3))
    listener.succeeded(monitoring.CommandSucceededEvent(timedelta(milliseconds=1), {"ok": 1}, "find", 2, ("127.0.0.1", 27017), None))
    listener.failed(monitoring.CommandFailedEvent(timedelta(milliseconds=1), {"codeName": "DuplicateKey", "errmsg": "dup key: jeanne@example.fr"},
                                                  "insert", 3, ("127.0.0.1", 27017), None))
    found = {s.name: s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CLIENT}
    assert set(found) == {"find accounts", "insert accounts"}
    assert all(s.parent is not None and s.parent.span_id == request.get_span_context().span_id for s in found.values())
    assert found["insert accounts"].status.description == "DuplicateKey"
    assert "jeanne" not in repr([dict(s.attributes or {}) for s in found.values()])


def test_a_service_started_with_ecp_telemetry_off_records_neither_metrics_nor_spans(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECP_TELEMETRY", "off")
    route = "/families/{family_id}/children"
    before = sample("ecp_http_request_duration_seconds_count", method="GET", route=route, status="200")
    app = create_service_app(CommonSettings(service_name="t"), title="t", description="d", routers=[router],
                             startup=no_checks, shutdown=nothing)
    with TestClient(app) as client:
        assert client.get("/families/f3/children").status_code == 200
    assert sample("ecp_http_request_duration_seconds_count", method="GET", route=route, status="200") == before
    assert named(spans, "GET ") == []
