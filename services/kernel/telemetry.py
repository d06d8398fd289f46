"""Metrics (Prometheus) and traces (OpenTelemetry): the one module that owns prometheus-client and
opentelemetry.

- Metrics live in the process's default Prometheus registry and are served at ``GET /metrics`` on
  the service's own port (the gateway never exposes it). Gauges that cost a query (outbox backlog,
  consumer lag, readiness) are measured when Prometheus scrapes, by the hooks registered with
  ``on_scrape``: nothing runs between scrapes. Labels never carry personal data: routes are path
  templates, never raw paths; events are counted by type and consumer group, never by subject.
- Traces: a server span per HTTP request (continuing an incoming W3C ``traceparent``), a producer
  span per event the relay publishes and a consumer span per event handled, whose parent is the
  ``traceparent`` the event carries (the CloudEvents distributed-tracing extension): a request,
  the events it causes and their consumers' work are one trace. Spans leave in batches (OTLP over
  HTTP, to Jaeger locally), sampled by trace id (``ECP_TRACE_SAMPLE_RATIO``, parent-based).
- ``ECP_TELEMETRY=off`` starts a service with neither; ``PUT /internal/telemetry`` switches both
  at run time on a local deployment (the journey benchmark measures their cost that way).

A service that is not a FastAPI app (the faust-based insights) calls ``configure`` itself and
serves ``render_metrics()`` from its own web server, or calls ``serve_metrics(port)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kernel.logging import get_logger, log_context

log = get_logger(__name__)

SCRAPE_HOOK_TIMEOUT_S = 3.0
# Requests that are the monitoring itself: neither traced nor counted as traffic.
_UNOBSERVED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _State:
    enabled: bool = False
    configured: bool = False
    provider: Any = None  # the SDK's TracerProvider, when traces are exported


_state = _State()
# The *_created series double every counter's size for a figure nobody queries.
disable_created_metrics()
_tracer = trace.get_tracer("ecp")
ScrapeHook = Callable[[], Awaitable[None]]
_scrape_hooks: list[ScrapeHook] = []


def configure(service_name: str, *, enabled: bool, otlp_endpoint: str = "", sample_ratio: float = 1.0) -> None:
    """Once per process, before serving. An empty ``otlp_endpoint`` keeps metrics but exports no span."""
    _state.enabled = enabled
    if _state.configured:
        return
    _state.configured = True
    SERVICE_INFO.labels(service=service_name).set(1)
    if not otlp_endpoint:
        return
    # Imported here: a process that never exports spans does not load the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name, "service.namespace": "ecp"}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    # Batches leave from a background thread every few seconds; a tracing backend that is down
    # costs a dropped batch, never a request's time.
    exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=4096, schedule_delay_millis=2000))
    trace.set_tracer_provider(provider)
    _state.provider = provider
    # One line per failed batch is enough to tell the operator Jaeger is unreachable.
    logging.getLogger("opentelemetry.exporter").setLevel(logging.ERROR)


def enabled() -> bool:
    return _state.enabled


def set_enabled(on: bool) -> None:
    _state.enabled = on


def flush() -> None:
    """Sends the spans still buffered (the lifespan's end)."""
    if _state.provider is not None:
        _state.provider.force_flush(timeout_millis=2000)


# ---- metrics -----------------------------------------------------------------------------------


class Metric:
    """A Prometheus metric that records nothing while telemetry is off. Label values must never be
    personal data (no email, no account id, no raw path)."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric

    def _child(self, labels: Mapping[str, str]) -> Any:
        return self._metric.labels(**labels) if labels else self._metric

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if _state.enabled:
            self._child(labels).inc(amount)

    def observe(self, value: float, **labels: str) -> None:
        if _state.enabled:
            self._child(labels).observe(value)

    def set(self, value: float, **labels: str) -> None:
        if _state.enabled:
            self._child(labels).set(value)

    def declare(self, **labels: str) -> None:
        """Creates the series at zero, so that its first increment shows as an increase."""
        self._child(labels)

    def remove(self, **labels: str) -> None:
        """Forgets a series (a partition this member no longer holds)."""
        try:
            self._metric.remove(*(labels[name] for name in self._metric._labelnames))
        except KeyError:
            pass

    @contextmanager
    def time(self, **labels: str) -> Iterator[None]:
        """Observes the seconds the block took (a histogram)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start, **labels)


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Metric:
    return Metric(Counter(name, documentation, list(labels)))


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Metric:
    return Metric(Gauge(name, documentation, list(labels)))


def histogram(name: str, documentation: str, labels: Sequence[str] = (), buckets: Sequence[float] = _LATENCY_BUCKETS) -> Metric:
    return Metric(Histogram(name, documentation, list(labels), buckets=buckets))


SERVICE_INFO = Gauge("ecp_service_info", "Always 1: which service this process is.", ["service"])
HTTP_REQUESTS = histogram(
    "ecp_http_request_duration_seconds",
    "HTTP requests answered, by method, route template and status (the _count is the request count).",
    ["method", "route", "status"],
)
OUTBOX_PENDING = gauge("ecp_outbox_pending_events", "Events written to the outbox and not yet published.", ["collection"])
OUTBOX_OLDEST_AGE = gauge(
    "ecp_outbox_oldest_pending_age_seconds", "Age of the oldest event waiting in the outbox (0 when none).", ["collection"]
)
OUTBOX_PUBLISHED = counter("ecp_outbox_published_events", "Events the outbox relay published to Kafka.", ["topic"])
OUTBOX_RELAY_FAILURES = counter("ecp_outbox_relay_failures", "Outbox relay passes that failed (retried).")
CONSUMER_LAG = gauge(
    "ecp_consumer_lag_messages",
    "Messages in a partition after the consumer group's committed position.",
    ["group", "topic", "partition"],
)
EVENTS_HANDLED = counter(
    "ecp_events_handled",
    "Events a consumer group finished with, by type and outcome (handled, duplicate, dead_lettered).",
    ["group", "type", "outcome"],
)
EVENT_HANDLING = histogram("ecp_event_handling_seconds", "Time to handle one event, retries included.", ["group", "type"])
HANDLER_RETRIES = counter("ecp_event_handler_retries", "Handler attempts that failed and were retried.", ["group", "kind"])
DEAD_LETTERS = counter("ecp_dead_letters", "Messages a consumer group sent to a dead-letter topic.", ["group", "topic"])
READINESS = gauge("ecp_readiness_check_up", "1 when the dependency answered the readiness check at the last scrape.", ["check"])


def on_scrape(hook: ScrapeHook) -> None:
    """``hook`` updates gauges just before each scrape (a failing or slow hook leaves them as they were)."""
    _scrape_hooks.append(hook)


def clear_scrape_hooks() -> None:
    _scrape_hooks.clear()


async def _run_hook(hook: ScrapeHook) -> None:
    try:
        await asyncio.wait_for(hook(), SCRAPE_HOOK_TIMEOUT_S)
    except Exception as exc:  # the scrape still answers with what is known
        log.warning("metrics hook failed", hook=getattr(hook, "__qualname__", repr(hook)), error=repr(exc))


async def render_metrics() -> tuple[bytes, str]:
    """The text exposition format, after the scrape hooks ran: (body, content type)."""
    if _state.enabled and _scrape_hooks:
        await asyncio.gather(*(_run_hook(h) for h in list(_scrape_hooks)))
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """For a process without an HTTP app: /metrics on its own port (no scrape hooks run)."""
    start_http_server(port, addr=host)


# ---- traces ------------------------------------------------------------------------------------


class _AsgiHeaders:
    """Reads W3C trace headers straight from the ASGI scope's header list."""

    def __init__(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self._headers = headers

    def get(self, carrier: Any, key: str) -> list[str] | None:
        wanted = key.encode()
        values = [v.decode("latin-1") for k, v in self._headers if k.lower() == wanted]
        return values or None

    def keys(self, carrier: Any) -> list[str]:
        return [k.decode("latin-1") for k, _ in self._headers]


def _context_from(traceparent: str | None) -> Any:
    return propagate.extract({"traceparent": traceparent}) if traceparent else None


def traceparent_of(span: Span) -> str | None:
    """The W3C ``traceparent`` naming ``span`` (None when it is not a real span)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The ``traceparent`` of the work in hand: what an event created now carries."""
    if not _state.enabled:
        return None
    return traceparent_of(trace.get_current_span())


def inject_headers(headers: Any) -> None:
    """Adds the current trace context to an outgoing HTTP request's headers (a mutable mapping)."""
    if _state.enabled:
        propagate.inject(headers)


async def inject_into_request(request: Any) -> None:
    """An httpx request hook: the called service's spans join the caller's trace."""
    inject_headers(request.headers)


def _trace_id(span: Span) -> str | None:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid and ctx.trace_flags.sampled else None


class TelemetryMiddleware:
    """One pass per HTTP request: a server span (continuing the caller's trace) and the request
    histogram by route template. The route is read after routing, from FastAPI's matched route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _state.enabled or scope["path"] in _UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500  # what an exception escaping the app becomes
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        parent = propagate.extract({}, getter=_AsgiHeaders(scope.get("headers", ())))  # type: ignore[arg-type]
        with _tracer.start_as_current_span(method, context=parent, kind=SpanKind.SERVER, record_exception=False) as span:
            request_id = scope.get("state", {}).get("request_id")
            try:
                with log_context(trace_id=_trace_id(span)):
                    await self.app(scope, receive, send_observed)
            finally:
                matched = scope.get("route")
                route = getattr(matched, "path", None) or "unmatched"
                HTTP_REQUESTS.observe(time.perf_counter() - started, method=method, route=route, status=str(status))
                if span.is_recording():
                    span.update_name(f"{method} {route}")
                    span.set_attributes(
                        {"http.request.method": method, "http.route": route, "http.response.status_code": status}
                    )
                    if request_id:
                        span.set_attribute("ecp.request_id", request_id)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))


class ProducerSpan:
    """The relay publishing one event: ``traceparent`` is what the Kafka message header carries."""

    def __init__(self, span: Span | None, fallback: str | None) -> None:
        self._span = span
        self.traceparent = (traceparent_of(span) if span is not None else None) or fallback

    def end(self, error: BaseException | None = None) -> None:
        if self._span is None:
            return
        if error is not None:
            self._span.set_status(Status(StatusCode.ERROR, repr(error)[:200]))
        self._span.end()


def start_producer_span(
    *, topic: str, event_id: str, event_type: str, traceparent: str | None, queued_at: datetime | None
) -> ProducerSpan:
    """A span for the relay's publication of one outbox event, child of the event's own context."""
    if not _state.enabled or not traceparent:
        return ProducerSpan(None, traceparent)
    parent = _context_from(traceparent)
    if not trace.get_current_span(parent).get_span_context().trace_flags.sampled:
        return ProducerSpan(None, traceparent)  # not sampled: keep the producer's decision, add nothing
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "cloudevents.event_id": event_id,
        "cloudevents.event_type": event_type,
    }
    if queued_at is not None:
        when = queued_at if queued_at.tzinfo else queued_at.replace(tzinfo=UTC)
        attributes["ecp.outbox.wait_ms"] = round((datetime.now(UTC) - when).total_seconds() * 1000, 1)
    span = _tracer.start_span(f"publish {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes)
    return ProducerSpan(span, traceparent)


@contextmanager
def consumer_span(
    *, group: str, topic: str, partition: int, offset: int, event_id: str, event_type: str, traceparent: str | None
) -> Iterator[Span]:
    """The current span while a consumer group handles one event: what its handler does (events it
    writes, emails it sends) joins the trace the event came from."""
    if not _state.enabled:
        yield trace.INVALID_SPAN
        return
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
        "cloudevents.event_id": event_id,
        "cloudevents.event_type": event_type,
    }
    with _tracer.start_as_current_span(
        f"process {event_type.rsplit('.', 1)[-1]}",
        context=_context_from(traceparent),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
    ) as span:
        with log_context(trace_id=_trace_id(span)):
            yield span


def start_client_span(name: str, attributes: dict[str, str]) -> Span | None:
    """A span for a call to a dependency (a database command) made within a traced request or
    event; None outside one (the relay's idle polling would flood the traces) or when off."""
    if not _state.enabled or not trace.get_current_span().is_recording():
        return None
    return _tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def mark_failed(span: Span, reason: str) -> None:
    """Marks the span in hand as failed (a dead-lettered event, a failed delivery)."""
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, reason[:200]))


@contextmanager
def span(name: str, *, parent: str | None = None, **attributes: str | int | float | bool) -> Iterator[Span]:
    """An internal span around a step worth seeing in a trace (an SMTP delivery, a PDF render).
    ``parent``: the ``traceparent`` of the work this continues when it runs apart from it (a
    background scan of an uploaded file); by default the span in hand."""
    if not _state.enabled:
        yield NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
        return
    with _tracer.start_as_current_span(name, context=_context_from(parent), attributes=attributes) as current:
        with log_context(trace_id=_trace_id(current)):
            yield current
