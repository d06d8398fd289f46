"""The notifier's relay claims exactly what the kernel's would, against the real database server
(a throwaway database): pending aggregates without a lease or with an expired one, never one
another relay holds, and publishes their events once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.kernel.kafka import OutgoingMessage
from services.notifier.relay import IndexedClaimRelay


class Published:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        self.ids += [dict(m.headers)["ce_id"].decode() for m in messages]


def pending(doc_id: str, lease: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": doc_id, "outbox_pending": True,
        "outbox": [{"id": f"{doc_id}-event", "topic": "t", "key": doc_id, "type": "T", "value": b"{}"}],
    }
    if lease is not None:
        doc["outbox_lease"] = lease
    return doc


async def test_it_publishes_unleased_and_expired_aggregates_once_and_leaves_a_live_lease_alone(db_client: Any) -> None:
    name = f"ecp_test_relay_{uuid.uuid4().hex[:8]}"
    coll = db_client[name]["deliveries"]
    now = datetime.now(UTC)
    try:
        await coll.insert_many([
            pending("free"),
            pending("expired", {"owner": "dead", "token": "t1", "until": now - timedelta(seconds=5)}),
            pending("held", {"owner": "alive", "token": "t2", "until": now + timedelta(seconds=60)}),
            {"_id": "done", "outbox": []},
        ])
        published = Published()
        relay = IndexedClaimRelay([coll], published)
        await relay.ensure_indexes()
        assert await relay.relay_once() == 2
        assert sorted(published.ids) == ["expired-event", "free-event"]
        assert await relay.relay_once() == 0  # pulled: nothing twice
        held = await coll.find_one({"_id": "held"})
        assert held["outbox_lease"]["owner"] == "alive" and len(held["outbox"]) == 1
        assert await coll.count_documents({"outbox_pending": True}) == 1
    finally:
        await db_client.drop_database(name)
