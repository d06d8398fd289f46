"""The faust-streaming app: what the insights service reacts to, and the tables it keeps.

Five agents read the public topics (never ``identity.mail.v1``) and fold each event into one
record per aggregate (``domain.apply_*``) kept in a faust Table. Each Table is backed by its
changelog topic ``<app id>-<table>-changelog`` and kept in memory: a restart rebuilds it from
the changelog before the agents resume from the group's committed offsets. Nothing is read from
another service's database. A sixth agent reads back the service's own DossierOverdue events to
mark each file announced (a table can only be written from a stream: faust refuses a write from a
timer). The files submitted and decided per day are a tumbling windowed table (one-day windows,
the town's days), counted as the file events are folded. The app is built by ``InsightsStreams``
(called in the lifespan): nothing at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context

from schemas import contracts
from services.insights import domain, events
from services.insights.domain import Record, WorkCalendar
from services.insights.settings import InsightsSettings
from services.kernel import telemetry
from services.kernel.envelope import UnknownEventType, event_json, parse_event
from services.kernel.kafka import DLQ_SUFFIX, KafkaAuth
from services.kernel.logging import get_logger

log = get_logger(__name__)

# The faust app id's default: faust's consumer group is named after the app (schemas/topics.yaml grants it).
INSIGHTS_GROUP = "insights"

EVENTS = telemetry.counter("ecp_insights_events_total", "Events read by the insights tables, by topic and outcome.",
                           ["topic", "outcome"])
TABLE_RECORDS = telemetry.gauge("ecp_insights_table_records", "Records held per insights table.", ["table"])
OVERDUE_SENT = telemetry.counter("ecp_insights_overdue_sent_total", "DossierOverdue events sent.")
FIGURES_SENT = telemetry.counter("ecp_insights_figures_sent_total", "CampaignFigures snapshots sent.")

Apply = Callable[[Record | None, str, str, dict[str, Any]], Record | None]


def broker_credentials(auth: KafkaAuth) -> faust.SASLCredentials | None:
    """The service's principal (the same settings the kernel's aiokafka clients use), for faust."""
    if not auth.username:
        return None
    ssl_context = create_ssl_context(cafile=auth.ssl_cafile) if auth.ssl_cafile else None
    return faust.SASLCredentials(username=auth.username, password=auth.password, mechanism=auth.mechanism,
                                 ssl_context=ssl_context)


class InsightsStreams:
    """The faust app, its tables and agents, and the two periodic jobs (overdue files, figures)."""

    TABLES = ("accounts", "documents", "dossiers", "enrolments", "schools")

    def __init__(self, settings: InsightsSettings, calendar: WorkCalendar,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        contracts.load_all()
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        brokers = [f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")]
        self.app = faust.App(
            settings.app_id,
            broker=brokers,
            broker_credentials=broker_credentials(KafkaAuth.of(settings)),
            store=settings.table_store,
            autodiscover=False,
            web_enabled=False,
            # The changelog topics get the source topics' partitions: co-partitioned tables.
            topic_partitions=3,
            topic_replication_factor=settings.topics_replication_factor or 1,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
        )
        self.tables = {name: self.app.Table(name, partitions=3) for name in self.TABLES}
        # Files submitted and decided per day: faust tumbling one-day windows, keyed by the count and
        # the source partition ("submitted:2"). A table's changelog entry goes to the partition of
        # the event being processed, so a key written from one source partition only stays whole in
        # its changelog (a key "submitted" written from all three would be three values there, the
        # last one read winning at a rebuild); the API sums the partitions. Windows are cut on the
        # event's own time (submission, decision) read as the town's wall clock (window_timestamp).
        self._window_time = 0.0
        self.day_counts = self.app.Table("files_per_day", default=int, partitions=3).tumbling(
            timedelta(days=1), expires=timedelta(days=settings.day_windows_kept)).relative_to(lambda event: self._window_time)
        self._topics = {t: self.app.topic(t, key_type=bytes, value_type=bytes, key_serializer="raw",
                                          value_serializer="raw")
                        for t in (settings.account_topic, settings.document_topic, settings.dossier_topic,
                                  settings.enrolment_topic, settings.school_topic, settings.overdue_topic,
                                  settings.figures_topic)}
        self._agent(settings.account_topic, "accounts", domain.apply_account)
        self._agent(settings.document_topic, "documents", domain.apply_document)
        self._agent(settings.dossier_topic, "dossiers", domain.apply_dossier)
        self._agent(settings.enrolment_topic, "enrolments", domain.apply_enrolment)
        self._agent(settings.school_topic, "schools", domain.apply_school)
        self._agent(settings.overdue_topic, "dossiers", domain.apply_dossier)
        # DossierOverdue ids sent but not read back yet: not sent twice by the next check.
        self._announced: set[str] = set()
        self._jobs: list[asyncio.Task[None]] = []
        self.events_applied = 0

    def _agent(self, topic: str, table_name: str, apply: Apply) -> None:
        table = self.tables[table_name]
        dlq = self.app.topic(topic + DLQ_SUFFIX, key_serializer="raw", value_serializer="raw")

        async def fold(stream: Any) -> None:
            async for message in stream.events():
                outcome = await self._fold_one(table, apply, message, dlq)
                EVENTS.inc(topic=topic, outcome=outcome)

        fold.__name__ = fold.__qualname__ = f"fold_{topic.replace('.', '_')}"
        self.app.agent(self._topics[topic], name=f"{self.settings.app_id}.{fold.__name__}")(fold)

    async def _fold_one(self, table: Any, apply: Apply, message: Any, dlq: Any) -> str:
        raw: bytes = message.value
        try:
            event = parse_event(raw)
        except UnknownEventType:
            return "ignored"
        except ValueError as error:
            log.warning("malformed event sent to dead letters", topic=message.message.topic, error=str(error)[:200])
            await dlq.send(key=message.key, value=raw, headers=[
                ("dlq.consumer_group", self.settings.app_id.encode()), ("dlq.error", str(error)[:500].encode()),
                ("dlq.original_topic", message.message.topic.encode()),
                ("dlq.original_partition", str(message.message.partition).encode()),
                ("dlq.original_offset", str(message.message.offset).encode()),
                ("dlq.failed_at", datetime.now(UTC).isoformat().encode())])
            return "malformed"
        key = event.subject
        updated = apply(table.get(key), event.name, event.id, event.data.model_dump())
        if updated is None:
            return "unchanged"
        table[key] = updated
        self.events_applied += 1
        if table is self.tables["dossiers"]:
            self._count_per_day(event.name, event.data.model_dump(), message.message.partition)
        if event.name == "DossierOverdue":
            self._announced.discard(event.id)
        return "applied"

    def _count_per_day(self, name: str, data: dict[str, Any], partition: int) -> None:
        """Adds the file event to its day's window: only once the record applied it, so an event
        delivered twice (found in the record's applied ids) is counted once."""
        counted = domain.day_count(name, data)
        if counted is None:
            return
        kind, moment = counted
        self._window_time = domain.window_timestamp(moment, self.calendar.zone)
        key = f"{kind}:{partition}"
        # value(), not current(): faust's current() reads the window of the Kafka message's timestamp,
        # ignoring relative_to; value() reads the window relative_to chooses, the one written.
        self.day_counts[key] = self.day_counts[key].value() + 1

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.app.start()
        self._jobs = [asyncio.create_task(self._every(self.settings.overdue_check_interval_s, self.announce_overdue,
                                                      first_delay=self.settings.overdue_first_check_delay_s),
                                          name="insights-overdue"),
                      asyncio.create_task(self._every(self.settings.figures_interval_s, self.publish_figures,
                                                      first_delay=self.settings.figures_interval_s),
                                          name="insights-figures")]
        telemetry.on_scrape(self._observe_tables)

    async def stop(self) -> None:
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        await self.app.stop()

    async def _every(self, interval_s: float, job: Callable[[], Any], *, first_delay: float) -> None:
        await self.app.tables.recovery.completed.wait()
        await asyncio.sleep(first_delay)
        while True:
            try:
                await job()
            except Exception as error:  # the next round retries; the job must not die with Kafka down
                log.warning("insights job failed", job=job.__name__, error=repr(error))
            await asyncio.sleep(interval_s)

    def recovered(self) -> bool:
        return self.app.tables.recovery.completed.is_set()

    async def ready_tables(self) -> None:
        if not self.recovered():
            raise RuntimeError("tables still being rebuilt from their changelogs")

    async def ready_kafka(self) -> None:
        if not self.app.consumer.assignment():
            raise RuntimeError("no partition assigned yet")

    async def _observe_tables(self) -> None:
        for name, table in self.tables.items():
            TABLE_RECORDS.set(float(len(table)), table=name)

    # ------------------------------------------------------------------ what is read

    def records(self, table: str) -> list[Record]:
        return list(self.tables[table].values())

    def per_day(self) -> list[dict[str, Any]]:
        """Files submitted and decided per day (the town's days), from the windowed table."""
        return domain.per_day(self.day_counts.table.data.items())

    def document_kinds(self) -> dict[str, str]:
        return {d["document_id"]: d["kind"] for d in self.records("documents")}

    def overdue_files(self, now: datetime | None = None) -> list[domain.Overdue]:
        now = now or self.clock()
        found = (domain.waiting_overdue(d, now, self.settings.overdue_working_days, self.calendar)
                 for d in self.records("dossiers"))
        return sorted((o for o in found if o is not None), key=lambda o: o.waiting_since)

    def figures(self) -> dict[str, Any]:
        dossiers, enrolments = self.records("dossiers"), self.records("enrolments")
        steps = domain.family_steps(self.records("accounts"), self.records("documents"), dossiers, enrolments)
        return domain.campaign_figures(self.settings.campaign, self.clock(), domain.files_by_status(dossiers),
                                       len(self.overdue_files()), domain.funnel(steps, self.calendar)["reached"],
                                       domain.schools(enrolments, domain.deleted_accounts(self.records("accounts")),
                                                      self.records("schools")))

    # ------------------------------------------------------------------ what is published

    async def announce_overdue(self) -> int:
        """Sends one DossierOverdue per overdue file not announced yet; returns how many."""
        now, sent = self.clock(), 0
        for dossier in self.records("dossiers"):
            overdue = domain.overdue_to_announce(dossier, now, self.settings.overdue_working_days, self.calendar)
            if overdue is None or overdue.event_id in self._announced:
                continue
            event = events.dossier_overdue(overdue, now)
            delivered = await self._topics[self.settings.overdue_topic].send(
                key=overdue.dossier_id.encode(), value=event_json(event))
            await delivered
            self._announced.add(overdue.event_id)
            OVERDUE_SENT.inc()
            sent += 1
        if sent:
            log.info("overdue files announced", count=sent)
        return sent

    async def publish_figures(self) -> None:
        event = events.campaign_figures(self.figures())
        delivered = await self._topics[self.settings.figures_topic].send(
            key=self.settings.campaign.encode(), value=event_json(event))
        await delivered
        FIGURES_SENT.inc()
