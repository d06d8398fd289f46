"""What metrics and traces cost, measured in one process (not a test).

The journey benchmark's on/off rounds (``python -m bench.journey --telemetry-overhead``) run on a
machine shared with other work, whose noise is larger than the effect. Here the kernel's own code
paths run alone, each in blocks alternately with telemetry off and on, and the CPU seconds of
this process (all threads: the span exporter's background thread included) are compared:

- an HTTP request through the kernel's app factory (request histogram, server span);
- an event through the kernel's consumer (handling span, counters, histogram);
- an event through the relay's publication (producer span, counter) and the envelope's
  ``traceparent``;
- a database command within a traced request (the command listener's client span).

Spans really leave, in batches over OTLP/HTTP, to the running Jaeger (``make up``). Then one
family journey runs with a trace id, its spans are counted in Jaeger (server, consumer,
producer, internal), and the overhead per journey is those counts times the costs above, against
the CPU one journey costs the system (``--journey-cpu-s``, from bench.journey). Usage:
    python -m bench.telemetry [--requests 3000] [--events 3000] [--journey-cpu-s 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from bench.journey import RESULTS, traced_journey
from schemas.contracts.identity import AccountDeleted
from services.kernel import telemetry
from services.kernel.app import create_service_app
from services.kernel.envelope import event_json, new_event
from services.kernel.health import ReadinessCheck
from services.kernel.kafka import IncomingMessage
from services.kernel.outbox import outbox_entry
from services.kernel.relay import OutboxRelay
from services.kernel.settings import CommonSettings
from services.kernel.tests.test_consumer import make_consumer

JAEGER = f"http://127.0.0.1:{os.environ.get('ECP_JAEGER_UI_PORT', '16686')}"
OTLP = f"http://127.0.0.1:{os.environ.get('ECP_OTLP_HTTP_PORT', '4318')}"
BLOCKS = 6  # blocks per mode, alternated off/on so that drift weighs on both alike

router = APIRouter()


@router.get("/families/{family_id}/children")
async def children(family_id: str) -> dict[str, Any]:
    return {"family_id": family_id, "children": [{"first_name": "Léa", "level": "MS"}]}


async def no_checks(app: FastAPI) -> Sequence[ReadinessCheck]:
    return []


async def nothing(app: FastAPI) -> None:
    return None


async def cpu_of(block: Callable[[], Awaitable[None]], on: bool) -> float:
    telemetry.set_enabled(on)
    start = time.process_time()
    await block()
    if on:
        telemetry.flush()  # the export's CPU counts in this block
    return time.process_time() - start


async def per_operation(block: Callable[[], Awaitable[None]], operations: int) -> dict[str, float]:
    """CPU microseconds per operation, off and on (the median block of each mode)."""
    await cpu_of(block, True)  # warm-up: imports, caches, connection to Jaeger
    await cpu_of(block, False)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(BLOCKS):
        for on in (False, True):
            times[on].append(await cpu_of(block, on))
    off, on = (sorted(times[m])[BLOCKS // 2] / operations * 1e6 for m in (False, True))
    return {"off_us": round(off, 1), "on_us": round(on, 1), "overhead_us": round(on - off, 1)}


async def http_requests(n: int) -> dict[str, float]:
    app = create_service_app(CommonSettings(service_name="bench-telemetry"), title="t", description="d",
                             routers=[router], startup=no_checks, shutdown=nothing)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def block() -> None:
            caller = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            for i in range(n):
                response = await client.get(f"/families/f{i}/children", headers={"traceparent": caller})
                assert response.status_code == 200

        return await per_operation(block, n)


async def consumed_events(n: int) -> dict[str, float]:
    with telemetry.span("bench"):  # the events carry a traceparent, as the services' do
        values = [event_json(new_event(AccountDeleted(account_id=f"a{i}", deleted_at=datetime.now(UTC)),
                                       source="/bench", subject=f"a{i}")) for i in range(n)]

    async def handle(event: Any) -> None:
        return None

    async def block() -> None:
        messages = [IncomingMessage(topic="identity.account.v1", partition=0, offset=i, key=f"a{i}", value=v)
                    for i, v in enumerate(values)]
        consumer, _, _ = make_consumer(messages, handle)
        await consumer.consume_once()

    return await per_operation(block, n)


async def published_events(n: int) -> dict[str, float]:
    async def block() -> None:
        with telemetry.span("request"):
            entries = [outbox_entry(new_event(AccountDeleted(account_id=f"a{i}", deleted_at=datetime.now(UTC)),
                                              source="/bench", subject=f"a{i}"), "identity.account.v1") for i in range(n)]
        for entry in entries:
            span = OutboxRelay._producer_span(entry)
            OutboxRelay._message(entry, span.traceparent)
            span.end()
            telemetry.OUTBOX_PUBLISHED.inc(topic=entry["topic"])

    return await per_operation(block, n)


async def database_commands(n: int) -> dict[str, float]:
    """The command listener's work around each database command sent within a traced request."""
    from pymongo import monitoring

    from services.kernel.mongo import CommandSpans

    listener = CommandSpans()
    address = ("127.0.0.1", 27017)
    started = [monitoring.CommandStartedEvent({"find": "accounts", "filter": {"_id": i}}, "ecp_bench", i, address, None)
               for i in range(n)]
    done = [monitoring.CommandSucceededEvent(timedelta(milliseconds=1), {"ok": 1}, "find", i, address, None) for i in range(n)]

    async def block() -> None:
        with telemetry.span("request"):
            for begin, end in zip(started, done):
                listener.started(begin)
                listener.succeeded(end)

    return await per_operation(block, n)


async def journey_spans() -> dict[str, int]:
    """Spans of one family journey, by kind and service, read back from Jaeger."""
    trace_id = secrets.token_hex(16)
    j = await traced_journey(trace_id, f"bench.telemetry.{secrets.token_hex(4)}@example.org")
    if not j.finished:
        raise SystemExit(f"the journey failed: {j.error}")
    await asyncio.sleep(8)  # the services' batches leave every 2 s; the email hops end after the journey
    async with httpx.AsyncClient(timeout=10) as http:
        trace = (await http.get(f"{JAEGER}/api/traces/{trace_id}")).json()["data"][0]
    kinds: Counter[str] = Counter()
    for span in trace["spans"]:
        kinds[next((t["value"] for t in span["tags"] if t["key"] == "span.kind"), "internal")] += 1
    return dict(kinds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="HTTP requests per block")
    parser.add_argument("--events", type=int, default=3000, help="events per block (consumer, relay)")
    parser.add_argument("--journey-cpu-s", type=float, default=None,
                        help="system CPU seconds per journey with telemetry off (bench.journey's figure)")
    args = parser.parse_args()
    telemetry.configure("bench-telemetry", enabled=True, otlp_endpoint=OTLP, sample_ratio=1.0)
    costs = {
        "http_request": await http_requests(args.requests),
        "consumed_event": await consumed_events(args.events),
        "published_event": await published_events(args.events),
        "database_command": await database_commands(args.events),
    }
    spans = await journey_spans()
    per_journey_us = (spans.get("server", 0) * costs["http_request"]["overhead_us"]
                      + spans.get("consumer", 0) * costs["consumed_event"]["overhead_us"]
                      + spans.get("producer", 0) * costs["published_event"]["overhead_us"]
                      + spans.get("client", 0) * costs["database_command"]["overhead_us"])
    print("\n| one operation (CPU µs of this process, median of 6 blocks) | telemetry off | telemetry on | overhead |")
    print("|---|---|---|---|")
    for name, c in costs.items():
        print(f"| {name.replace('_', ' ')} | {c['off_us']} | {c['on_us']} | {c['overhead_us']} |")
    print(f"\none family journey's trace in Jaeger: {spans} spans by kind")
    print(f"telemetry's CPU per journey in the services ≈ {per_journey_us / 1000:.1f} ms "
          "(each kind of span of the journey × the overhead of its operation)")
    result: dict[str, Any] = {"costs": costs, "journey_spans": spans, "overhead_per_journey_ms": round(per_journey_us / 1000, 2)}
    if args.journey_cpu_s:
        ratio = per_journey_us / 1e6 / args.journey_cpu_s
        print(f"against {args.journey_cpu_s} CPU s per journey: +{ratio:.1%}")
        result["journey_cpu_s"] = args.journey_cpu_s
        result["overhead_ratio"] = round(1 + ratio, 4)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "telemetry.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written {RESULTS / 'telemetry.json'}")


if __name__ == "__main__":
    asyncio.run(main())
