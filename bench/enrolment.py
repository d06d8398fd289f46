"""Enrolment benchmark (not a test): sector look-ups/s on a generated city-scale map, and
enrolments/s against the running service (`make up`).

1. Generates a map of ~5,000 street segments (odd/even/both ranges, 4 schools), times its CSV
   validation report and the index build, then sector look-ups/s in process (hits, "bis"
   suffixes, numbers in gaps, unknown streets).
2. Publishes a DossierValidated for a family with many children and enrols them through the
   gateway at a given concurrency: once at an address on the map (each enrolment confirmed at
   once: seat counter, outbox write; the certificate PDF is rendered and put in S3 after the
   answer, so the time until the last certificate can be downloaded is measured too), once at an
   address off the map (pending for an agent: no seat, no PDF), to show what the certificate costs.
Usage:
    python -m bench.enrolment [--segments 5000] [--lookups 200000] [--enrolments 64] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.event_hop import percentile
from services.enrolment import domain

RESULTS = Path(__file__).parent / "results"
SCHOOLS = {"mat-nord": ["TPS", "PS", "MS", "GS"], "mat-sud": ["PS", "MS", "GS"],
           "elem-centre": ["CP", "CE1", "CE2", "CM1", "CM2"], "prim-est": ["PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"]}
KINDS = ["rue", "avenue", "allée", "impasse", "chemin", "boulevard", "place", "route"]
NAMES = ["des Lilas", "Victor-Hugo", "Jean-Jaurès", "de la Gare", "des Écoles", "du Moulin", "Pasteur", "de l'Église",
         "des Tilleuls", "Saint-Martin", "des Vignes", "de la Poste", "du Stade", "Gambetta", "de la Paix", "des Roses"]


def generate_map(segments: int, seed: int = 7) -> tuple[str, list[str]]:
    """A CSV of about ``segments`` segments: each street has 1 to 5 consecutive ranges per side."""
    rng = random.Random(seed)
    lines = ["street;number_from;number_to;side;maternelle;elementaire"]
    streets: list[str] = []
    i = 0
    while len(lines) - 1 < segments:
        i += 1
        street = f"{rng.choice(KINDS)} {rng.choice(NAMES)} {i}"
        streets.append(street)
        if rng.random() < 0.3:
            start = 1
            for _ in range(rng.randint(1, 3)):
                end = start + rng.randint(10, 80)
                lines.append(f"{street};{start};{end};both;{rng.choice(['mat-nord', 'mat-sud', 'prim-est'])};"
                             f"{rng.choice(['elem-centre', 'prim-est'])}")
                start = end + 1
        else:
            for parity in (1, 0):
                start = 1 if parity else 2
                for _ in range(rng.randint(1, 3)):
                    end = start + 2 * rng.randint(5, 40)
                    lines.append(f"{street};{start};{end};{'odd' if parity else 'even'};"
                                 f"{rng.choice(['mat-nord', 'mat-sud', 'prim-est'])};{rng.choice(['elem-centre', 'prim-est'])}")
                    start = end + 2
    return "\n".join(lines) + "\n", streets


def bench_lookups(segments: int, lookups: int) -> dict[str, float]:
    csv_text, streets = generate_map(segments)
    t0 = time.perf_counter()
    report = domain.parse_sector_csv(csv_text, SCHOOLS)
    validate_s = time.perf_counter() - t0
    assert report.can_apply, report.as_dict()["errors"][:3]
    t0 = time.perf_counter()
    index = domain.SectorIndex(report.segments)
    build_s = time.perf_counter() - t0
    rng = random.Random(11)
    queries = []
    for _ in range(lookups):
        r = rng.random()
        street = rng.choice(streets) if r < 0.95 else f"rue inconnue {rng.randint(1, 999)}"
        number = str(rng.randint(1, 250)) + (" bis" if rng.random() < 0.1 else "")
        queries.append((street.upper() if rng.random() < 0.2 else street, number))
    t0 = time.perf_counter()
    hits = sum(1 for street, number in queries if index.lookup(street, number) is not None)
    lookup_s = time.perf_counter() - t0
    return {"segments": len(report.segments), "streets": len(streets), "validate_ms": validate_s * 1000,
            "build_ms": build_s * 1000, "lookups_per_s": lookups / lookup_s, "hit_ratio": hits / lookups,
            "us_per_lookup": lookup_s / lookups * 1e6}


async def all_certificates_ready(api: Any, enrolment_ids: list[str], timeout_s: float = 600) -> float:
    """Seconds until every certificate can be downloaded (409 while it is being prepared)."""
    start = time.perf_counter()
    waiting = list(enrolment_ids)
    while waiting:
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"{len(waiting)} certificates still not ready")
        waiting = [i for i in waiting if (await api.get(f"/enrolments/{i}/certificate")).status_code == 409]
        if waiting:
            await asyncio.sleep(0.5)
    return time.perf_counter() - start


async def bench_enrolments(count: int, concurrency: int) -> list[dict[str, Any]]:
    from tests.integration import test_enrolment as t

    staff = await t.agent()
    rows: list[dict[str, Any]] = []
    try:
        for label, number, street in (("on the map: confirmed + certificate PDF", "10", "chemin des Vignes"),
                                      ("off the map: pending for an agent", "10", "rue du Benchmark")):
            f = await t.family()
            try:
                year = await t.coming_year(f)
                levels = list(range(3, 11))  # PS .. CM2 at the primaire of chemin des Vignes
                kids = [t.child(f"Enfant{i}", date(year - levels[i % len(levels)], 1 + i % 12, 1 + i % 28)) for i in range(count)]
                for age in levels:
                    level = domain.AGE_LEVEL[age].value
                    await t.ensure_free(staff, "prim-curie", level, year, count // len(levels) + 2)
                await t.publish(t.dossier_event(f.account_id, kids, number=number, street=street))
                await t.unlocked(f)
                latencies: list[float] = []
                statuses: dict[str, int] = {}
                confirmed_ids: list[str] = []
                queue: asyncio.Queue[t.Child] = asyncio.Queue()
                for k in kids:
                    queue.put_nowait(k)

                async def worker() -> None:
                    while not queue.empty():
                        kid = queue.get_nowait()
                        s = time.perf_counter()
                        r = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
                        latencies.append(time.perf_counter() - s)
                        status = r.json().get("status", str(r.status_code)) if r.status_code == 201 else str(r.status_code)
                        statuses[status] = statuses.get(status, 0) + 1
                        if status == "confirmed":
                            confirmed_ids.append(r.json()["id"])

                t0 = time.perf_counter()
                await asyncio.gather(*[worker() for _ in range(concurrency)])
                elapsed = time.perf_counter() - t0
                certificates_s = await all_certificates_ready(f.api, confirmed_ids) + elapsed if confirmed_ids else None
                rows.append({"case": label, "enrolments": count, "concurrency": concurrency, "per_s": count / elapsed,
                             "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
                             "statuses": json.dumps(statuses),
                             "certificates_per_s": len(confirmed_ids) / certificates_s if certificates_s else None})
            finally:
                await f.close()
    finally:
        await staff.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--enrolments", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-service", action="store_true", help="only the in-process look-ups")
    args = parser.parse_args()

    lookups = bench_lookups(args.segments, args.lookups)
    print("\nSector map (in process)")
    print(f"{'segments':>9} {'streets':>8} {'validate':>10} {'index':>8} {'look-ups/s':>12} {'µs/look-up':>11} {'hits':>6}")
    print(f"{lookups['segments']:>9.0f} {lookups['streets']:>8.0f} {lookups['validate_ms']:>8.0f}ms {lookups['build_ms']:>6.0f}ms "
          f"{lookups['lookups_per_s']:>12,.0f} {lookups['us_per_lookup']:>11.2f} {lookups['hit_ratio']:>6.0%}")
    result: dict[str, object] = {"lookups": lookups}
    if not args.skip_service:
        rows = asyncio.run(bench_enrolments(args.enrolments, args.concurrency))
        print("\nEnrolments through the gateway (POST /api/enrolment/enrolments)")
        print(f"{'case':<42} {'n':>4} {'conc':>5} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} {'certs/s':>8}  statuses")
        for r in rows:
            certificates = f"{r['certificates_per_s']:>8.2f}" if r["certificates_per_s"] else f"{'-':>8}"
            print(f"{r['case']:<42} {r['enrolments']:>4} {r['concurrency']:>5} {r['per_s']:>7.1f} {r['p50_ms']:>8.0f} "
                  f"{r['p99_ms']:>8.0f} {certificates}  {r['statuses']}")
        print("certs/s: confirmations whose certificate can be downloaded, per second from the first request")
        result["enrolments"] = rows
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "enrolment.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
