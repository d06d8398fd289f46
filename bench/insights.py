"""Insights benchmark: events/s through the faust app versus a raw aiokafka consumer counting the
same events (the ratio, same run), and the time to rebuild the tables from their changelogs.

A synthetic campaign (tests/integration/insights_synthetic.py) of about N events is written to
throwaway topics; then, in this process:
1. a raw aiokafka consumer (one consumer, the four topics, JSON-decoding nothing) counts them all:
   the floor of reading them from this broker;
2. the insights app (InsightsStreams, its own app id, in-memory tables backed by changelog topics)
   folds them all: parse, dedup, table write, changelog write, offset commit;
3. a fresh app with the same id starts: its tables are rebuilt from the changelogs (the group's
   offsets are at the end, so nothing is folded again); the time from start to the tables being
   complete is the rebuild time.
Topics, changelogs and groups are deleted at the end.

    .local/venv/bin/python -m bench.insights [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer

from services.insights.consumers import InsightsStreams
from services.insights.settings import InsightsSettings
from services.insights.workdays import french_calendar
from tests.integration.insights_synthetic import SOURCES, Campaign, Topics, publish
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR

EVENTS_PER_FAMILY = 7.0 * 0.75 * (2 / 3) + 4 * 0.75 * (1 / 3) + 2 * 0.25  # the campaign's mix, ~4.9


async def raw_count(topics: Topics, expected: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to read every event once."""
    consumer = AIOKafkaConsumer(*(getattr(topics, s) for s in SOURCES), **OPERATOR.client_options(),
                                bootstrap_servers=BOOTSTRAP, group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=2000)
    await consumer.start()
    try:
        seen, started, cpu = 0, time.perf_counter(), time.process_time()
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batches.values())
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()


def app(topics: Topics, app_id: str) -> InsightsStreams:
    settings = InsightsSettings(app_id=app_id, kafka_username=OPERATOR.username, kafka_password=OPERATOR.password,
                                overdue_check_interval_s=3600, overdue_first_check_delay_s=3600, figures_interval_s=3600,
                                **{f"{name}_topic": getattr(topics, name) for name in (*SOURCES, "overdue", "figures")})
    return InsightsStreams(settings, french_calendar())


def records(streams: InsightsStreams) -> int:
    return sum(len(table) for table in streams.tables.values())


async def until(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the insights app did not get there in time")
        await asyncio.sleep(0.05)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    campaign = Campaign(families=max(1, round(args.events / EVENTS_PER_FAMILY)))
    topics = await Topics.created("bench-insights")
    app_id = f"insights-bench-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        total = await publish(topics, campaign)
        print(f"campaign: {campaign.families} families, {total} events written in {time.perf_counter() - started:.1f} s")

        raw_s, raw_cpu = await raw_count(topics, total)
        print(f"raw aiokafka consumer (counting): {total / raw_s:,.0f} events/s ({raw_s:.1f} s), "
              f"{total / raw_cpu:,.0f} events per CPU second")

        streams = app(topics, app_id)
        started = time.perf_counter()
        await streams.start()
        await until(lambda: streams.events_applied > 0, 300)
        flowing, cpu = time.perf_counter(), time.process_time()
        await until(lambda: streams.events_applied >= total, 3600)
        done, faust_cpu = time.perf_counter(), time.process_time() - cpu
        faust_s = done - flowing
        expected_records = records(streams)
        print(f"insights faust app (parse, dedup, table + changelog): {total / faust_s:,.0f} events/s ({faust_s:.1f} s from "
              f"the first event folded; start and group join before it: {flowing - started:.1f} s), {expected_records} records")
        print(f"  {total / faust_cpu:,.0f} events per CPU second of this process")
        print(f"ratio faust / raw: {raw_s / faust_s:.3f} in events/s (the faust app runs at {100 * raw_s / faust_s:.1f} % of "
              f"the raw rate); {raw_cpu / faust_cpu:.3f} in events per CPU second (the machine's other load left out)")
        await streams.stop()

        rebuilt = app(topics, app_id)
        started = time.perf_counter()
        await rebuilt.start()
        await until(lambda: rebuilt.recovered() and records(rebuilt) >= expected_records, 900)
        rebuild_s = time.perf_counter() - started
        print(f"rebuild from the changelogs: {rebuild_s:.1f} s for {expected_records} records of {total} events "
              f"(start and group join included); events folded again: {rebuilt.events_applied}")
        await rebuilt.stop()
    finally:
        await topics.delete(app_id)


if __name__ == "__main__":
    asyncio.run(main())
