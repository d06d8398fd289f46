"""Example consumer for another city system: reads ECP's public events as a read-only principal.

It depends on nothing of this repository but the contract (schemas/events/*.json, schemas/asyncapi.yaml)
and aiokafka. Events are CloudEvents 1.0 in structured JSON; the key is the aggregate id, so one
file's events arrive in order. Delivery is at least once: deduplicate on the event ``id``.

Locally (after `make up`), as the city-subscriber principal:

    .local/venv/bin/python deploy/examples/city_subscriber.py \\
        --password-file .local/secrets/kafka/city-subscriber.password --from-beginning --max-events 5

Against a real cluster: --bootstrap the TLS listener, --cafile its CA, the password from the secret
the operator gave you (Strimzi: the KafkaUser's secret). The consumer group must start with the
principal's group prefix (city-subscriber...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer


def connection(args: argparse.Namespace) -> dict[str, object]:
    password = Path(args.password_file).read_text().strip()
    tls = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    return {
        "bootstrap_servers": args.bootstrap,
        "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
        "ssl_context": tls,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": args.username,
        "sasl_plain_password": password,
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--username", default="city-subscriber")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--cafile", default="", help="CA of the brokers' TLS listener (SASL_SSL)")
    parser.add_argument("--topic", default="household.dossier.v1")
    parser.add_argument("--group", default="city-subscriber-example")
    parser.add_argument("--from-beginning", action="store_true", help="a new group starts at the oldest event")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many (0: run until Ctrl-C)")
    args = parser.parse_args()

    consumer = AIOKafkaConsumer(
        args.topic,
        **connection(args),  # type: ignore[arg-type]
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    await consumer.start()
    seen = 0
    try:
        async for record in consumer:
            event = json.loads(record.value)
            print(f"{event['time']}  {event['type'].rsplit('.', 1)[-1]:<22} {event['subject']}  id={event['id']}")
            # Commit after handling: a crash before it re-delivers the event (handle it idempotently).
            await consumer.commit()
            seen += 1
            if args.max_events and seen >= args.max_events:
                break
    finally:
        await consumer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
