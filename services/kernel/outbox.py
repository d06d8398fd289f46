"""Transactional outbox embedded in each aggregate document.

A state change and the events it causes are one single-document write: the events are pushed
onto the aggregate's ``outbox`` array in the same update that changes its state. That needs no
multi-document transaction, so the same code runs on a standalone mongod.

The relay (``services.kernel.relay``) publishes each aggregate's pending events in array order,
then pulls them. These helpers are pure: they build the update documents a store sends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.kernel.envelope import CloudEvent, event_json

OUTBOX_FIELD = "outbox"
PENDING_FIELD = "outbox_pending"
LEASE_FIELD = "outbox_lease"
APPLIED_FIELD = "applied_events"
APPLIED_KEEP = 200


def outbox_entry(event: CloudEvent[Any], topic: str) -> dict[str, Any]:
    """The stored form of one pending event: what the relay needs and nothing else."""
    return {
        "id": event.id,
        "topic": topic,
        "key": event.subject,
        "type": event.type,
        "value": event_json(event),
        "created_at": datetime.now(UTC),
        # The CloudEvents tracing extension, kept beside the value so the relay need not parse it.
        "traceparent": event.traceparent,
    }


def with_events(update: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Adds ``entries`` to an update document so they are written with the state change."""
    if not entries:
        return update
    merged = {op: dict(fields) for op, fields in update.items()}
    push = merged.setdefault("$push", {})
    if OUTBOX_FIELD in push:
        raise ValueError("the update already pushes to the outbox")
    push[OUTBOX_FIELD] = {"$each": entries}
    merged.setdefault("$set", {})[PENDING_FIELD] = True
    return merged


def new_document_with_events(document: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A document to insert, carrying the events its creation causes."""
    if not entries:
        return {**document, OUTBOX_FIELD: []}
    return {**document, OUTBOX_FIELD: entries, PENDING_FIELD: True}


def applied_once(filter_: dict[str, Any], update: dict[str, Any], event_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Guards an update so that applying it for the same event twice changes nothing.

    The event id is recorded in the very document the update changes, so effect and
    record are atomic: a consumer killed before committing its offset can safely redo it.
    """
    guarded_filter = {**filter_, APPLIED_FIELD: {"$ne": event_id}}
    merged = {op: dict(fields) for op, fields in update.items()}
    merged.setdefault("$push", {})[APPLIED_FIELD] = {"$each": [event_id], "$slice": -APPLIED_KEEP}
    return guarded_filter, merged
