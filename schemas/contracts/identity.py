"""Contract of the events the identity service publishes, keyed by account id.

`identity.account.v1` is read by every service. `identity.mail.v1` is restricted: it carries
secret links and is read by the notifier alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from services.kernel.envelope import EventData, event_type

TOPIC = "identity.account.v1"
MAIL_TOPIC = "identity.mail.v1"


@event_type
class AccountRegistered(EventData):
    """An account was created and waits for activation from the emailed link."""

    event_type = "AccountRegistered"
    topic = TOPIC

    account_id: str
    email: EmailStr = Field(description="Normalised (lower-case) email; the notifier's recipient projection reads it.")
    display_name: str
    registered_at: datetime


@event_type
class AccountActivated(EventData):
    """The owner followed the activation link: the account may log in and declare a household."""

    event_type = "AccountActivated"
    topic = TOPIC

    account_id: str
    email: EmailStr
    display_name: str
    activated_at: datetime
    role: Literal["family", "agent", "admin"] = Field(
        default="family", description="Staff accounts (agent, admin) are created active by an admin."
    )


@event_type
class PasswordChanged(EventData):
    """The password changed (by its owner or through a reset); every refresh token was revoked."""

    event_type = "PasswordChanged"
    topic = TOPIC

    account_id: str
    changed_at: datetime
    via: Literal["change", "reset"]


@event_type
class AccountDeleted(EventData):
    """The account is erased (RGPD): every service forgets or anonymises it. Its owner asked
    for it, or it reached the end of its retention (never activated, or dormant)."""

    event_type = "AccountDeleted"
    topic = TOPIC

    account_id: str
    deleted_at: datetime
    reason: Literal["owner", "never_activated", "dormant"] | None = Field(
        default=None, description="Why: the owner's request (also when absent), or the retention policy.")


@event_type
class ActivationLinkIssued(EventData):
    """Restricted. Email this activation link (single use, valid until expires_at) to the owner."""

    event_type = "ActivationLinkIssued"
    topic = MAIL_TOPIC

    account_id: str
    email: EmailStr
    display_name: str
    link: str
    expires_at: datetime


@event_type
class PasswordResetLinkIssued(EventData):
    """Restricted. Email this password link (single use) to the owner: a reset they asked for,
    or the invitation of a staff account created by an admin."""

    event_type = "PasswordResetLinkIssued"
    topic = MAIL_TOPIC

    account_id: str
    email: EmailStr
    display_name: str
    link: str
    expires_at: datetime
    purpose: Literal["reset", "staff_invitation"] = "reset"


@event_type
class ExistingAccountRegistrationAttempted(EventData):
    """Restricted. Someone tried to create an account with this address, which already has one:
    tell the owner (the person registering was told nothing, to prevent account enumeration)."""

    event_type = "ExistingAccountRegistrationAttempted"
    topic = MAIL_TOPIC

    account_id: str
    email: EmailStr
    display_name: str
    attempted_at: datetime
