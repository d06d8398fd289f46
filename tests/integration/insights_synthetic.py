"""A synthetic campaign for the insights app on throwaway topics: N families through the five
public event types, built with the contracts' own models, and the figures they must give. Used
by the crash test (tests/integration/test_insights.py) and the benchmark (bench/insights.py), which
point a private insights app (its own app id) at these topics, never at the real ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer

from schemas.contracts.documents import DocumentUploaded
from schemas.contracts.enrolment import EnrolmentConfirmed, EnrolmentRequested, SchoolCapacityChanged
from schemas.contracts.household import Address, Child, DossierValidated, HouseholdSubmitted
from schemas.contracts.identity import AccountActivated, AccountRegistered
from services.kernel.envelope import EventData, event_json, new_event
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR, create_test_topic, delete_topics

SOURCES = ("account", "document", "dossier", "enrolment", "school")


@dataclass
class Topics:
    account: str
    document: str
    dossier: str
    enrolment: str
    school: str
    overdue: str
    figures: str

    @classmethod
    async def created(cls, prefix: str) -> Topics:
        return cls(*[await create_test_topic(f"{prefix}.{name}") for name in (*SOURCES, "overdue", "figures")])

    def settings_env(self) -> dict[str, str]:
        return {f"ECP_{name.upper()}_TOPIC": getattr(self, name) for name in (*SOURCES, "overdue", "figures")}

    async def delete(self, app_id: str | None = None) -> None:
        names = [getattr(self, n) for n in (*SOURCES, "overdue", "figures")]
        names += [n + ".dlq" for n in names]
        if app_id:
            names += [f"{app_id}-{table}-changelog"
                      for table in ("accounts", "documents", "dossiers", "enrolments", "schools", "files_per_day")]
            names.append(f"{app_id}-__assignor-__leader")
        for name in names:
            try:
                await delete_topics(name)
            except Exception:  # noqa: BLE001 - a topic faust never created
                pass


@dataclass
class Campaign:
    """What the generated families did: 1 in 4 stops after activation, the others submit; of
    those, 1 in 3 waits (and, being submitted 12 days ago, is overdue), the rest are validated and
    enrolled in CP at Jean-Jaurès, whose CP has `capacity` seats."""

    families: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    school_year: str = "2027-2028"
    capacity: int = 500

    def family(self, i: int) -> str:
        return f"fam-{i:07d}"

    def submits(self, i: int) -> bool:
        return i % 4 != 0

    def waits(self, i: int) -> bool:
        return self.submits(i) and i % 3 == 0

    def enrolled(self, i: int) -> bool:
        return self.submits(i) and not self.waits(i)

    @property
    def expected_status(self) -> dict[str, int]:
        waiting = sum(self.waits(i) for i in range(self.families))
        validated = sum(self.enrolled(i) for i in range(self.families))
        return {"submitted": waiting, "corrections_requested": 0, "validated": validated, "rejected": 0}

    @property
    def expected_overdue(self) -> set[str]:
        return {f"dos-{i:07d}" for i in range(self.families) if self.waits(i)}

    @property
    def submitted_at(self) -> datetime:
        return self.now - timedelta(days=12)

    @property
    def validated_at(self) -> datetime:
        return self.submitted_at + timedelta(hours=5)

    @property
    def expected_per_day(self) -> list[dict[str, object]]:
        """Files submitted and decided per Paris day."""
        paris = ZoneInfo("Europe/Paris")
        days: dict[str, dict[str, int]] = {}
        for moment, count, n in ((self.submitted_at, "submitted", sum(self.submits(i) for i in range(self.families))),
                                 (self.validated_at, "decided", self.expected_status["validated"])):
            day = days.setdefault(moment.astimezone(paris).date().isoformat(), {"submitted": 0, "decided": 0})
            day[count] += n
        return [{"day": day, **c} for day, c in sorted(days.items())]

    def events(self) -> Iterator[tuple[str, str, EventData]]:
        """(source, key, data) in each aggregate's order."""
        long_ago = self.submitted_at
        yield "school", "elem-jaures", SchoolCapacityChanged(
            school_id="elem-jaures", school_name="École élémentaire Jean-Jaurès", level="CP", school_year=None,
            capacity=self.capacity, changed_at=long_ago)
        for i in range(self.families):
            account, dossier = self.family(i), f"dos-{i:07d}"
            yield "account", account, AccountRegistered(account_id=account, email=f"{account}@example.org",
                                                         display_name="Famille", registered_at=long_ago)
            yield "account", account, AccountActivated(account_id=account, email=f"{account}@example.org",
                                                        display_name="Famille", activated_at=long_ago, role="family")
            if not self.submits(i):
                continue
            document = f"doc-{i:07d}"
            yield "document", document, DocumentUploaded(document_id=document, account_id=account, kind="proof_of_address",
                                                         content_type="application/pdf", size=1000, sha256="0" * 64,
                                                         uploaded_at=long_ago)
            yield "dossier", dossier, HouseholdSubmitted(dossier_id=dossier, account_id=account, submitted_at=long_ago,
                                                         document_ids=[document])
            if self.waits(i):
                continue
            child = f"child-{i:07d}"
            yield "dossier", dossier, DossierValidated(
                dossier_id=dossier, account_id=account, document_ids=[document], validated_at=self.validated_at,
                address=Address(number="12", street="rue des Lilas", postcode="45190", town="Montclair-sur-Loire"),
                children=[Child(child_id=child, first_name="Léa", last_name="Martin", birth_date="2021-03-14")])
            enrolment = f"enr-{i:07d}"
            yield "enrolment", enrolment, EnrolmentRequested(
                enrolment_id=enrolment, account_id=account, child_id=child, school_year=self.school_year, level="CP",
                sector_school_id="elem-jaures", status="confirmed", requested_at=long_ago + timedelta(hours=6))
            yield "enrolment", enrolment, EnrolmentConfirmed(
                enrolment_id=enrolment, account_id=account, child_id=child, school_id="elem-jaures", school_name="Jaurès",
                level="CP", school_year=self.school_year, reference=f"INS-2027-{i:08X}", confirmed_at=long_ago + timedelta(hours=6))

    def count(self) -> int:
        return sum(1 for _ in self.events())


async def publish(topics: Topics, campaign: Campaign, *, duplicate_every: int = 0, limit: int | None = None,
                  skip: int = 0) -> int:
    """Publishes the campaign's events (from ``skip``, at most ``limit``), each ``duplicate_every``-th
    one twice (the same event id: an at-least-once redelivery). Returns how many were sent."""
    producer = AIOKafkaProducer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP, linger_ms=20,
                                max_batch_size=256 * 1024, acks="all")
    await producer.start()
    sent = 0
    try:
        for n, (source, key, data) in enumerate(campaign.events()):
            if n < skip:
                continue
            if limit is not None and n >= skip + limit:
                break
            value = event_json(new_event(data, source="/tests/insights", subject=key, event_id=str(uuid.uuid4())))
            for _ in range(2 if duplicate_every and n % duplicate_every == 0 else 1):
                await producer.send(getattr(topics, source), value=value, key=key.encode())
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent
