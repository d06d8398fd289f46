"""Login benchmark (not a test): logins/s and latency against the running identity service.

Registers and activates a pool of accounts, then logs in with a given concurrency, each client
with its own forwarded address and at most a few logins per account, so the rate limits are not
what is measured. Baseline in the same run: raw argon2id verifications/s with the same
parameters, one thread per core. Usage:
    python -m bench.logins [--accounts 60] [--logins 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.event_hop import percentile
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from tests.integration.kafka_tools import read_all

IDENTITY = "http://127.0.0.1:8101"
PASSWORD = "tartine au miel de mai"
RESULTS = Path(__file__).parent / "results"


def forwarded() -> dict[str, str]:
    n = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250}"}


async def registered_accounts(client: httpx.AsyncClient, count: int, *, prefix: str, concurrency: int) -> list[str]:
    """Registers ``count`` new accounts (pending activation); returns their emails."""
    run = uuid.uuid4().hex[:8]
    emails = [f"{prefix}.{run}.{i}@example.org" for i in range(count)]
    sem = asyncio.Semaphore(concurrency)

    async def register(email: str) -> None:
        async with sem:
            r = await client.post("/auth/register", json={"email": email, "password": PASSWORD, "display_name": "Banc Essai"}, headers=forwarded())
            r.raise_for_status()

    await asyncio.gather(*(register(e) for e in emails))
    return emails


async def activated_accounts(client: httpx.AsyncClient, count: int) -> list[str]:
    emails = await registered_accounts(client, count, prefix="bench", concurrency=8)
    wanted = set(emails)
    tokens: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(tokens) < count and time.monotonic() < deadline:
        for record in await read_all("identity.mail.v1"):
            event = json.loads(record.value)
            if event["type"] == "fr.montclair-sur-loire.ecp.ActivationLinkIssued" and event["data"]["email"] in wanted:
                tokens[event["data"]["email"]] = event["data"]["link"].split("jeton=")[1]
        await asyncio.sleep(0.5)
    for token in tokens.values():
        (await client.post("/auth/activation", json={"token": token})).raise_for_status()
    return list(tokens)


def raw_argon2_rate(seconds: float = 3.0) -> float:
    s = IdentitySettings()
    hasher = Passwords(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)._hasher
    stored = hasher.hash(PASSWORD)
    deadline = time.perf_counter() + seconds

    def work() -> int:
        n = 0
        while time.perf_counter() < deadline:
            hasher.verify(stored, PASSWORD)
            n += 1
        return n

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        done = sum(pool.map(lambda _: work(), range(os.cpu_count() or 1)))
    return done / seconds


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = IdentitySettings()
    async with httpx.AsyncClient(base_url=IDENTITY, timeout=30) as client:
        emails = await activated_accounts(client, args.accounts)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        sem = asyncio.Semaphore(args.concurrency)

        async def login(i: int) -> None:
            async with sem:
                start = time.perf_counter()
                r = await client.post("/auth/login", json={"email": emails[i % len(emails)], "password": PASSWORD}, headers=forwarded())
                latencies.append(time.perf_counter() - start)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(login(i) for i in range(args.logins)))
        elapsed = time.perf_counter() - started
    raw = raw_argon2_rate()
    ms = [v * 1000 for v in latencies]
    result = {
        "argon2": {"memory_kib": settings.argon2_memory_kib, "time_cost": settings.argon2_time_cost, "parallelism": settings.argon2_parallelism},
        "logins": args.logins, "concurrency": args.concurrency, "statuses": statuses,
        "logins_per_s": args.logins / elapsed, "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99),
        "raw_argon2_verifications_per_s": raw,
    }
    print(f"argon2id m={settings.argon2_memory_kib} KiB t={settings.argon2_time_cost} p={settings.argon2_parallelism}")
    print("| measure | value |\n|---|---:|")
    print(f"| logins/s (concurrency {args.concurrency}, {args.logins} logins) | {result['logins_per_s']:.1f} |")
    print(f"| login p50 / p95 / p99 ms | {result['p50_ms']:.0f} / {result['p95_ms']:.0f} / {result['p99_ms']:.0f} |")
    print(f"| raw argon2id verifications/s, same machine, all cores | {raw:.1f} |")
    print(f"| logins/s ÷ raw verifications/s | {result['logins_per_s'] / raw:.2f} |")
    print(f"| statuses | {statuses} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "logins.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
