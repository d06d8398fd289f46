"""The notifier's event handlers: keep the recipients projection, and turn events into emails
delivered exactly once per (event, recipient) — up to the window described in ``deliver``.

``notifier-mail`` reads the restricted ``identity.mail.v1`` (links, which carry their own
recipient); ``notifier-accounts`` reads ``identity.account.v1`` (the projection, the welcome and
password-changed emails, erasure). Each account's events are in order within a group, so the
projection is up to date when a PasswordChanged needs it.

``notifier-dossiers``, ``notifier-documents`` and ``notifier-enrolments`` read the household,
documents and enrolment topics: each event carries the family's account id, and the email goes
to the address the projection holds for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any, Protocol

from schemas.contracts.documents import DocumentScanned
from schemas.contracts.enrolment import DerogationDecided, EnrolmentConfirmed, EnrolmentRefused
from schemas.contracts.household import CorrectionRequested, DossierRejected, DossierValidated, HouseholdSubmitted
from schemas.contracts.identity import (
    AccountActivated,
    AccountDeleted,
    AccountRegistered,
    ActivationLinkIssued,
    ExistingAccountRegistrationAttempted,
    PasswordChanged,
    PasswordResetLinkIssued,
)
from services.kernel import telemetry
from services.kernel.consumer import TransientError
from services.kernel.envelope import CloudEvent, EventData, new_event
from services.kernel.logging import get_logger
from services.kernel.outbox import outbox_entry
from services.kernel.runtime import ConsumerSpec
from services.notifier import domain, events
from services.notifier.domain import DeliveryStatus, FailureReason
from services.notifier.mailer import PermanentSmtpError, TransientSmtpError
from services.notifier.render import Renderer, build_message
from services.notifier.settings import NotifierSettings
from services.notifier.store import Claim, ClaimState

log = get_logger(__name__)
# By template (activation, welcome...) and outcome: never by recipient.
EMAILS = telemetry.counter(
    "ecp_emails", "Emails the notifier finished with: sent, failed (refused by SMTP) or not_sent (no address).",
    ["template", "outcome", "reason"],
)
SMTP_TRANSACTION = telemetry.histogram("ecp_smtp_transaction_seconds", "One SMTP transaction (accepted or not).")
SMTP_RETRIES = telemetry.counter("ecp_smtp_retries", "SMTP attempts that failed transiently and were retried.")

SOURCE = "/services/notifier"
MAIL_GROUP = "notifier-mail"
ACCOUNTS_GROUP = "notifier-accounts"
DOSSIERS_GROUP = "notifier-dossiers"
DOCUMENTS_GROUP = "notifier-documents"
ENROLMENTS_GROUP = "notifier-enrolments"


class Store(Protocol):
    async def remember_recipient(
        self, account_id: str, email: str, display_name: str, *, registered_at: datetime | None = None
    ) -> dict[str, Any] | None: ...
    async def recipient(self, account_id: str) -> dict[str, Any] | None: ...
    async def is_forgotten(self, account_id: str) -> bool: ...
    async def forget(self, account_id: str, now: datetime) -> int: ...
    async def claim(self, document: dict[str, Any], *, owner: str, now: datetime, lease: timedelta) -> Claim: ...
    async def retry_noted(
        self, delivery_id: str, *, owner: str, error: str, now: datetime, lease: timedelta, next_attempt: bool = True
    ) -> int: ...
    async def finish(
        self, delivery_id: str, *, status: DeliveryStatus, fields: dict[str, Any], events: list[dict[str, Any]]
    ) -> None: ...
    async def record_failed(self, document: dict[str, Any], events: list[dict[str, Any]]) -> bool: ...


class Mailer(Protocol):
    async def send(self, message: Message, recipient: str) -> str: ...


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        store: Store,
        mailer: Mailer,
        *,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.mailer = mailer
        self.renderer = Renderer(settings)
        self._events_queued = events_queued
        self._now = clock
        self._sleep = sleep
        # Identifies this process's leases: its own retries may resume a delivery at once,
        # another process must wait for the lease to expire.
        self.owner = owner or f"{settings.service_name}-{uuid.uuid4().hex[:12]}"
        self._lease = timedelta(seconds=settings.delivery_lease_s)
        # pydantic keeps its parametrised generic classes in a weak cache: unreferenced,
        # CloudEvent[Model] is rebuilt (milliseconds of CPU) for most events parsed or published,
        # a third of the notifier's CPU per email. Holding the envelopes it reads and writes makes
        # every use a cache hit. (The kernel's event registry could hold them for every service.)
        read = [model for spec in self.consumer_specs() for model in spec.handlers]
        self._envelope_classes = [CloudEvent[m] for m in (*read, events.NotificationSent, events.NotificationFailed)]  # type: ignore[valid-type]

    def consumer_specs(self) -> list[ConsumerSpec]:
        mail_handlers: dict[type[EventData], Any] = {
            ActivationLinkIssued: self.on_mail_request,
            PasswordResetLinkIssued: self.on_mail_request,
            ExistingAccountRegistrationAttempted: self.on_mail_request,
        }
        account_handlers: dict[type[EventData], Any] = {
            AccountRegistered: self.on_registered,
            AccountActivated: self.on_activated,
            PasswordChanged: self.on_password_changed,
            AccountDeleted: self.on_deleted,
        }
        family = self.on_family_event
        # Every handler is idempotent by construction (a delivery's unique key per event and
        # recipient, a $set of the event's values): no processed-id bookkeeping.
        once = {"idempotent_handlers": True}
        return [
            ConsumerSpec(MAIL_GROUP, [ActivationLinkIssued.topic], mail_handlers, **once),
            ConsumerSpec(ACCOUNTS_GROUP, [AccountRegistered.topic], account_handlers, **once),
            ConsumerSpec(
                DOSSIERS_GROUP, [HouseholdSubmitted.topic],
                {HouseholdSubmitted: family, CorrectionRequested: family, DossierValidated: self.on_dossier_validated,
                 DossierRejected: family},
                **once,
            ),
            ConsumerSpec(DOCUMENTS_GROUP, [DocumentScanned.topic], {DocumentScanned: family}, **once),
            ConsumerSpec(
                ENROLMENTS_GROUP, [EnrolmentConfirmed.topic],
                {EnrolmentConfirmed: family, EnrolmentRefused: family, DerogationDecided: family},
                **once,
            ),
        ]

    # handlers

    async def on_mail_request(self, event: CloudEvent[Any]) -> None:
        """Mail requests carry their recipient: no projection look-up, so a link is emailed even
        if the account topic is behind. An erased account's late mail request is dropped."""
        data = event.data
        if await self.store.is_forgotten(data.account_id):
            log.info("mail request for an erased account dropped")
            return
        await self.notify(event, data.email, data.display_name)

    async def on_registered(self, event: CloudEvent[AccountRegistered]) -> None:
        d = event.data
        await self.store.remember_recipient(d.account_id, d.email, d.display_name, registered_at=d.registered_at)

    async def on_activated(self, event: CloudEvent[AccountActivated]) -> None:
        d = event.data
        known = await self.store.remember_recipient(d.account_id, d.email, d.display_name)
        if known is None:
            return  # erased meanwhile
        if d.role != "family":
            return  # a staff account: its invitation email comes from PasswordResetLinkIssued
        await self.notify(event, d.email, d.display_name)

    async def on_password_changed(self, event: CloudEvent[PasswordChanged]) -> None:
        known = await self.store.recipient(event.data.account_id)
        if known is None:
            await self._fail_before_sending(event, None, FailureReason.UNKNOWN_RECIPIENT)
            return
        await self.notify(event, known["email"], known.get("display_name"))

    async def on_family_event(self, event: CloudEvent[Any]) -> None:
        """A household, documents or enrolment event: the email (if the event asks for one) goes
        to the account's projected address. An erased account's event is dropped; an account the
        projection never saw is logged as failed (``unknown_recipient``), not retried."""
        if domain.mail_for(event.name, event.data.model_dump()) is None:
            return  # e.g. a clean virus scan
        account_id = event.data.account_id
        known = await self.store.recipient(account_id)
        if known is None:
            if await self.store.is_forgotten(account_id):
                log.info("event for an erased account dropped")
                return
            await self._fail_before_sending(event, None, FailureReason.UNKNOWN_RECIPIENT)
            return
        await self.notify(event, known["email"], known.get("display_name"), extra=self._child_named(known, event))

    async def on_dossier_validated(self, event: CloudEvent[DossierValidated]) -> None:
        """Keeps the children's first names (the enrolment emails name the child; enrolment events
        carry no name), then sends the « dossier validé » email."""
        d = event.data
        await self.store.remember_children(d.account_id, {c.child_id: c.first_name for c in d.children})
        await self.on_family_event(event)

    @staticmethod
    def _child_named(known: dict[str, Any], event: CloudEvent[Any]) -> dict[str, str]:
        """The child an enrolment event is about, by first name, when the projection knows it (a
        validated file seen before; else the email says « votre enfant »)."""
        name = (known.get("children") or {}).get(str(getattr(event.data, "child_id", "") or ""))
        return {"child_first_name": name} if name else {}

    async def on_deleted(self, event: CloudEvent[AccountDeleted]) -> None:
        anonymised = await self.store.forget(event.data.account_id, self._now())
        log.info("account forgotten, delivery log anonymised", deliveries=anonymised)

    # delivery

    async def notify(self, event: CloudEvent[Any], recipient: str | None, display_name: str | None,
                     *, extra: dict[str, str] | None = None) -> None:
        """Emails ``recipient`` the mail ``event`` asks for, if any (``extra``: what the projection
        adds to the event's data for the templates, e.g. the child's first name)."""
        # The recipient's name comes from the event or, for events without one, the projection.
        data = {**event.data.model_dump(), "display_name": display_name or getattr(event.data, "display_name", ""), **(extra or {})}
        mail = domain.mail_for(event.name, data)
        if mail is None:
            return
        now = self._now()
        if recipient is None or not domain.valid_address(recipient):
            await self._fail_before_sending(event, recipient, FailureReason.INVALID_ADDRESS, mail)
            return
        if domain.too_old(event.time, now, timedelta(hours=self.settings.max_event_age_hours)):
            await self._fail_before_sending(event, recipient, FailureReason.STALE, mail)
            return
        expires_at = data.get("expires_at")
        if mail.carries_link and isinstance(expires_at, datetime) and expires_at <= now:
            await self._fail_before_sending(event, recipient, FailureReason.LINK_EXPIRED, mail)
            return
        rendered = self.renderer.render(mail, data, event.time)
        await self.deliver(event, mail, recipient, display_name, rendered)

    async def deliver(
        self, event: CloudEvent[Any], mail: domain.MailSpec, recipient: str, display_name: str | None, rendered: Any
    ) -> None:
        """Exactly one email per (event, recipient), with one window.

        1. Record ``sending`` under the unique key (event id, recipient) BEFORE talking SMTP.
           A redelivered event finds it ``sent``/``failed`` and does nothing.
        2. SMTP transaction. 5xx → ``failed`` + NotificationFailed. Unreachable / 4xx → retry a
           few times here, then raise TransientError: the consumer retries with backoff for as
           long as the server is down (blocking the partition, which is right: nothing else
           could be sent either).
        3. Record ``sent`` + NotificationSent in one write.

        The window: a crash after the server accepted the message (end of DATA, 250) and
        before step 3 leaves ``sending``; the next attempt (after the lease expires) sends it
        again. We choose at-least-once on that window — a lost activation link locks a family
        out, a duplicate is only noise — and the duplicate carries the same Message-ID and
        Date, so a receiving system can drop it. The window lasts one database write.
        """
        did = domain.delivery_id(event.id, recipient)
        claim = await self.store.claim(
            self._delivery_document(event, mail, did, recipient, display_name), owner=self.owner, now=self._now(), lease=self._lease
        )
        if claim.state == ClaimState.DONE:
            log.info("delivery already done, skipped", delivery_id=did)
            return
        if claim.state == ClaimState.BUSY:
            raise TransientError(f"delivery {did} is being sent by another process")
        if claim.state == ClaimState.RESUMED:
            log.warning("resuming an unfinished delivery: it may be a duplicate", delivery_id=did, attempts=claim.attempts)
        message = build_message(
            rendered, sender=self.settings.sender, recipient=recipient, display_name=display_name, event_id=event.id, date=event.time
        )
        attempts = claim.attempts
        delay = self.settings.smtp_backoff_initial_s
        for round_ in range(self.settings.smtp_attempts):
            try:
                with telemetry.span("smtp send", template=mail.template), SMTP_TRANSACTION.time():
                    reply = await self.mailer.send(message, recipient)
            except PermanentSmtpError as exc:
                await self._finish_failed(event, mail, did, attempts, FailureReason.SMTP_REFUSED, domain.redact(str(exc), recipient), exc.code)
                return
            except TransientSmtpError as exc:
                error = domain.redact(str(exc), recipient)
                log.warning("SMTP transient failure", delivery_id=did, error=error, attempt=attempts)
                SMTP_RETRIES.inc()
                if round_ + 1 == self.settings.smtp_attempts:
                    # Hand back to the consumer's unbounded backoff; the next call resumes the
                    # delivery (same owner) and counts its attempt in claim().
                    await self.store.retry_noted(
                        did, owner=self.owner, error=error, now=self._now(), lease=self._lease, next_attempt=False
                    )
                    raise TransientError(f"SMTP unavailable: {error}") from exc
                attempts = await self.store.retry_noted(did, owner=self.owner, error=error, now=self._now(), lease=self._lease) or attempts + 1
                await self._sleep(delay)
                delay *= 2
            else:
                await self._finish_sent(event, mail, did, attempts, recipient, reply)
                return

    def _delivery_document(
        self, event: CloudEvent[Any], mail: domain.MailSpec, did: str, recipient: str | None, display_name: str | None
    ) -> dict[str, Any]:
        return {
            "_id": did,
            "account_id": event.data.account_id,
            "event_id": event.id,
            "event_type": event.name,
            "event_time": event.time,
            "template": mail.template,
            "subject": mail.subject,
            "message_id": domain.message_id(event.id, recipient) if recipient else None,
            "to": recipient,
            "to_masked": domain.mask_address(recipient),
            "correlation_id": event.correlationid,
        }

    async def _finish_sent(
        self, event: CloudEvent[Any], mail: domain.MailSpec, did: str, attempts: int, recipient: str, reply: str
    ) -> None:
        now = self._now()
        outcome = events.NotificationSent(
            delivery_id=did, account_id=event.data.account_id, source_event_id=event.id, source_event_type=event.name,
            template=mail.template, message_id=domain.message_id(event.id, recipient), attempts=attempts, sent_at=now,
        )
        fields = {"sent_at": now, "updated_at": now, "attempts": attempts, "smtp_reply": domain.redact(reply, recipient)}
        await self.store.finish(did, status=DeliveryStatus.SENT, fields=fields, events=[self._entry(outcome, event)])
        self._events_queued()
        log.info("email sent", delivery_id=did, template=mail.template, attempts=attempts)
        EMAILS.inc(template=mail.template, outcome="sent", reason="")

    async def _finish_failed(
        self, event: CloudEvent[Any], mail: domain.MailSpec, did: str, attempts: int,
        reason: FailureReason, error: str, code: int | None,
    ) -> None:
        now = self._now()
        outcome = self._failed_event(event, did, mail.template, reason, code, now)
        fields = {"failed_at": now, "updated_at": now, "attempts": attempts, "reason": reason, "last_error": error, "smtp_code": code}
        await self.store.finish(did, status=DeliveryStatus.FAILED, fields=fields, events=[self._entry(outcome, event)])
        self._events_queued()
        log.warning("email refused", delivery_id=did, reason=reason, smtp_code=code)
        EMAILS.inc(template=mail.template, outcome="failed", reason=str(reason))

    async def _fail_before_sending(
        self, event: CloudEvent[Any], recipient: str | None, reason: FailureReason, mail: domain.MailSpec | None = None
    ) -> None:
        mail = mail or domain.mail_for(event.name, event.data.model_dump())
        if mail is None:
            return
        now = self._now()
        did = domain.delivery_id(event.id, recipient or f"account:{event.data.account_id}")
        outcome = self._failed_event(event, did, mail.template, reason, None, now)
        document = {
            **self._delivery_document(event, mail, did, recipient, None),
            "reason": reason, "attempts": 0, "created_at": now, "failed_at": now, "updated_at": now,
        }
        if await self.store.record_failed(document, [self._entry(outcome, event)]):
            self._events_queued()
            EMAILS.inc(template=mail.template, outcome="not_sent", reason=str(reason))
        log.warning("email not sent", delivery_id=did, reason=reason)

    @staticmethod
    def _failed_event(
        event: CloudEvent[Any], did: str, template: str, reason: FailureReason, code: int | None, now: datetime
    ) -> events.NotificationFailed:
        return events.NotificationFailed(
            delivery_id=did, account_id=event.data.account_id, source_event_id=event.id, source_event_type=event.name,
            template=template, reason=reason, smtp_code=code, failed_at=now,
        )

    @staticmethod
    def _entry(outcome: EventData, cause: CloudEvent[Any]) -> dict[str, Any]:
        # Keyed by account id; the delivery's outcome continues the chain of the event it tells about.
        envelope = new_event(
            outcome, source=SOURCE, subject=outcome.account_id,  # type: ignore[attr-defined]
            correlation_id=cause.correlationid, causation_id=cause.id,
        )
        return outbox_entry(envelope, events.TOPIC)


def handlers_summary(specs: list[ConsumerSpec]) -> Mapping[str, list[str]]:
    """Which event types each group handles (for the docs and a unit test)."""
    return {s.group_id: sorted(m.event_type for m in s.handlers) for s in specs}
