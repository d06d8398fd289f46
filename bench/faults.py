"""Fault-injection run (not a test): the journey benchmark (bench/journey.py) runs while each
component is killed with SIGKILL and started again, one after the other; then the invariants are
checked and printed. Exits 1 when one breaks.

Components (default order): the six services, the Kafka broker, the database server, S3. Each
is killed by the pids the local runner recorded in .local/run (the whole process group: workers
too, as a crash of the machine or container would), left down ``--down-s`` seconds, started
again with `deploy/local/ecp start <component>`, and the next fault waits until every service
answers /readyz again plus ``--gap-s``. The journeys keep coming until the last fault is over.
Clients retry as a browser user would (bench/journey_client.py: about a minute of backoff).

Invariants:
- no journey lost (every family reached its certificates despite the outages);
- every submission answered 2xx exists (household's file is submitted or validated);
- every validation answered 2xx unlocked enrolment exactly once (one projection of the file in
  enrolment, with one DossierValidated applied; at most one enrolment per child);
- exactly one email per transition answered 2xx (duplicates and losses per recipient and subject
  in Mailpit; other emails are listed);
- no acknowledged document missing from S3 (record live and object present);
- no orphan object in S3 under the families' prefixes (an object no document record points to);
- every 5xx (or no answer) seen by a client, attributed to the outage during which it happened;
- every component runs again at the end (`ecp status`).

Cluster mode (`make up KAFKA_NODES=3`: three Kafka nodes, two replicas of each service): a
service's kill takes down its first replica only (the second keeps serving behind the gateway),
and ``kafka-leader`` kills the node leading partition 0 of household.dossier.v1 at that moment
(kafka-1..3 name one node), e.g. ``--components kafka-leader,identity,household,...``.

Usage: python -m bench.faults [--families 60] [--concurrency 4] [--components notifier]
Results: bench/results/faults.json (and the journey figures of that run: faults-journey.png).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.journey import (
    EXPECTED_EMAILS,
    RESULTS,
    ROOT,
    RUN_DIR,
    Journey,
    Round,
    Settings,
    chart,
    print_round,
    round_figures,
    run_round,
)
from bench.journey_client import Attempt
from tests.integration.kafka_tools import partition_leader

ECP = str(ROOT / "deploy/local/ecp")
SERVICES = ("identity", "household", "documents", "notifier", "enrolment", "web")
SERVICE_PORTS = {"web": 8100, "identity": 8101, "household": 8102, "documents": 8103, "notifier": 8104, "enrolment": 8105}
PID_FILES = {**{s: [f"svc-{s}"] for s in SERVICES}, "kafka": ["kafka"], "mongo": ["mongo"],
             "s3": ["s3"],
             # Cluster mode: one Kafka node; "kafka-leader" is resolved to one of them when it is killed.
             **{f"kafka-{n}": [f"kafka-{n}"] for n in (1, 2, 3)}, "kafka-leader": []}
LEADER_PARTITION = ("household.dossier.v1", 0)
DEFAULT_ORDER = (*SERVICES, "kafka", "mongo", "s3")


def default_order() -> tuple[str, ...]:
    """In cluster mode the broker killed is the partition's leader (one node of three)."""
    nodes = RUN_DIR / "kafka-nodes"
    cluster = nodes.is_file() and nodes.read_text().strip() == "3"
    return tuple("kafka-leader" if c == "kafka" and cluster else c for c in DEFAULT_ORDER)
# A client error this long after the component answered again still counts for its outage:
# connections, consumers and leases take a few seconds to come back.
AFTERMATH_S = 15.0


@dataclass
class Outage:
    component: str
    killed_at: float
    started_at: float | None = None  # `ecp start` returned
    ready_at: float | None = None  # every service's /readyz answered 200 again
    start_output: str = ""
    start_ok: bool = False
    start_attempts: int = 0

    def covers(self, t: float) -> bool:
        end = (self.ready_at or self.started_at or float("inf")) + AFTERMATH_S
        return self.killed_at <= t <= end


def stamp(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3] if t else "-"


# ---- the faults ----------------------------------------------------------------------------------


def kill_component(component: str) -> list[int]:
    """SIGKILL to each process group the runner recorded for the component; returns the pids."""
    killed = []
    for name in PID_FILES[component]:
        try:
            pid = int((RUN_DIR / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.killpg(pid, signal.SIGKILL)  # start_bg runs each one in its own session: pgid == pid
        except ProcessLookupError:
            continue
        except PermissionError:
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    return killed


async def gone(pids: list[int], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while any(os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _state(pid: int) -> str:
    try:
        raw = open(f"/proc/{pid}/stat").read()
        return raw[raw.rindex(")") + 2]
    except (OSError, ValueError):
        return "Z"


async def everything_ready(timeout_s: float = 180) -> float | None:
    """When every service's /readyz answers 200 (its database, Kafka, S3… are back), or None."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as http:
        while time.monotonic() < deadline:
            try:
                answers = await asyncio.gather(*(http.get(f"http://127.0.0.1:{port}/readyz") for port in SERVICE_PORTS.values()))
                if all(a.status_code == 200 for a in answers):
                    return time.time()
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return None


async def ecp_start(component: str, timeout_s: float = 240) -> tuple[bool, str]:
    process = await asyncio.create_subprocess_exec(ECP, "start", component, cwd=ROOT,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        return False, f"`ecp start {component}` did not return within {timeout_s} s"
    return process.returncode == 0, out.decode(errors="replace")[-2000:]


async def inject(components: list[str], down_s: float, gap_s: float, warmup_s: float, outages: list[Outage],
                 load_started: asyncio.Event) -> None:
    await load_started.wait()
    await asyncio.sleep(warmup_s)
    for component in components:
        if component == "kafka-leader":
            component = f"kafka-{await partition_leader(*LEADER_PARTITION)}"
            print(f"[faults] {'/'.join(map(str, LEADER_PARTITION))} is led by {component}", flush=True)
        outage = Outage(component, time.time())
        outages.append(outage)
        pids = kill_component(component)
        print(f"[faults] {stamp(outage.killed_at)} kill -9 {component} (pids {pids})", flush=True)
        await gone(pids)
        await asyncio.sleep(down_s)
        while outage.start_attempts < 2 and not outage.start_ok:  # a second try: it may have raced someone's restart
            outage.start_attempts += 1
            outage.start_ok, output = await ecp_start(component)
            outage.start_output += output
            outage.started_at = time.time()
            if not outage.start_ok:
                print(f"[faults] `ecp start {component}` FAILED:\n{output}", flush=True)
        outage.ready_at = await everything_ready()
        print(f"[faults] {stamp(outage.started_at)} {component} started ({'ok' if outage.start_ok else 'FAILED'}), "
              f"all services ready at {stamp(outage.ready_at)}", flush=True)
        await asyncio.sleep(gap_s)


# ---- the invariants ------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    details: list[str]


async def check_invariants(r: Round, outages: list[Outage]) -> list[Check]:
    from services.kernel import mongo
    from services.kernel.objectstore import ObjectStore
    from services.kernel.settings import CommonSettings, S3Settings

    client = mongo.connect(CommonSettings().mongo_url)
    objects = ObjectStore(S3Settings())
    try:
        checks = [
            lost_journeys(r.journeys),
            await submissions_exist(client, r.journeys),
            await unlocked_once(client, r.journeys),
            one_email_per_transition(r),
            *await documents_in_s3(client, objects, r.journeys),
            failures_by_outage(r.recorder.failures(), outages),
            await all_running(),
        ]
    finally:
        client.close()
    return checks


def lost_journeys(journeys: list[Journey]) -> Check:
    lost = [f"{j.email}: {j.error}" for j in journeys if not j.finished]
    return Check(f"no journey lost ({len(journeys) - len(lost)}/{len(journeys)} reached their certificates)", not lost, lost)


async def submissions_exist(client: Any, journeys: list[Journey]) -> Check:
    acknowledged = [j for j in journeys if j.submitted]
    found = {d["_id"]: d for d in await client["ecp_household"]["dossiers"].find(
        {"_id": {"$in": [j.dossier_id for j in acknowledged]}}, {"status": 1, "account_id": 1}).to_list(None)}
    bad = []
    for j in acknowledged:
        dossier = found.get(j.dossier_id)
        if dossier is None or dossier["status"] not in ("submitted", "validated") or dossier["account_id"] != j.account_id:
            bad.append(f"{j.email}: file {j.dossier_id} is {dossier and dossier['status']!r}")
    return Check(f"every submission answered 2xx exists ({len(acknowledged)} checked)", not bad, bad)


async def unlocked_once(client: Any, journeys: list[Journey]) -> Check:
    validated = [j for j in journeys if j.validated_at]
    db = client["ecp_enrolment"]
    projections = defaultdict(list)
    async for d in db["dossiers"].find({"account_id": {"$in": [j.account_id for j in validated]}}, {"applied_events": 1, "account_id": 1}):
        projections[d["account_id"]].append(d)
    per_child = Counter()
    async for e in db["enrolments"].find({"account_id": {"$in": [j.account_id for j in validated]}}, {"child.child_id": 1, "school_year": 1}):
        per_child[(e["child"]["child_id"], e["school_year"])] += 1
    bad = []
    for j in validated:
        mine = projections.get(j.account_id, [])
        applied = [event for d in mine for event in d.get("applied_events", [])]
        if len(mine) != 1 or len(applied) != 1:
            bad.append(f"{j.email}: {len(mine)} projection(s) of the file in enrolment, {len(applied)} DossierValidated applied")
        elif not j.unlocked_at and j.finished:
            bad.append(f"{j.email}: the family never saw the enrolment unlocked")
    bad += [f"child {child} has {n} enrolments for {year}" for (child, year), n in per_child.items() if n > 1]
    return Check(f"every validation answered 2xx unlocked enrolment exactly once ({len(validated)} checked)", not bad, bad)


def one_email_per_transition(r: Round) -> Check:
    duplicates, losses, others = [], [], []
    for j in r.journeys:
        subjects = Counter(m["Subject"] for m in r.mailbox.get(j.email, []))
        for subject in EXPECTED_EMAILS:
            expected, got = len(j.transitions.get(subject, [])), subjects.pop(subject, 0)
            if got == expected + 1 and subject in j.retried_subjects:
                others.append(f"{j.email}: « {subject} » ×{got} after a retried request whose first attempt went through")
            elif got > expected:
                duplicates.append(f"{j.email}: « {subject} » ×{got}, {expected} transition(s) answered 2xx")
            elif got < expected:
                losses.append(f"{j.email}: « {subject} » ×{got}, {expected} transition(s) answered 2xx")
        others += [f"{j.email}: « {s} » ×{n} (not a transition of the journey{'; ' + j.error if j.error else ''})" for s, n in subjects.items()]
    details = [f"duplicates: {len(duplicates)}, losses: {len(losses)}, other emails: {len(others)}", *duplicates, *losses, *others]
    return Check("exactly one email per transition (Mailpit, per recipient and subject)", not duplicates and not losses, details)


async def documents_in_s3(client: Any, objects: Any, journeys: list[Journey]) -> list[Check]:
    from services.documents.domain import LIVE_STATUSES

    records = {d["_id"]: d async for d in client["ecp_documents"]["documents"].find(
        {"account_id": {"$in": [j.account_id for j in journeys if j.account_id]}}, {"status": 1, "object_key": 1})}
    missing = []
    for j in journeys:
        for document_id in j.documents:
            record = records.get(document_id)
            if record is None or record["status"] not in LIVE_STATUSES:
                missing.append(f"{j.email}: document {document_id} acknowledged, record {record and record['status']!r}")
            elif not await objects.exists(record["object_key"]):
                missing.append(f"{j.email}: document {document_id} acknowledged, object {record['object_key']} missing from S3")
    by_key = {d.get("object_key"): d for d in records.values()}
    orphans, awaiting_sweep = [], []
    for j in journeys:
        if not j.account_id:
            continue
        for stored in await objects.list(f"documents/{j.account_id}/"):
            record = by_key.get(stored.key)
            if record is None:
                orphans.append(f"{stored.key} ({stored.size} bytes, {stored.last_modified:%H:%M:%S}): no document record")
            elif record["status"] not in LIVE_STATUSES:
                orphans.append(f"{stored.key}: its record is {record['status']!r}, the object should be gone")
            elif record["status"] == "uploading":
                awaiting_sweep.append(f"{stored.key}: an upload intent the sweeper will clear")
    acknowledged = sum(len(j.documents) for j in journeys)
    return [
        Check(f"no acknowledged document missing from S3 ({acknowledged} checked)", not missing, missing),
        Check("no orphan object in S3 under the families' prefixes", not orphans, orphans + awaiting_sweep),
    ]


async def all_running() -> Check:
    """`ecp status` after the run: every component the runner started is running again."""
    process = await asyncio.create_subprocess_exec(ECP, "status", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    down = [line for line in out.decode().splitlines() if "NOT running" in line]
    return Check("every component runs again (ecp status)", process.returncode == 0 and not down, down)


def cause(a: Attempt, outages: list[Outage]) -> Outage | None:
    # Windows overlap (an aftermath runs into the next kill): the latest kill before it is the cause.
    return next((o for o in reversed(outages) if o.covers(a.at)), None)


def seen_by_clients(failures: list[Attempt], outages: list[Outage]) -> dict[int, tuple[int, float]]:
    """Per outage (its index): the failed answers clients got, and for how long they got them
    (first failure's start to last failure's answer)."""
    spans: dict[int, list[Attempt]] = defaultdict(list)
    for a in failures:
        if (o := cause(a, outages)) is not None:
            spans[outages.index(o)].append(a)
    return {i: (len(f), max(a.at for a in f) - min(a.at - a.seconds for a in f)) for i, f in spans.items()}


def failures_by_outage(failures: list[Attempt], outages: list[Outage]) -> Check:
    counts: Counter[str] = Counter()
    for a in failures:
        during = (o := cause(a, outages)) and o.component
        label = f"no answer ({a.error})" if a.status == 0 else f"HTTP {a.status}"
        counts[f"{label} on {a.route} during {'the ' + during + ' outage' if during else 'NO outage'}"] += 1
    outside = sum(n for k, n in counts.items() if k.endswith("NO outage"))
    details = [f"{n} × {k}" for k, n in counts.most_common()]
    return Check(f"5xx / no answer seen by clients: {len(failures)}, {outside} outside any outage", outside == 0, details)


# ---- run -----------------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=60, help="at least this many journeys (more while faults remain)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--components", default=",".join(default_order()), help="what to kill, in order (comma list)")
    parser.add_argument("--down-s", type=float, default=2.0, help="how long a killed component stays down")
    parser.add_argument("--gap-s", type=float, default=8.0, help="load without a fault between two outages")
    parser.add_argument("--warmup-s", type=float, default=10.0, help="load before the first fault")
    args = parser.parse_args()
    components = [c.strip() for c in args.components.split(",") if c.strip()]
    unknown = [c for c in components if c not in PID_FILES]
    if unknown:
        parser.error(f"unknown component(s): {', '.join(unknown)} (known: {', '.join(PID_FILES)})")

    outages: list[Outage] = []
    faults_over, load_started = asyncio.Event(), asyncio.Event()
    settings = Settings(seats=args.families * 4)
    run_id = f"f{uuid.uuid4().hex[:5]}"

    async def faults() -> None:
        try:
            await inject(components, args.down_s, args.gap_s, args.warmup_s, outages, load_started)
        finally:
            faults_over.set()

    injector = asyncio.create_task(faults())
    try:
        r = await run_round(args.families, args.concurrency, settings, run_id, keep_going=lambda: not faults_over.is_set(), started=load_started)
    finally:
        if not load_started.is_set():
            injector.cancel()  # the set-up failed before any fault: nothing was killed
        await asyncio.gather(injector, return_exceptions=True)  # never leave a component down
    figures = round_figures(r)
    print_round(figures, None)
    checks = await check_invariants(r, outages)

    seen = seen_by_clients(r.recorder.failures(), outages)
    print("\n| component | killed | started again | all services ready | down for | clients' failed answers | clients saw failures for |")
    print("|---|---|---|---|---:|---:|---:|")
    for i, o in enumerate(outages):
        down = f"{(o.ready_at or o.started_at or o.killed_at) - o.killed_at:.1f} s"
        failed, span = seen.get(i, (0, 0.0))
        print(f"| {o.component} | {stamp(o.killed_at)} | {stamp(o.started_at)}{'' if o.start_ok else ' FAILED'}{f' (attempt {o.start_attempts})' if o.start_attempts > 1 else ''} | {stamp(o.ready_at)} | {down} | {failed} | {span:.1f} s |")
    print("\nInvariants:")
    for c in checks:
        print(f"  [{'ok' if c.ok else 'BROKEN'}] {c.name}")
        for line in c.details[:25]:
            print(f"      {line}")
        if len(c.details) > 25:
            print(f"      … and {len(c.details) - 25} more (see the JSON)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "faults.json"
    out.write_text(json.dumps({"args": vars(args), "run_id": run_id, "outages": [asdict(o) for o in outages],
                               "failures": [asdict(a) for a in r.recorder.failures()],
                               "invariants": [asdict(c) for c in checks], "journey": figures}, indent=2, ensure_ascii=False))
    chart([figures], RESULTS / "faults-journey.png")
    print(f"\nwritten {out}")
    broken = [c for c in checks if not c.ok] + [o for o in outages if not o.start_ok]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
