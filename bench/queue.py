"""Review queue benchmark (not a test): the agents' queue with 10,000 and 100,000 files.

Against the running `make up` database, in a database of its own (``ecp_bench_household_queue``,
dropped at the end). Synthetic dossiers are inserted with ``insert_many`` (90 % decided, 10 %
waiting, submission times spread over a year), each with its reference, its search words
(``domain.search_terms``: names, reference, email), for half of them a school among 12 (as
enrolment's events give it) and, for 1 % of the waiting ones, an agent's lease; then the queue's
ledger of totals is built in one pass (``HouseholdStore.rebuild_counts``, as the service's
settles would have left it). Measured with the service's own store: the keyset listing
(``HouseholdStore.queue``: first page, a page reached by cursor, a date-filtered page) and the
back-office's numbered pages (``HouseholdStore.search``: a page with its total, oldest and newest
first, page 5, every status, one school, overdue, a search by a family name, by a reference, by
an email, « assigned to me », « free »). Two scenarios: 10 % of
the files waiting (the queue grows with the database), and a fixed number waiting among more
and more decided files. Prints p50/p99 per size, the ratio of the p99s, and which cases meet the
issue's 150 ms p99. Usage:
    python -m bench.queue [--sizes 10000 100000] [--runs 30] [--waiting 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.household import domain
from services.household.store import HouseholdStore, decode_cursor, encode_cursor
from services.kernel import mongo
from services.kernel.settings import CommonSettings

DATABASE = "ecp_bench_household_queue"
STATUSES = ["validated"] * 6 + ["rejected"] + ["corrections_requested"] * 2 + ["submitted"]
RESULTS = Path(__file__).parent / "results" / "queue.json"
TARGET_P99_MS = 150
AGENTS = [f"agent-{n}" for n in range(20)]
SCHOOLS = [f"ecole-{n:02d}" for n in range(12)]
# A few hundred family names, so that a name matches about one file in 300 (a town's spread).
LAST_NAMES = [f"{a}{b}" for a in ("Mar", "Dur", "Ber", "Pet", "Ler", "Mor", "Lau", "Sim", "Mic", "Gar", "Fau", "Rou")
              for b in ("tin", "and", "nard", "it", "oy", "eau", "rent", "on", "el", "nier", "re", "ssel", "ier", "ot", "in",
                        "ard", "elle", "y", "ez", "as", "ès", "ault", "ey", "ain")]


def synthetic(n: int, start: datetime, waiting: int | None) -> list[dict[str, Any]]:
    """``n`` files; with ``waiting`` set, that many are submitted and the rest decided."""
    rows = []
    base = random.randrange(10**9)
    for i in range(n):
        at = start + timedelta(seconds=random.randrange(365 * 86400), microseconds=random.randrange(10**6))
        if waiting is None:
            status = random.choice(STATUSES)
        else:
            status = "submitted" if i < waiting else random.choice([s for s in STATUSES if s != "submitted"])
        last = random.choice(LAST_NAMES)
        row = {
            "_id": str(uuid.uuid4()), "account_id": str(uuid.uuid4()), "status": status,
            "version": 2, "submitted_at": at, "first_submitted_at": at, "resubmission": False, "children_count": 1,
            "reference": domain.reference("MSL", 2027, base + i),
            "address": {"number": "1", "street": "rue de la Paix", "postcode": "75002", "town": "Paris", "validated": False},
            "children": [{"child_id": str(uuid.uuid4()), "first_name": "Léa", "last_name": last, "birth_date": "2020-01-01"}],
            "guardians": [{"first_name": "Camille", "last_name": last}], "recommended": [], "history": [], "outbox": [],
        }
        row["search"] = domain.search_terms(row, f"famille.{base + i}@example.org")
        if random.random() < 0.5:
            row["schools"] = [random.choice(SCHOOLS)]
        if status == "submitted" and random.random() < 0.01:
            row["assignment"] = {"agent_id": random.choice(AGENTS), "until": datetime.now(UTC) + timedelta(days=1)}
        rows.append(row)
    return rows


async def fill(store: HouseholdStore, target: int, have: int, start: datetime, waiting: int | None) -> None:
    batch = 2000
    while have < target:
        n = min(batch, target - have)
        first = None if waiting is None else max(0, waiting - have)
        await store.dossiers.insert_many(synthetic(n, start, first), ordered=False)
        have += n


async def timed(action: Any, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(store: HouseholdStore, runs: int, start: datetime) -> dict[str, dict[str, float]]:
    first = await store.queue(status="submitted", limit=20)
    middle = first[-1]
    cursor = decode_cursor(encode_cursor(middle["submitted_at"], middle["_id"]))
    window_from = start + timedelta(days=180)
    cases = {
        "first page": lambda: store.queue(status="submitted", limit=20),
        "next page (cursor)": lambda: store.queue(status="submitted", after=cursor, limit=20),
        "date filter": lambda: store.queue(status="submitted", submitted_from=window_from,
                                           submitted_to=window_from + timedelta(days=30), limit=20),
    }
    some = await store.dossiers.find_one({"status": "submitted"}, {"reference": 1, "children": 1, "search": 1})
    assert some is not None
    name, reference = some["children"][0]["last_name"], some["reference"]
    email = next(t for t in some["search"] if "@" in t)
    held = await store.dossiers.find_one({"assignment.agent_id": {"$in": AGENTS}}, {"assignment": 1})
    me = held["assignment"]["agent_id"] if held else AGENTS[0]
    now = datetime.now(UTC)

    def numbered(**kwargs: Any) -> Any:
        return lambda: store.search(**{"status": "submitted", "limit": 20, **kwargs})

    cases.update({
        "page 1 + total": numbered(),
        "page 5 + total": numbered(page=5),
        "newest first + total": numbered(newest_first=True),
        "search family name": numbered(status=None, terms=domain.query_terms(name)),
        "search reference": numbered(status=None, terms=domain.query_terms(reference)),
        "search email": numbered(status=None, terms=domain.query_terms(email)),
        "assigned to me": numbered(assigned_to=me),
        "free (unassigned)": numbered(unassigned_at=now),
        "every status + total": numbered(status=None),
        "one school + total": numbered(school=SCHOOLS[3]),
        "school, newest, free": numbered(school=SCHOOLS[5], newest_first=True, unassigned_at=now),
        # « En retard »: waiting since 60 days or more (most of the year's spread).
        "overdue + total": numbered(submitted_until=start + timedelta(days=305)),
    })
    out = {}
    for name, action in cases.items():
        await timed(action, 3)  # warm up
        samples = await timed(action, runs)
        out[name] = {"p50_ms": statistics.median(samples), "p99_ms": pct(samples, 99)}
    return out


async def scenario(sizes: list[int], runs: int, waiting: int | None) -> dict[int, dict[str, dict[str, float]]]:
    settings = CommonSettings()
    client = mongo.connect(settings.mongo_url, 10_000)
    db = client[DATABASE]
    await client.drop_database(DATABASE)
    store = HouseholdStore(db)
    await store.ensure_indexes()
    # A year of submissions up to today, as a campaign's queue is (the windows start at now).
    start = datetime.now(UTC) - timedelta(days=365)
    results: dict[int, dict[str, dict[str, float]]] = {}
    have = 0
    try:
        for size in sorted(sizes):
            t0 = time.perf_counter()
            await fill(store, size, have, start, waiting)
            have = size
            queued = await store.dossiers.count_documents({"status": "submitted"})
            print(f"{size:>7} files inserted, {queued} waiting ({time.perf_counter() - t0:.0f} s)", flush=True)
            t1 = time.perf_counter()
            await store.rebuild_counts()
            print(f"{size:>7} files counted in the ledger ({time.perf_counter() - t1:.0f} s)", flush=True)
            results[size] = await measure(store, runs, start)
    finally:
        await client.drop_database(DATABASE)
        client.close()
    return results


def table(title: str, results: dict[int, dict[str, dict[str, float]]]) -> None:
    small, large = min(results), max(results)
    print(f"\n{title}\n{'query':<22}" + "".join(f"{f'p50 @{s}':>14}{f'p99 @{s}':>14}" for s in sorted(results))
          + f"{'p99 ratio':>12}  p99 <= {TARGET_P99_MS} ms @{large}")
    for name in results[small]:
        row = "".join(f"{results[s][name]['p50_ms']:>12.2f}ms{results[s][name]['p99_ms']:>12.2f}ms" for s in sorted(results))
        ratio = results[large][name]["p99_ms"] / results[small][name]["p99_ms"]
        verdict = "yes" if results[large][name]["p99_ms"] <= TARGET_P99_MS else "NO"
        print(f"{name:<22}{row}{ratio:>12.2f}  {verdict}")


async def main(sizes: list[int], runs: int, waiting: int) -> None:
    proportional = await scenario(sizes, runs, None)
    fixed = await scenario(sizes, runs, waiting)
    table("10 % of the files waiting (the queue grows with the database)", proportional)
    table(f"{waiting} files waiting, the rest decided (the database grows, the queue does not)", fixed)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "runs": runs,
        "proportional": {str(k): v for k, v in proportional.items()},
        f"fixed_{waiting}_waiting": {str(k): v for k, v in fixed.items()},
    }, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--waiting", type=int, default=1000, help="files waiting in the second scenario")
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.runs, args.waiting))
