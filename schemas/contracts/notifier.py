"""Contract of the events the notifier service publishes: the outcome of each (event, recipient) delivery.

Keyed by account id so an account's delivery outcomes stay in order. They carry no email
address and no link: other city systems read this topic.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from services.kernel.envelope import EventData, event_type

TOPIC = "notifier.delivery.v1"


@event_type
class NotificationSent(EventData):
    """An email was accepted by the SMTP server for one recipient of one event."""

    event_type = "NotificationSent"
    topic = TOPIC

    delivery_id: str = Field(description="Unique per (source event, recipient).")
    account_id: str
    source_event_id: str = Field(description="Id of the event this email tells about.")
    source_event_type: str
    template: str = Field(description="Name of the email template, e.g. activation.")
    message_id: str = Field(description="The email's Message-ID header, derived from the event id and recipient.")
    attempts: int = Field(ge=1, description="SMTP attempts it took.")
    sent_at: datetime


@event_type
class NotificationFailed(EventData):
    """An email could not be delivered and will not be retried (refused by the SMTP server,
    invalid address, unknown recipient, or too old to be worth sending)."""

    event_type = "NotificationFailed"
    topic = TOPIC

    delivery_id: str = Field(description="Unique per (source event, recipient).")
    account_id: str
    source_event_id: str
    source_event_type: str
    template: str
    reason: str = Field(description="One of smtp_refused, invalid_address, unknown_recipient, stale, link_expired.")
    smtp_code: int | None = Field(default=None, description="The SMTP reply code when the server refused it.")
    failed_at: datetime
