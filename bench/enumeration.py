"""Account-enumeration timing benchmark (not a test): do password reset and activation resend
answer as fast for an address with an account as for an unknown one?

Registers a pool of accounts left pending activation (both routes then have work to do for
them), then sends, one at a time and alternating, requests for those addresses and for fresh
unknown ones, each from its own forwarded client address, at most three per address (the
routes' hourly limit). Prints, per route, the median and p90 latency of each side and the
difference (existing - unknown). Usage (against `make up`):
    python -m bench.enumeration [--accounts 30] [--gap-ms 60] [--identity http://127.0.0.1:8101]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path

import httpx

from bench.event_hop import percentile
from bench.logins import IDENTITY, forwarded, registered_accounts

RESULTS = Path(__file__).parent / "results"
ROUTES = {"password-reset": "/auth/password-reset", "activation-resend": "/auth/activation/resend"}
PER_ADDRESS = 3  # each route's hourly limit per email address


async def timed(client: httpx.AsyncClient, path: str, email: str) -> float:
    started = time.perf_counter()
    response = await client.post(path, json={"email": email}, headers=forwarded())
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 202, response.text
    return elapsed


async def measure(accounts: int, gap_ms: float, identity: str = IDENTITY) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(base_url=identity, timeout=30) as client:
        existing = await registered_accounts(client, accounts, prefix="enum", concurrency=4)
        await asyncio.sleep(2)  # let the registrations' events go out before timing anything
        for route, path in ROUTES.items():
            samples: dict[str, list[float]] = {"existing": [], "unknown": []}
            # As many unknown addresses as existing ones, each asked as often (a counter that
            # already exists costs the limiter differently from a new one).
            unknown = [f"inconnu.{uuid.uuid4().hex[:10]}@example.org" for _ in existing]
            plan = [(side, email) for side, emails in (("existing", existing), ("unknown", unknown))
                    for email in emails for _ in range(PER_ADDRESS)]
            random.Random(7).shuffle(plan)
            for side, email in plan:
                samples[side].append(await timed(client, path, email))
                await asyncio.sleep(gap_ms / 1000)
            row = {
                f"{side}_{stat}_ms": round(fn(values), 2)
                for side, values in samples.items()
                for stat, fn in (("median", statistics.median), ("p90", lambda v: percentile(v, 90)))
            }
            row["median_difference_ms"] = round(row["existing_median_ms"] - row["unknown_median_ms"], 2)
            row["p90_difference_ms"] = round(row["existing_p90_ms"] - row["unknown_p90_ms"], 2)
            row["samples_per_side"] = len(samples["existing"])
            figures[route] = row
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--gap-ms", type=float, default=60)
    parser.add_argument("--label", default="")
    parser.add_argument("--identity", default=IDENTITY, help="another instance, e.g. an older version beside the running one")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.accounts, args.gap_ms, args.identity))
    for route, row in figures.items():
        print(f"{route:18} existing median {row['existing_median_ms']:7.2f} ms p90 {row['existing_p90_ms']:7.2f} ms | "
              f"unknown median {row['unknown_median_ms']:7.2f} ms p90 {row['unknown_p90_ms']:7.2f} ms | "
              f"difference median {row['median_difference_ms']:+6.2f} ms p90 {row['p90_difference_ms']:+6.2f} ms "
              f"({row['samples_per_side']} each)")
    if args.label:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"enumeration-{args.label}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
