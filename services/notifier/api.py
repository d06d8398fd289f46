"""HTTP routes of the notifier service. Thin: validate input, call the store, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.kernel.auth import Principal, require_role
from services.notifier import domain
from services.notifier.store import NotifierStore

router = APIRouter(tags=["journal des envois"])


class DeliveryEntry(BaseModel):
    """One email of the log. Never the link nor the body: secrets stay out of the log."""

    delivery_id: str
    event_type: str
    template: str
    subject: str
    status: str = Field(description="sending, sent or failed")
    status_label: str = Field(description="The status in French, for the agents' page")
    recipient: str | None = Field(description="The address, masked; null once the account is erased")
    attempts: int
    reason: str | None = None
    reason_label: str | None = None
    last_error: str | None = Field(default=None, description="The SMTP server's last error, address removed")
    message_id: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    anonymised: bool = False


class DeliveryLog(BaseModel):
    account_id: str
    deliveries: list[DeliveryEntry]


def _entry(doc: dict[str, Any]) -> DeliveryEntry:
    reason = doc.get("reason")
    return DeliveryEntry(
        delivery_id=doc["_id"],
        event_type=doc["event_type"],
        template=doc["template"],
        subject=doc["subject"],
        status=doc["status"],
        status_label=domain.STATUS_LABELS.get(doc["status"], doc["status"]),
        recipient=doc.get("to_masked"),
        attempts=int(doc.get("attempts", 0)),
        reason=reason,
        reason_label=domain.REASON_LABELS.get(reason) if reason else None,
        last_error=doc.get("last_error"),
        message_id=doc.get("message_id"),
        created_at=doc["created_at"],
        sent_at=doc.get("sent_at"),
        failed_at=doc.get("failed_at"),
        anonymised="anonymised_at" in doc,
    )


@router.get(
    "/deliveries",
    response_model=DeliveryLog,
    summary="The emails sent (or not) to an account, newest first: for « je n'ai pas reçu l'email »",
    responses={401: {"description": "No valid token"}, 403: {"description": "Not an agent or admin"}},
)
async def deliveries(
    request: Request,
    account_id: str = Query(min_length=1, max_length=100),
    _: Principal = Depends(require_role("agent", "admin")),
) -> DeliveryLog:
    store: NotifierStore = request.app.state.store
    return DeliveryLog(account_id=account_id, deliveries=[_entry(d) for d in await store.log_for(account_id)])
