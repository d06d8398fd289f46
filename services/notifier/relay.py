"""The kernel's outbox relay, claiming with queries the local database server answers from its
indexes.

The kernel's claim filters on ``outbox_pending`` AND (no lease OR an expired lease). The
MongoDB-compatible server used locally scans the whole collection for a ``$or``: on the
notifier's ``deliveries`` (one document per email ever sent, 3,800 here) the claim's find took
230 ms and its ``update_many`` 810 ms, on every relay pass, and the single-threaded server made
every other write of the notifier wait meanwhile: that, not SMTP, bounded the emails per second.
Here the candidates come from the ``outbox_pending`` index alone (6 ms), are sorted by lease in
Python, and each kind is leased by its own ``update_many`` without ``$or`` (``_id $in`` plus the
same lease condition, 2-4 ms): the same guarantee (a document is leased only if it has no live
lease), a few milliseconds per pass. Publishing and pulling are the kernel's, unchanged.

(The same change in ``services.kernel.relay._claim`` would serve every service; it lives here
while the notifier is the one whose aggregates pile up.)
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from services.kernel.outbox import LEASE_FIELD, OUTBOX_FIELD, PENDING_FIELD
from services.kernel.relay import OutboxRelay
from services.kernel.runtime import ServiceRuntime, retry_forever


class IndexedClaimRelay(OutboxRelay):
    async def _claim(self, coll: Any) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        # A few more than a batch: some may be leased by another relay right now.
        pending = [d async for d in coll.find({PENDING_FIELD: True}, {LEASE_FIELD: 1}).limit(self._batch_size * 4)]
        unleased = [d["_id"] for d in pending if LEASE_FIELD not in d][: self._batch_size]
        expired = [d["_id"] for d in pending if LEASE_FIELD in d and _aware(d[LEASE_FIELD]["until"]) < now]
        expired = expired[: self._batch_size - len(unleased)]
        if not unleased and not expired:
            return []
        # The token tells this pass's claims apart from any other relay's (or an earlier pass's).
        lease = {"owner": self.owner, "token": uuid.uuid4().hex, "until": now + self._lease}
        if unleased:
            await coll.update_many(
                {"_id": {"$in": unleased}, PENDING_FIELD: True, LEASE_FIELD: {"$exists": False}}, {"$set": {LEASE_FIELD: lease}}
            )
        if expired:
            await coll.update_many(
                {"_id": {"$in": expired}, PENDING_FIELD: True, f"{LEASE_FIELD}.until": {"$lt": now}}, {"$set": {LEASE_FIELD: lease}}
            )
        return [d async for d in coll.find({f"{LEASE_FIELD}.token": lease["token"]}, {OUTBOX_FIELD: 1, LEASE_FIELD: 1})]


def _aware(moment: datetime) -> datetime:
    # A client that is not tz-aware gives naive UTC datetimes back.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def run_relay(runtime: ServiceRuntime, relay: OutboxRelay) -> None:
    """What the kernel runtime does for its relay: indexes, then relay once the producer is up."""
    await retry_forever(relay.ensure_indexes, "outbox indexes")
    assert runtime.publisher is not None
    while not runtime.publisher.started:
        await asyncio.sleep(0.2)
    await relay.run_forever()
