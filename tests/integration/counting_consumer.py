"""A consumer process for the backbone tests, built from the kernel's consumer base.

Its effect: per aggregate, count the events and record their order, guarded by event id in the
same document (``applied_once``). Every invocation is also logged unguarded, so a test can see a
redelivery happen. With ``--crash-on EVENT_ID`` it kills itself with SIGKILL right after the
effect of that event and before anything is committed (once: a marker file remembers it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from schemas.contracts.identity import AccountDeleted
from services.kernel import mongo
from services.kernel.consumer import EventConsumer
from services.kernel.envelope import CloudEvent
from services.kernel.kafka import KafkaAuth, KafkaPublisher, KafkaSubscription
from services.kernel.logging import configure_logging
from services.kernel.outbox import applied_once
from services.kernel.runtime import is_transient
from services.kernel.settings import CommonSettings


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--crash-on", default=None)
    parser.add_argument("--crash-marker", default=None)
    args = parser.parse_args()
    settings = CommonSettings()
    configure_logging("counting-consumer", "WARNING")
    db = mongo.connect(settings.mongo_url)[args.database]

    async def count(event: CloudEvent[Any]) -> None:
        await db["invocations"].insert_one({"event_id": event.id, "pid": os.getpid()})
        filter_, update = applied_once(
            {"_id": event.subject}, {"$inc": {"count": 1}, "$push": {"order": event.id}}, event.id
        )
        await db["effects"].update_one(filter_, update, upsert=False)
        if args.crash_on == event.id and not Path(args.crash_marker).exists():
            Path(args.crash_marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)

    dead_letters = KafkaPublisher(settings.kafka_bootstrap, "counting-consumer-dlq", KafkaAuth.of(settings))
    await dead_letters.start()
    subscription = KafkaSubscription(settings.kafka_bootstrap, args.group, [args.topic], "counting-consumer", KafkaAuth.of(settings))
    await subscription.start()
    consumer = EventConsumer(
        group_id=args.group,
        subscription=subscription,
        handlers={AccountDeleted: count},
        processed=mongo.MongoProcessedEvents(db),
        dead_letters=dead_letters,
        is_transient=is_transient,
    )
    await consumer.run_forever()


if __name__ == "__main__":
    asyncio.run(main())
