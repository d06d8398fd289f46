"""Creates the Kafka topics declared in schemas/topics.yaml: ``python -m services.kernel.topics``."""

from __future__ import annotations

import asyncio
import sys

from services.kernel.kafka import declared_topics, ensure_topics
from services.kernel.settings import CommonSettings


async def main() -> int:
    created = await ensure_topics(CommonSettings().kafka_bootstrap, declared_topics())
    print(f"topics created: {', '.join(created) if created else 'none (all present)'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
