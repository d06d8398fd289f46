"""Conditional updates benchmark (not a test): what one lease, claim or compare-and-set costs the
database server, as its collection grows, done two ways.

- ``find_one_and_update`` on ``_id`` (plus a condition), returning the document: what the stores
  did until issue #17's second pass.
- ``kernel.mongo.update_and_read``: ``update_one`` with the same filter, then ``find_one`` on
  ``_id``: what they do now.
- For reference, a plain ``update_one`` and a ``find_one`` on ``_id``, and an ``update_one``
  whose filter holds a ``$or`` (the notifier's resume claim had one).

Against the running `make up` database, in a database of its own (``ecp_bench_db_updates``,
dropped at the end), with collections of 1,000, 5,000 and 20,000 documents of about 300 bytes.
Measures the server's CPU (its process in /proc, ``.local/run/mongo.pid``) per call, not the
wall time, and prints each way's cost with the ratio to ``update_and_read`` at the same size.
Usage:
    python -m bench.db_updates [--sizes 1000 5000 20000] [--calls 100]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ReturnDocument

from bench.journey import RUN_DIR, process_stat
from services.kernel import mongo
from services.kernel.settings import CommonSettings

DATABASE = "ecp_bench_db_updates"


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the database server process so far."""
    stat = process_stat(pid)
    if stat is None:
        raise SystemExit(f"the database server (pid {pid}) is not running: `make up` first")
    return stat[1]


async def cpu_ms_per_call(pid: int, calls: int, call: Callable[[int], Awaitable[Any]]) -> float:
    before = server_cpu_s(pid)
    for i in range(calls):
        await call(i)
    return (server_cpu_s(pid) - before) / calls * 1000


async def main(sizes: list[int], calls: int) -> None:
    pid = int((RUN_DIR / "mongo.pid").read_text().strip())
    client = mongo.connect(CommonSettings().mongo_url)
    db = client[DATABASE]
    print("| documents | way | server CPU ms per call | × update_and_read |")
    print("|---:|---|---:|---:|")
    try:
        for size in sizes:
            leases = db["leases"]
            await leases.drop()
            await leases.insert_many([{"_id": i, "status": "pending", "owner": None, "attempts": 0, "pad": "x" * 250}
                                      for i in range(size)])

            def doc(i: int) -> int:
                return (i * 7919) % size

            ways: dict[str, Callable[[int], Awaitable[Any]]] = {
                "update_and_read (update_one + find_one on _id)": lambda i: mongo.update_and_read(
                    leases, {"_id": doc(i), "status": "pending"}, {"$inc": {"attempts": 1}}),
                "find_one_and_update on _id": lambda i: leases.find_one_and_update(
                    {"_id": doc(i), "status": "pending"}, {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER),
                "update_one on _id (alone)": lambda i: leases.update_one({"_id": doc(i), "status": "pending"}, {"$inc": {"attempts": 1}}),
                "find_one on _id (alone)": lambda i: leases.find_one({"_id": doc(i)}),
                "update_one on _id with a $or": lambda i: leases.update_one(
                    {"_id": doc(i), "$or": [{"owner": None}, {"attempts": {"$lt": 0}}]}, {"$inc": {"attempts": 1}}),
            }
            costs = {name: await cpu_ms_per_call(pid, calls, way) for name, way in ways.items()}
            baseline = costs["update_and_read (update_one + find_one on _id)"] or 1e-9
            for name, ms in costs.items():
                print(f"| {size:,} | {name} | {ms:.2f} | ×{ms / baseline:.1f} |")
    finally:
        await client.drop_database(DATABASE)
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.calls))
