"""Events the notifier publishes on `notifier.delivery.v1`: their models are the contract in
`schemas.contracts.notifier`; what stays here is the service's own side of publishing them.
"""

from __future__ import annotations
from schemas.contracts.notifier import (
    TOPIC,
    NotificationSent,
    NotificationFailed,
)


# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "deliveries"

__all__ = [
    "TOPIC",
    "NotificationSent",
    "NotificationFailed",
    "OUTBOX_COLLECTION",
]
