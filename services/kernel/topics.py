"""Creates the Kafka topics declared in schemas/topics.yaml: ``python -m services.kernel.topics``."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

from services.kernel.kafka import declared_topics, ensure_topics
from services.kernel.settings import CommonSettings


async def main() -> int:
    settings = CommonSettings()
    specs = declared_topics()
    if settings.topics_replication_factor is not None:
        specs = [dataclasses.replace(s, replication_factor=settings.topics_replication_factor) for s in specs]
    created = await ensure_topics(settings.kafka_bootstrap, specs)
    print(f"topics created: {', '.join(created) if created else 'none (all present)'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
