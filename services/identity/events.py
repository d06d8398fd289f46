"""Events the identity service publishes, keyed by account id: their models are the contract in
`schemas.contracts.identity`; what stays here is the service's own side of publishing them.
"""

from __future__ import annotations
from schemas.contracts.identity import (
    TOPIC,
    MAIL_TOPIC,
    AccountRegistered,
    AccountActivated,
    PasswordChanged,
    AccountDeleted,
    ActivationLinkIssued,
    PasswordResetLinkIssued,
    ExistingAccountRegistrationAttempted,
)


# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "accounts"

__all__ = [
    "TOPIC",
    "MAIL_TOPIC",
    "AccountRegistered",
    "AccountActivated",
    "PasswordChanged",
    "AccountDeleted",
    "ActivationLinkIssued",
    "PasswordResetLinkIssued",
    "ExistingAccountRegistrationAttempted",
    "OUTBOX_COLLECTION",
]
