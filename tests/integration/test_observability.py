"""Observability against the running system: every service's metrics move when a family's journey
runs, the journey is one trace in Jaeger across HTTP and Kafka hops, and a poison message makes
the dead-letter alert fire in Prometheus and reach the operators' mailbox through Alertmanager.

Needs `make up` with its observability components (Prometheus, Alertmanager, Jaeger)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.journey import Journey, traced_journey
from bench.journey_client import GATEWAY, MAILPIT
from services.kernel.kafka import KafkaPublisher, OutgoingMessage
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR
from tests.integration.polling import eventually

PROMETHEUS = f"http://127.0.0.1:{os.environ.get('ECP_PROMETHEUS_PORT', '9090')}"
JAEGER = f"http://127.0.0.1:{os.environ.get('ECP_JAEGER_UI_PORT', '16686')}"
ALERT_EMAIL = os.environ.get("ECP_ALERT_EMAIL", "exploitation@ecp.localhost")
SERVICE_PORTS = {
    name: int(os.environ.get(f"ECP_{name.upper()}_PORT", port))
    for name, port in (("identity", 8101), ("household", 8102), ("documents", 8103), ("notifier", 8104),
                       ("enrolment", 8105), ("web", 8100))
}

Samples = dict[str, float]  # 'name{label="v",...}' → value


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).raise_for_status().text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the series of ``name`` whose labels include ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for key, v in samples.items() if key.startswith(name + "{") and all(w in key for w in wanted))


@dataclass
class JourneyRun:
    trace_id: str
    before: dict[str, Samples]
    after: dict[str, Samples]
    journey: Journey


async def _run_journey(trace_id: str) -> Journey:
    j = await traced_journey(trace_id, f"observability.{uuid.uuid4().hex[:8]}@example.org")
    if j.finished:
        # A page of the web service, in the same trace.
        async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as http:
            (await http.get("/", headers={"traceparent": j.traceparent or ""})).raise_for_status()
    return j


@pytest.fixture(scope="module")
def journey_run() -> Iterator[JourneyRun]:
    """One whole family journey (register → … → certificates), every call carrying one trace id."""
    trace_id = secrets.token_hex(16)
    before = {name: scrape(port) for name, port in SERVICE_PORTS.items()}
    j = asyncio.run(_run_journey(trace_id))
    assert j.finished, f"the journey did not finish: {j.error}"
    # The last emails (enrolment confirmed) leave after the journey's last answer.
    asyncio.run(asyncio.sleep(3))
    after = {name: scrape(port) for name, port in SERVICE_PORTS.items()}
    yield JourneyRun(trace_id, before, after, j)


def moved(run: JourneyRun, service: str, name: str, **labels: str) -> float:
    return total(run.after[service], name, **labels) - total(run.before[service], name, **labels)


def test_every_service_counts_the_requests_of_a_journey_by_route(journey_run: JourneyRun) -> None:
    # The notifier has no route in a journey: its figures are the emails (next test).
    for service in ("identity", "household", "documents", "enrolment", "web"):
        assert moved(journey_run, service, "ecp_http_request_duration_seconds_count") > 0, service
    assert moved(journey_run, "identity", "ecp_http_request_duration_seconds_count", route="/auth/register", status="202") >= 1
    assert moved(journey_run, "documents", "ecp_http_request_duration_seconds_count", route="/documents", status="201") >= 3


def test_the_services_domain_metrics_move_with_a_journey(journey_run: JourneyRun) -> None:
    # Other tests may run at the same time: at least this journey's share.
    assert moved(journey_run, "documents", "ecp_virus_scans_total", outcome="clean") >= 3
    assert moved(journey_run, "enrolment", "ecp_certificate_render_seconds_count") >= 2
    assert moved(journey_run, "notifier", "ecp_emails_total", outcome="sent") >= 6  # activation … 2 confirmations
    assert moved(journey_run, "notifier", "ecp_smtp_transaction_seconds_count") >= 6


def test_every_event_publishing_service_relays_and_every_consumer_handles_events_by_type(journey_run: JourneyRun) -> None:
    for service in ("identity", "household", "documents", "notifier", "enrolment"):
        assert moved(journey_run, service, "ecp_outbox_published_events_total") > 0, service
    assert moved(journey_run, "household", "ecp_events_handled_total", type="AccountActivated", outcome="handled") >= 1
    assert moved(journey_run, "household", "ecp_events_handled_total", type="DocumentScanned", outcome="handled") >= 3
    assert moved(journey_run, "enrolment", "ecp_events_handled_total", type="DossierValidated", outcome="handled") >= 1
    assert moved(journey_run, "notifier", "ecp_events_handled_total", outcome="handled") >= 6
    for service in ("household", "notifier", "enrolment"):
        after = journey_run.after[service]
        assert any(k.startswith("ecp_consumer_lag_messages{") for k in after), service
        assert any(k.startswith("ecp_outbox_oldest_pending_age_seconds{") for k in after) or service == "notifier"


def test_metric_labels_carry_no_personal_data(journey_run: JourneyRun) -> None:
    j = journey_run.journey
    identifiers = [j.email, j.email.split("@")[0], j.account_id, j.dossier_id, *j.documents, *j.enrolments]
    for service, samples in journey_run.after.items():
        exposed = "\n".join(samples)
        for value in filter(None, identifiers):
            assert value not in exposed, f"{service} exposes {value} in a metric label"


def jaeger_trace(trace_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{JAEGER}/api/traces/{trace_id}", timeout=10)
    if response.status_code == 404:
        return None
    data = response.raise_for_status().json().get("data") or []
    return data[0] if data else None


def spans_by_service(trace: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in trace["spans"]:
        grouped[services[span["processID"]]].append(span)
    return grouped


def kind(span: dict[str, Any]) -> str | None:
    return next((t["value"] for t in span.get("tags", []) if t["key"] == "span.kind"), None)


async def _trace_with(trace_id: str, services: set[str]) -> dict[str, Any]:
    async def complete() -> dict[str, Any] | None:
        trace = await asyncio.to_thread(jaeger_trace, trace_id)
        return trace if trace and services <= set(spans_by_service(trace)) else None

    return await eventually(complete, f"trace {trace_id} in Jaeger with spans of {sorted(services)}", 60, 1.0)


def test_a_journey_is_one_trace_in_jaeger_across_the_services_and_their_kafka_hops(journey_run: JourneyRun) -> None:
    wanted = {"identity", "household", "documents", "enrolment", "notifier", "web"}
    trace = asyncio.run(_trace_with(journey_run.trace_id, wanted))
    assert trace["traceID"] == journey_run.trace_id
    grouped = spans_by_service(trace)
    # HTTP requests, named by route template.
    assert any(s["operationName"] == "POST /auth/register" and kind(s) == "server" for s in grouped["identity"])
    # Kafka hops: the events the family's requests caused, handled by other services' consumers in
    # the same trace (the activation email, household learning the account is active).
    notifier_consumed = {s["operationName"] for s in grouped["notifier"] if kind(s) == "consumer"}
    assert "process ActivationLinkIssued" in notifier_consumed, notifier_consumed
    assert any(s["operationName"] == "process AccountActivated" and kind(s) == "consumer" for s in grouped["household"])
    # The relay's publication sits between a request and the consumer that handled its event.
    publishes = {s["spanID"] for spans in grouped.values() for s in spans if kind(s) == "producer"}
    consumer_parents = {r["spanID"] for s in grouped["notifier"] if kind(s) == "consumer" for r in s.get("references", [])}
    assert publishes & consumer_parents
    # Database commands inside a request are client spans, named by command and collection.
    assert any(kind(s) == "client" and s["operationName"].split()[0] in {"find", "insert", "update", "findAndModify"}
               for s in grouped["household"])
    # The virus scan of an upload continues the upload's trace, and so does the email it causes.
    assert any(s["operationName"] == "virus scan" for s in grouped["documents"])
    assert any(s["operationName"] == "smtp send" for s in grouped["notifier"])


def poison(event_type: str) -> bytes:
    """A CloudEvent of a type the consumer handles, whose data does not fit the type's schema."""
    return json.dumps({
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "/tests/observability", "type": event_type,
        "subject": "poison", "time": datetime.now(UTC).isoformat(), "datacontenttype": "application/json",
        "dataschema": f"urn:ecp:schemas:events:{event_type}.v1", "correlationid": "poison", "data": {"unexpected": True},
    }).encode()


async def _send_poison_and_wait_for_the_alert() -> tuple[float, float, dict[str, Any]]:
    group, topic = "notifier-mail", "identity.mail.v1"  # the restricted topic: the notifier alone reads it
    port = SERVICE_PORTS["notifier"]
    before = total(scrape(port), "ecp_dead_letters_total", group=group, topic=topic + ".dlq")
    publisher = KafkaPublisher(BOOTSTRAP, "observability-test", OPERATOR)
    await publisher.start()
    try:
        await publisher.publish([OutgoingMessage(topic=topic, key="poison", value=poison("ActivationLinkIssued"))])
    finally:
        await publisher.stop()

    async def counted() -> float | None:
        now = total(await asyncio.to_thread(scrape, port), "ecp_dead_letters_total", group=group, topic=topic + ".dlq")
        return now if now > before else None

    after = await eventually(counted, "the notifier dead-letters the poison message", 60, 0.5)

    async with httpx.AsyncClient(base_url=PROMETHEUS, timeout=10) as prometheus:
        async def seen_by_prometheus() -> bool:
            query = f'sum(ecp_dead_letters_total{{group="{group}",topic="{topic}.dlq"}})'
            result = (await prometheus.get("/api/v1/query", params={"query": query})).json()["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= after

        await eventually(seen_by_prometheus, "Prometheus scraped the dead letter", 60, 1.0)

        async def firing() -> dict[str, Any] | None:
            alerts = (await prometheus.get("/api/v1/alerts")).json()["data"]["alerts"]
            return next((a for a in alerts if a["labels"].get("alertname") == "DeadLetterReceived"
                         and a["labels"].get("group") == group and a["labels"].get("topic") == topic + ".dlq"
                         and a["state"] == "firing"), None)

        alert = await eventually(firing, "the DeadLetterReceived alert fires", 60, 1.0)
    return before, after, alert


def test_a_poison_message_makes_the_dead_letter_alert_fire_and_mails_the_operators() -> None:
    before, after, alert = asyncio.run(_send_poison_and_wait_for_the_alert())
    assert after >= before + 1
    assert alert["labels"]["job"] == "notifier" and alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook"] == "docs/operations.md#deadletterreceived"

    firing_since = datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00"))

    async def mailed() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=10) as http:
            found = (await http.get(f"{MAILPIT}/search", params={"query": f'to:{ALERT_EMAIL} subject:"DeadLetterReceived"'})).json()
        # The email about this firing, not one of an earlier alert.
        return next((m for m in found.get("messages") or []
                     if datetime.fromisoformat(m["Created"].replace("Z", "+00:00")) >= firing_since), None)

    message = asyncio.run(eventually(mailed, "Alertmanager's email in the mail catcher", 90, 1.0))
    assert "[ECP FIRING] DeadLetterReceived notifier" in message["Subject"]


def test_the_gateway_exposes_neither_metrics_nor_the_telemetry_switch() -> None:
    with httpx.Client(base_url=GATEWAY, timeout=10) as gateway:
        for path in ("/metrics", "/api/household/metrics", "/api/notifier/metrics"):
            assert gateway.get(path).status_code == 404, path
        for path in ("/internal/telemetry", "/api/identity/internal/telemetry"):
            assert gateway.put(path, json={"enabled": False}).status_code == 404, path
    # On the service's own port both answer (Prometheus scrapes there).
    assert "ecp_service_info" in httpx.get(f"http://127.0.0.1:{SERVICE_PORTS['household']}/metrics", timeout=10).text
