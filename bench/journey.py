"""Whole-system journey benchmark (not a test): families going from « create my space » to their
children's enrolment certificates, through the gateway's JSON API, against the running system.

One journey: register → activation link read from Mailpit → activate → log in → the family file
with two guardians and two children → upload the three required documents (≈200 KB PDFs, scanned
by clamd) → submit → an agent opens the file and validates it → the enrolment page unlocks (polled)
→ enrol each child → fetch each certificate (presigned S3 link). Families run ``--concurrency`` at
a time; each person has its own loopback address (see bench/journey_client.py).

Reported: journeys/s; p50/p95/p99 per route; event propagation (validation answered → enrolment
unlocked, polled every ``--poll-ms``; request that emitted an event answered → its email in
Mailpit, by Mailpit's reception time); CPU seconds and peak RSS per process tree of
.local/run/*.pid; database commands per journey per service (each service's
``/internal/db-commands``, background removed); and, in the same run, baselines: a raw aiokafka
produce→consume hop, a raw database insert+find (motor), nginx pass-through (gateway → identity
/healthz versus identity directly), and the CPU of a journey's two argon2id password hashes
(register, login) at identity's parameters: the floor the system's CPU per journey is compared
to, with the issue's targets (#17) checked at the end. Writes bench/results/journey.json and
bench/results/journey.png. Usage:
    python -m bench.journey [--families 20] [--concurrency 2,4,8] [--poll-ms 50]
    python -m bench.journey --telemetry-overhead 2 --families 6 --concurrency 3
The second form measures what metrics and traces cost instead: rounds with telemetry switched off
then on in every service (PUT /internal/telemetry, no restart), alternated, and the ratio of the
CPU seconds per journey (the services', and the whole system's with Jaeger and Prometheus).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.event_hop import fresh_topic, percentile, raw_hop
from bench.journey_client import (
    PASSWORD,
    ApiClient,
    GaveUp,
    Mailpit,
    Recorder,
    expect,
    pdf_document,
)
from services.notifier.domain import MAILS
from tests.integration.polling import eventually

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
RUN_DIR = ROOT / ".local" / "run"


def subject_of(template: str) -> str:
    """The subject of one of the notifier's emails, from its own table (a copy here went stale)."""
    return next(mail.subject for mail in MAILS if mail.template == template)


ACTIVATION = subject_of("activation")
WELCOME = subject_of("welcome")
STAFF_INVITATION = subject_of("staff_invitation")
SUBMITTED = subject_of("dossier_submitted")
VALIDATED = subject_of("dossier_validated")
CONFIRMED = subject_of("enrolment_confirmed")
# The emails one journey must cause, once each per transition (two enrolments: two confirmations).
EXPECTED_EMAILS = {ACTIVATION: 1, WELCOME: 1, SUBMITTED: 1, VALIDATED: 1, CONFIRMED: 2}

MATERNELLE = {"PS": 3, "MS": 4, "GS": 5}  # level → age in the September of the school year
ELEMENTAIRE = {"CP": 6, "CE1": 7, "CE2": 8, "CM1": 9, "CM2": 10}
STREET = "rue des Lilas"  # on the sample sector map: odd → mat-tilleuls, even → mat-coquelicots; elem-jaures
REQUIRED_KINDS = ("proof_of_address", "guardian_identity", "child_identity")


# ---- one journey ---------------------------------------------------------------------------------


@dataclass
class Journey:
    """What one family did and when (wall-clock Unix times), for the report and the invariants."""

    index: int
    email: str
    account_id: str | None = None
    dossier_id: str | None = None
    documents: list[str] = field(default_factory=list)  # upload answered 2xx
    submitted: bool = False
    validated_at: float | None = None
    unlocked_at: float | None = None
    enrolments: list[str] = field(default_factory=list)  # POST answered 201 and confirmed
    certificates: int = 0
    traceparent: str | None = None  # sent with each of the family's calls (tests/integration/test_observability)
    transitions: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # email subject → 2xx times
    retried_calls: int = 0
    # Emails a retried request may legitimately have caused twice (its first attempt may have gone
    # through before the outage cut the answer): a retried registration mails a second link.
    retried_subjects: set[str] = field(default_factory=set)
    phases: dict[str, float] = field(default_factory=dict)  # step → seconds, in journey order
    started: float = 0.0
    finished: float | None = None
    error: str | None = None

    def phase_done(self, name: str) -> None:
        """Ends the step ``name``: its duration is the time since the previous step ended."""
        self.phases[name] = time.time() - self.started - sum(self.phases.values())


@dataclass
class Settings:
    poll_s: float = 0.05  # eligibility polling period (the resolution of the unlock hop)
    wait_s: float = 180.0  # how long an asynchronous step may take before the journey is lost
    school_year: int = 0
    idle_s: float = 5.0  # how long the background CPU is measured before the round
    seats: int = 0  # seats to make room for per (school, level), when more than the number of families


def account_of(access_token: str) -> str:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def family_content(journey: Journey, year: int, docs: dict[str, str] | None = None) -> dict[str, Any]:
    rng = random.Random(journey.email)
    docs = docs or {}
    small = rng.choice(list(MATERNELLE.values()))
    big = rng.choice(list(ELEMENTAIRE.values()))
    return {
        "address": {"number": str(rng.randint(1, 98)), "street": STREET, "postcode": "45190", "town": "Montclair-sur-Loire",
                    "proof_document_id": docs.get("proof_of_address")},
        "guardians": [
            {"first_name": "Camille", "last_name": "Martin", "relationship": "mère", "phone": "06 12 34 56 78",
             "identity_document_id": docs.get("guardian_identity")},
            {"first_name": "Alex", "last_name": "Durand", "relationship": "père", "email": f"alex.{journey.index}@example.org",
             "identity_document_id": docs.get("guardian_identity")},
        ],
        "children": [
            {"first_name": "Léa", "last_name": "Martin", "birth_date": f"{year - small}-{rng.randint(1, 12):02d}-14",
             "identity_document_id": docs.get("child_identity")},
            {"first_name": "Hugo", "last_name": "Martin", "birth_date": f"{year - big}-{rng.randint(1, 12):02d}-03",
             "identity_document_id": docs.get("child_identity")},
        ],
    }


class Agent:
    """The agent of the School and Periscolaire Service who validates files (one for the run)."""

    def __init__(self, recorder: Recorder, email: str) -> None:
        self.client = ApiClient(recorder)
        self.email = email
        self.lock = asyncio.Lock()

    async def login(self) -> None:
        async with self.lock:
            self.client.token = None
            tokens = expect(await self.client.call("POST", "/api/identity/auth/login", json={"email": self.email, "password": PASSWORD},
                                                   route="POST /api/identity/auth/login (agent)"), 200)
            self.client.token = tokens["access_token"]

    async def call(self, method: str, path: str, route: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.call(method, path, route, **kwargs)
        if response.status_code == 401:  # the 10-minute access token expired during a long run
            await self.login()
            response = await self.client.call(method, path, route, **kwargs)
        return response


async def new_agent(recorder: Recorder, mailpit: Mailpit) -> Agent:
    """An agent invited with the admin command, who chose a password from the emailed link."""
    email = f"agent.journey.{uuid.uuid4().hex[:8]}@ville.example.fr"
    created = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.identity.admin", "create-staff", "--email", email, "--name", "Agnès Banc", "--role", "agent",
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await created.communicate()
    if created.returncode != 0:
        raise SystemExit(f"cannot create the agent account: {err.decode()[-500:]}")
    token, _ = await mailpit.link_token(email, STAFF_INVITATION, 120)
    agent = Agent(recorder, email)
    expect(await agent.client.call("POST", "/api/identity/auth/password-reset/confirm", json={"token": token, "new_password": PASSWORD}), 200)
    await agent.login()
    return agent


async def make_room(agent: Agent, families: int) -> int:
    """Raises the capacity of every (school, level) a journey may use, so each child gets a seat
    (a full level would send the enrolment to an agent instead). Returns the coming school year."""
    year = 0
    for school, levels in (("mat-tilleuls", MATERNELLE), ("mat-coquelicots", MATERNELLE), ("elem-jaures", ELEMENTAIRE)):
        overview = expect(await agent.call("GET", f"/api/enrolment/schools/{school}/enrolments", "GET /api/enrolment/schools/{id}/enrolments"), 200)
        year = int(overview["school_year"][:4])
        for row in overview["levels"]:
            if row["level"] in levels and row["free"] < families + 5:
                wanted = min(1000, row["seats_taken"] + families + 10)
                expect(await agent.call("PUT", f"/api/enrolment/schools/{school}/capacity", "PUT /api/enrolment/schools/{id}/capacity",
                                        json={"school_year": year, "level": row["level"], "capacity": wanted}), 200)
    return year


async def journey(j: Journey, recorder: Recorder, mailpit: Mailpit, agent: Agent, settings: Settings) -> None:
    j.started = time.time()
    person = ApiClient(recorder, traceparent=j.traceparent)
    try:
        await _journey(j, person, mailpit, agent, settings)
        j.finished = time.time()
    except (GaveUp, AssertionError, httpx.HTTPError, KeyError, ValueError) as exc:
        j.error = f"{type(exc).__name__}: {exc}"[:400]
    finally:
        j.retried_calls = person.retried
        await person.close()


async def _journey(j: Journey, person: ApiClient, mailpit: Mailpit, agent: Agent, settings: Settings) -> None:
    registered = await person.call("POST", "/api/identity/auth/register",
                                   json={"email": j.email, "password": PASSWORD, "display_name": f"Famille Banc {j.index}"})
    expect(registered, 202)
    if person.retried:
        j.retried_subjects.add(ACTIVATION)
    j.transitions[ACTIVATION].append(time.time())
    j.phase_done("register")
    token, _ = await mailpit.link_token(j.email, ACTIVATION, settings.wait_s)
    j.phase_done("wait for the activation email")
    activated = await person.call("POST", "/api/identity/auth/activation", json={"token": token})
    # 4xx after a retry: the first attempt did activate (the link is single use); the login tells.
    if activated.status_code == 200 or not person.retried:
        expect(activated, 200)
        j.transitions[WELCOME].append(time.time())
    else:
        j.retried_subjects.add(WELCOME)
    tokens = expect(await person.call("POST", "/api/identity/auth/login", json={"email": j.email, "password": PASSWORD}), 200)
    person.token = tokens["access_token"]
    j.account_id = account_of(person.token)
    j.phase_done("activate, log in")

    async def created() -> dict[str, Any] | None:
        response = await person.call("POST", "/api/household/dossier", json=family_content(j, settings.school_year))
        if response.status_code == 403:  # household has not seen AccountActivated yet
            return None
        if response.status_code == 409:  # a retried creation that had gone through
            return expect(await person.call("GET", "/api/household/dossier"), 200)
        return expect(response, 201)

    dossier = await eventually(created, "household knows the account is activated", settings.wait_s, 0.2)
    j.dossier_id = dossier["id"]

    docs: dict[str, str] = {}
    for kind in REQUIRED_KINDS:
        uploaded = await person.call("POST", "/api/documents/documents",
                                     files={"file": (f"{kind}.pdf", pdf_document(kind), "application/pdf")}, data={"kind": kind})
        docs[kind] = expect(uploaded, 201)["id"]
        j.documents.append(docs[kind])
    body = family_content(j, settings.school_year, docs)
    body["guardians"] = [{**g, "guardian_id": mine["guardian_id"]} for g, mine in zip(body["guardians"], dossier["guardians"])]
    body["children"] = [{**c, "child_id": mine["child_id"]} for c, mine in zip(body["children"], dossier["children"])]
    expect(await person.call("PUT", "/api/household/dossier", json=body), 200)
    j.phase_done("create the file, upload 3 documents, attach them")

    for document_id in docs.values():
        async def clean(document_id: str = document_id) -> bool:
            status = expect(await person.call("GET", f"/api/documents/documents/{document_id}", "GET /api/documents/documents/{id}"), 200)["status"]
            if status == "infected":
                raise AssertionError(f"document {document_id} reported infected")
            return status == "clean"

        await eventually(clean, "documents scanned clean", settings.wait_s, 0.2)
    j.phase_done("wait for the virus scans")

    async def submitted() -> bool:
        response = await person.call("POST", "/api/household/dossier/submit")
        if response.status_code == 422:  # household's projection has not seen every verdict yet
            return False
        if response.status_code == 409 and person.retried:
            return expect(await person.call("GET", "/api/household/dossier"), 200)["status"] == "submitted"
        expect(response, 200)
        return True

    await eventually(submitted, "submission accepted", settings.wait_s, 0.2)
    j.submitted = True
    j.transitions[SUBMITTED].append(time.time())
    j.phase_done("submit")

    expect(await agent.call("GET", f"/api/household/review/dossiers/{j.dossier_id}", "GET /api/household/review/dossiers/{id}"), 200)
    decided = await agent.call("POST", f"/api/household/review/dossiers/{j.dossier_id}/validate", "POST /api/household/review/dossiers/{id}/validate")
    if decided.status_code != 409:  # 409: a retried validation that had gone through
        expect(decided, 200)
    j.validated_at = time.time()
    j.transitions[VALIDATED].append(j.validated_at)
    j.phase_done("agent opens and validates")

    async def eligible() -> dict[str, Any] | None:
        body = expect(await person.call("GET", "/api/enrolment/enrolments/eligible"), 200)
        return body if body["unlocked"] and len(body["children"]) == 2 else None

    eligibility = await eventually(eligible, "enrolment unlocked", settings.wait_s, settings.poll_s)
    j.unlocked_at = time.time()
    j.phase_done("wait for enrolment to unlock")

    for kid in eligibility["children"]:
        if not kid["can_enrol"]:
            raise AssertionError(f"child cannot enrol: {kid['message']}")
        response = await person.call("POST", "/api/enrolment/enrolments", json={"child_id": kid["child_id"], "school_year": eligibility["school_year_start"]})
        if response.status_code == 409 and person.retried:  # a retried enrolment that had gone through
            mine = expect(await person.call("GET", "/api/enrolment/enrolments"), 200)
            enrolment = next(e for e in mine["enrolments"] if e["child_id"] == kid["child_id"])
        else:
            enrolment = expect(response, 201)
        j.transitions[CONFIRMED].append(time.time())
        if enrolment["status"] != "confirmed":
            raise AssertionError(f"enrolment {enrolment['id']} is {enrolment['status']} ({enrolment.get('pending_reason')})")
        j.enrolments.append(enrolment["id"])
    j.phase_done("enrol both children")

    for enrolment_id in j.enrolments:
        async def link(enrolment_id: str = enrolment_id) -> dict[str, Any] | None:
            response = await person.call("GET", f"/api/enrolment/enrolments/{enrolment_id}/certificate", "GET /api/enrolment/enrolments/{id}/certificate")
            return response.json() if response.status_code == 200 else None  # 409: the PDF is being made

        url = (await eventually(link, "certificate ready", settings.wait_s, 0.2))["url"]
        pdf = await person.call("GET", url, "GET certificate PDF (S3 presigned link)")
        if pdf.status_code != 200 or not pdf.content.startswith(b"%PDF"):
            raise AssertionError(f"certificate download: HTTP {pdf.status_code}")
        j.certificates += 1
    j.phase_done("wait for and download both certificates")


async def traced_journey(trace_id: str, email: str) -> Journey:
    """One family journey on its own (its agent invited first), each of the family's calls carrying
    the W3C trace id ``trace_id`` (tests/integration/test_observability, bench/telemetry)."""
    recorder, mailpit = Recorder(), Mailpit()
    agent = await new_agent(recorder, mailpit)
    try:
        settings = Settings()
        settings.school_year = await make_room(agent, 1)
        j = Journey(0, email, traceparent=f"00-{trace_id}-{secrets.token_hex(8)}-01")
        await journey(j, recorder, mailpit, agent, settings)
        return j
    finally:
        await agent.client.close()
        await mailpit.close()


# ---- processes -----------------------------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def group_of(pid_file_name: str) -> str:
    name = pid_file_name.removesuffix(".pid")
    return {"gateway": "nginx", "mail": "mailpit", "mongo": "mongo (SecantusDB)", "s3": "s3 (SeaweedFS)"}.get(
        name, name.removeprefix("svc-"))


def process_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) from /proc/<pid>/stat, None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except OSError:
        return 0


class ProcessSampler:
    """CPU seconds and peak RSS of each component's process tree (the pids in .local/run and their
    children), sampled every ``every_s``; pids are re-read so a restarted component is followed."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self.first_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, tuple[str, float]] = {}
        self.peak_rss: dict[str, int] = defaultdict(int)
        self.self_cpu_start = sum(os.times()[:2])
        self.task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        stats = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := process_stat(int(p.name)))}
        children: dict[int, list[int]] = defaultdict(list)
        for pid, (ppid, _) in stats.items():
            children[ppid].append(pid)
        rss: dict[str, int] = defaultdict(int)
        for pid_file in RUN_DIR.glob("*.pid"):
            try:
                root = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue  # being rewritten by a restart
            group = group_of(pid_file.name)
            stack = [root] if root in stats else []
            while stack:
                pid = stack.pop()
                stack.extend(children.get(pid, []))
                cpu = stats[pid][1]
                self.first_cpu.setdefault(pid, cpu if self.task is None else 0.0)  # born during the run: all its CPU counts
                self.last_cpu[pid] = (group, cpu)
                rss[group] += _rss_bytes(pid)
        for group, total in rss.items():
            self.peak_rss[group] = max(self.peak_rss[group], total)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.sample()

    def start(self) -> None:
        self.sample()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> dict[str, dict[str, float]]:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.sample()
        cpu: dict[str, float] = defaultdict(float)
        for pid, (group, last) in self.last_cpu.items():
            cpu[group] += last - self.first_cpu.get(pid, 0.0)
        result = {g: {"cpu_s": round(cpu[g], 2), "peak_rss_mb": round(self.peak_rss[g] / 2**20, 1)} for g in sorted(cpu)}
        result["(this benchmark)"] = {"cpu_s": round(sum(os.times()[:2]) - self.self_cpu_start, 2),
                                      "peak_rss_mb": round(_rss_bytes(os.getpid()) / 2**20, 1)}
        return result


async def background_cpu(seconds: float) -> dict[str, float]:
    """CPU seconds per second each process tree burns before the round (other people's work on the
    shared machine, relays polling), to tell the journeys' own cost from the rest."""
    sampler = ProcessSampler()
    sampler.start()
    await asyncio.sleep(seconds)
    return {group: p["cpu_s"] / seconds for group, p in (await sampler.stop()).items() if group != "(this benchmark)"}


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle since boot (every process, everyone's)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # minus idle and iowait


# ---- database commands ---------------------------------------------------------------------------


SERVICE_PORTS = {name: int(os.environ.get(f"ECP_{name.upper()}_PORT", port))
                 for name, port in (("identity", 8101), ("household", 8102), ("documents", 8103), ("notifier", 8104), ("enrolment", 8105))}


async def db_commands(what: str = "db-commands") -> dict[str, dict[str, Any]]:
    """Each service's database commands so far (its own port: the gateway does not forward
    /internal/); ``what="db-time"``: the milliseconds its driver waited for each instead."""
    counts: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=5) as http:
        for name, port in SERVICE_PORTS.items():
            try:
                response = await http.get(f"http://127.0.0.1:{port}/internal/{what}")
                response.raise_for_status()
                counts[name] = response.json()
            except httpx.HTTPError:
                counts[name] = {}  # down, or a build without the route: reported as nothing
    return counts


def commands_between(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each service sent between two snapshots (a restart in between counts from zero)."""
    delta: dict[str, dict[str, int]] = {}
    for name, now in after.items():
        then = before.get(name, {})
        delta[name] = {k: n - then.get(k, 0) if n >= then.get(k, 0) else n for k, n in now.items() if n != then.get(k, 0)}
    return delta


# ---- a round: N families at a given concurrency --------------------------------------------------


@dataclass
class Round:
    families: int
    concurrency: int
    journeys: list[Journey]
    recorder: Recorder
    elapsed_s: float
    processes: dict[str, dict[str, float]]
    mailbox: dict[str, list[dict[str, Any]]]  # email → its messages
    poll_ms: float
    # Per service, command → count during the round, and what its idle background sent per second.
    commands: dict[str, dict[str, int]] = field(default_factory=dict)
    background_commands_per_s: dict[str, dict[str, float]] = field(default_factory=dict)
    db_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # per service, command → ms waited


async def run_round(families: int, concurrency: int, settings: Settings, run_id: str,
                    keep_going: Callable[[], bool] = lambda: False, started: asyncio.Event | None = None) -> Round:
    """``families`` journeys, ``concurrency`` at a time; more while ``keep_going()`` says so (the
    fault run keeps the load on until its last fault is over). ``started`` is set once the set-up
    (agent account, school capacities) is done and the first families start."""
    recorder = Recorder()
    mailpit = Mailpit()
    agent = await new_agent(recorder, mailpit)
    settings.school_year = await make_room(agent, max(families, settings.seats))
    recorder.attempts.clear()  # the set-up is not part of the figures
    journeys: list[Journey] = []

    def next_journey() -> Journey | None:
        if len(journeys) >= families and not keep_going():
            return None
        journeys.append(Journey(len(journeys), f"journey.{run_id}.c{concurrency}.{len(journeys)}@example.org"))
        return journeys[-1]

    async def worker() -> None:
        while (j := next_journey()) is not None:
            await journey(j, recorder, mailpit, agent, settings)

    idle_commands = await db_commands()
    background = await background_cpu(settings.idle_s)
    round_commands = await db_commands()
    round_db_ms = await db_commands("db-time")
    idle_rate = {name: {k: n / settings.idle_s for k, n in c.items()} for name, c in commands_between(idle_commands, round_commands).items()}
    sampler = ProcessSampler()
    busy_before = machine_busy_s()
    sampler.start()
    if started:
        started.set()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    processes = await sampler.stop()
    commands = commands_between(round_commands, await db_commands())
    db_ms = commands_between(round_db_ms, await db_commands("db-time"))
    for group, p in processes.items():
        p["background_cpu_s"] = round(background.get(group, 0.0) * elapsed, 2)
        p["cpu_s_net"] = round(max(0.0, p["cpu_s"] - p["background_cpu_s"]), 2)
    processes["(whole machine, everyone)"] = {"cpu_s": round(machine_busy_s() - busy_before, 2), "peak_rss_mb": 0.0,
                                               "background_cpu_s": 0.0, "cpu_s_net": 0.0}
    mailbox = await settled_mailbox(mailpit, journeys)
    await agent.client.close()
    await mailpit.close()
    return Round(len(journeys), concurrency, journeys, recorder, elapsed, processes, mailbox, settings.poll_s * 1000,
                 commands, idle_rate, db_ms)


async def settled_mailbox(mailpit: Mailpit, journeys: list[Journey], quiet_s: float = 3.0, timeout_s: float = 120) -> dict[str, list[dict[str, Any]]]:
    """Every family's messages, read once the expected emails are all there (or nothing new
    arrived for ``quiet_s``), so a late duplicate or a slow last email is still counted."""
    deadline = time.monotonic() + timeout_s
    previous = -1
    while True:
        mailbox = {}
        for j in journeys:
            mailbox[j.email] = await mailpit.messages_to(j.email)
        total = sum(map(len, mailbox.values()))
        expected = sum(sum(len(t) for t in j.transitions.values()) for j in journeys)
        if (total >= expected and total == previous) or time.monotonic() > deadline:
            return mailbox
        previous = total
        await asyncio.sleep(quiet_s)


# ---- figures -------------------------------------------------------------------------------------


def pcts(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    if not ms:
        return {"count": 0}
    return {"count": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1)}


def email_latencies(journeys: list[Journey], mailbox: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per email subject: from the answer to the request that emitted the event to Mailpit's
    reception, pairing the n-th answer with the n-th message of that subject."""
    from bench.journey_client import mailpit_time

    by_subject: dict[str, list[float]] = defaultdict(list)
    for j in journeys:
        for subject, acks in j.transitions.items():
            received = sorted(mailpit_time(m["Created"]) for m in mailbox.get(j.email, []) if m["Subject"] == subject)
            by_subject[subject].extend(max(0.0, r - a) for a, r in zip(sorted(acks), received))
    return {subject: pcts(values) for subject, values in by_subject.items()}


def commands_per_journey(r: Round, completed: int) -> dict[str, dict[str, float]]:
    """Per service: total and per command, the round's commands minus the idle background's rate
    over the round's duration, divided by the completed journeys."""
    if not completed:
        return {}
    figures: dict[str, dict[str, float]] = {}
    for name, counts in r.commands.items():
        idle = r.background_commands_per_s.get(name, {})
        net = {k: max(0.0, n - idle.get(k, 0.0) * r.elapsed_s) / completed for k, n in counts.items()}
        net = {k: round(v, 2) for k, v in sorted(net.items(), key=lambda kv: -kv[1]) if v >= 0.005}
        figures[name] = {"total": round(sum(net.values()), 1), **net}
    return figures


def slowest_commands(r: Round, completed: int, top: int = 12) -> list[dict[str, Any]]:
    """The commands the services waited longest for, in ms per journey (as each driver measured,
    background included), with their count per journey and mean: where the database's time goes."""
    if not completed:
        return []
    rows = [{"service": name, "command": k, "ms_per_journey": round(ms / completed, 1),
             "per_journey": round(r.commands.get(name, {}).get(k, 0) / completed, 2),
             "mean_ms": round(ms / max(1, r.commands.get(name, {}).get(k, 0)), 2)}
            for name, per in r.db_ms.items() for k, ms in per.items()]
    return sorted(rows, key=lambda row: -row["ms_per_journey"])[:top]


def round_figures(r: Round) -> dict[str, Any]:
    done = [j for j in r.journeys if j.finished]
    unlock = [j.unlocked_at - j.validated_at for j in done if j.unlocked_at and j.validated_at]
    journey_s = [j.finished - j.started for j in done if j.finished]
    emails = email_latencies(r.journeys, r.mailbox)
    statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in r.recorder.attempts:
        statuses[a.route][a.error or str(a.status)] += 1
    system_cpu = sum(p["cpu_s_net"] for g, p in r.processes.items() if not g.startswith("("))
    per_journey = system_cpu / len(done) if done else 0.0
    return {
        "families": r.families,
        "concurrency": r.concurrency,
        "completed": len(done),
        "lost": [{"email": j.email, "error": j.error} for j in r.journeys if not j.finished],
        "elapsed_s": round(r.elapsed_s, 2),
        "journeys_per_s": round(len(done) / r.elapsed_s, 3),
        "journey_duration": pcts(journey_s),
        "phases": {name: pcts([j.phases[name] for j in done if name in j.phases]) for name in (done[0].phases if done else {})},
        "routes": {route: pcts(values) for route, values in sorted(r.recorder.successful_latencies().items())},
        "statuses": {route: dict(s) for route, s in sorted(statuses.items())},
        "unlock_hop": {**pcts(unlock), "poll_ms": r.poll_ms},
        "email_hops": emails,
        "processes": r.processes,
        "db_commands_per_journey": commands_per_journey(r, len(done)),
        "db_ms_per_journey": slowest_commands(r, len(done)),
        "background_db_commands_per_s": {name: round(sum(c.values()), 1) for name, c in r.background_commands_per_s.items()},
        # What the system's own processes burn per journey (background removed), and the rate two
        # cores could sustain at that cost if nothing else ran on the machine.
        "system_cpu_s_per_journey": round(per_journey, 3),
        "cpu_ceiling_journeys_per_s": round((os.cpu_count() or 1) / per_journey, 2) if per_journey else None,
    }


# ---- telemetry on versus off ---------------------------------------------------------------------


TELEMETRY_PORTS = {**SERVICE_PORTS, "web": int(os.environ.get("ECP_WEB_PORT", 8100))}
OBSERVABILITY_BACKENDS = ("jaeger", "prometheus", "alertmanager")


async def set_telemetry(on: bool) -> None:
    """Metrics and traces on or off in every service at once, without a restart (each service's own
    port; the switch exists on a local deployment only)."""
    async with httpx.AsyncClient(timeout=5) as http:
        for name, port in TELEMETRY_PORTS.items():
            response = await http.put(f"http://127.0.0.1:{port}/internal/telemetry", json={"enabled": on})
            response.raise_for_status()


def cpu_per_journey(figures: dict[str, Any], groups: Iterable[str]) -> float:
    wanted = set(groups)
    cpu = sum(p["cpu_s_net"] for g, p in figures["processes"].items() if g in wanted)
    return cpu / figures["completed"] if figures["completed"] else 0.0


async def telemetry_overhead(pairs: int, families: int, concurrency: int, poll_s: float, run_id: str) -> dict[str, Any]:
    """Rounds with telemetry off and on, alternated (off, on, off, on...) so that the machine's
    drift weighs on both alike; CPU per journey of the services, and of the whole system (which
    with telemetry on includes the Jaeger, Prometheus and Alertmanager processes)."""
    rounds: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    try:
        for pair in range(pairs):
            for mode in ("off", "on"):
                await set_telemetry(mode == "on")
                r = await run_round(families, concurrency, Settings(poll_s=poll_s), f"{run_id}t{pair}{mode}")
                rounds[mode].append(round_figures(r))
    finally:
        await set_telemetry(True)

    def mean(mode: str, groups: Iterable[str]) -> float:
        values = [cpu_per_journey(f, groups) for f in rounds[mode]]
        return sum(values) / len(values)

    services = {mode: round(mean(mode, TELEMETRY_PORTS), 4) for mode in rounds}
    system_groups = {g for fs in rounds.values() for f in fs for g in f["processes"] if not g.startswith("(")}
    system = {mode: round(mean(mode, system_groups), 4) for mode in rounds}
    backends = {mode: round(mean(mode, OBSERVABILITY_BACKENDS), 4) for mode in rounds}
    return {
        "pairs": pairs, "families_per_round": families, "concurrency": concurrency,
        "completed": {mode: [f["completed"] for f in fs] for mode, fs in rounds.items()},
        "services_cpu_s_per_journey": services,
        "system_cpu_s_per_journey": system,
        "observability_backends_cpu_s_per_journey": backends,
        "services_overhead_ratio": round(services["on"] / services["off"], 3) if services["off"] else None,
        "system_overhead_ratio": round(system["on"] / system["off"], 3) if system["off"] else None,
        "rounds": rounds,
    }


def print_overhead(o: dict[str, Any]) -> None:
    s, y, b = o["services_cpu_s_per_journey"], o["system_cpu_s_per_journey"], o["observability_backends_cpu_s_per_journey"]
    print(f"\n## Telemetry on versus off: {o['pairs']} pair(s) of rounds, {o['families_per_round']} families each "
          f"at concurrency {o['concurrency']} (completed: off {o['completed']['off']}, on {o['completed']['on']})")
    print("| CPU s per journey (background removed) | telemetry off | telemetry on | on / off |")
    print("|---|---|---|---|")
    print(f"| the services (identity, household, documents, notifier, enrolment, web) | {s['off']} | {s['on']} | {o['services_overhead_ratio']} |")
    print(f"| the whole system, observability backends included | {y['off']} | {y['on']} | {o['system_overhead_ratio']} |")
    print(f"| of which Jaeger, Prometheus, Alertmanager | {b['off']} | {b['on']} | |")


# ---- baselines -----------------------------------------------------------------------------------


async def db_baseline(ops: int = 300) -> dict[str, float]:
    """One insert_one then one find_one by _id, sequentially, with motor (what a handler does at least)."""
    from services.kernel import mongo
    from services.kernel.settings import CommonSettings

    client = mongo.connect(CommonSettings().mongo_url)
    db = client[f"ecp_bench_journey_{uuid.uuid4().hex[:6]}"]
    latencies = []
    try:
        for i in range(ops):
            started = time.perf_counter()
            await db.things.insert_one({"_id": i, "n": i, "at": time.time()})
            await db.things.find_one({"_id": i})
            latencies.append(time.perf_counter() - started)
    finally:
        await client.drop_database(db.name)
        client.close()
    return pcts(latencies)


async def gateway_baseline(requests: int = 300) -> dict[str, dict[str, float]]:
    """GET /healthz of identity through nginx and directly, interleaved (same load on both)."""
    through, direct = [], []
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(requests):
            for url, bucket in (("http://127.0.0.1:8080/api/identity/healthz", through), ("http://127.0.0.1:8101/healthz", direct)):
                started = time.perf_counter()
                (await http.get(url)).raise_for_status()
                bucket.append(time.perf_counter() - started)
    return {"gateway → identity /healthz": pcts(through), "identity /healthz directly": pcts(direct)}


async def kafka_baseline(events: int = 300, rate: float = 100.0) -> dict[str, float]:
    from services.kernel.logging import configure_logging
    from services.kernel.settings import CommonSettings

    from tests.integration.kafka_tools import delete_topics

    configure_logging("bench", "WARNING")
    settings = CommonSettings()
    topic = await fresh_topic(settings)
    try:
        return await raw_hop(settings, topic, events, rate)
    finally:
        # Every partition left behind lengthens Kafka's recovery after a crash (392 partitions, most
        # of them bench.hop.* topics, took 50 s to recover in the fault run).
        await delete_topics(topic, topic + ".dlq")


HASH_FLOOR = "a journey's two argon2id hashes (register + login), CPU"
RAW_KAFKA = "raw aiokafka produce→consume (paced 100/s)"


def hash_floor(pairs: int = 7) -> dict[str, float]:
    """CPU seconds of one registration hash plus one login verification at identity's argon2id
    parameters, in this process: the median of ``pairs`` (the floor no design removes)."""
    from argon2 import PasswordHasher

    from services.identity.settings import IdentitySettings

    s = IdentitySettings()
    hasher = PasswordHasher(memory_cost=s.argon2_memory_kib, time_cost=s.argon2_time_cost, parallelism=s.argon2_parallelism)
    costs = []
    for _ in range(pairs):
        started = time.thread_time()
        hashed = hasher.hash(PASSWORD)
        hasher.verify(hashed, PASSWORD)
        costs.append(time.thread_time() - started)
    median = statistics.median(costs)
    return {"count": pairs, "cpu_s": round(median, 4), "p50_ms": median * 1000, "p95_ms": max(costs) * 1000, "p99_ms": max(costs) * 1000}


async def baselines() -> dict[str, Any]:
    base = {RAW_KAFKA: await kafka_baseline(), "raw motor insert_one + find_one": await db_baseline()}
    try:
        base.update(await gateway_baseline())
    except httpx.HTTPError as exc:
        # identity restarted meanwhile (a shared machine): the rounds' figures are still worth printing.
        print(f"gateway baseline skipped: {exc!r}", file=sys.stderr)
    base[HASH_FLOOR] = hash_floor()
    return base


# ---- report --------------------------------------------------------------------------------------


def print_round(f: dict[str, Any], base: dict[str, Any] | None) -> None:
    print(f"\n## {f['families']} families, concurrency {f['concurrency']}: {f['completed']} completed in {f['elapsed_s']} s "
          f"→ {f['journeys_per_s']} journeys/s (journey p50 {f['journey_duration'].get('p50_ms', 0) / 1000:.1f} s)")
    print(f"   the system's processes burn {f['system_cpu_s_per_journey']} CPU s per journey (background removed): "
          f"at most {f['cpu_ceiling_journeys_per_s']} journeys/s on {os.cpu_count()} cores with nothing else running")
    if base and base[HASH_FLOOR]["cpu_s"]:
        floor = base[HASH_FLOOR]["cpu_s"]
        print(f"   that is ×{f['system_cpu_s_per_journey'] / floor:.1f} the journey's two argon2id hashes "
              f"({floor * 1000:.0f} ms of CPU measured in this run; target ≤ ×5)")
    print("   where a journey's time goes (p50 / p95 s): " + "; ".join(
        f"{name} {p['p50_ms'] / 1000:.2f} / {p['p95_ms'] / 1000:.2f}" for name, p in f["phases"].items()))
    for lost in f["lost"]:
        print(f"   lost: {lost['email']}: {lost['error']}")
    print("\n| route | n | p50 ms | p95 ms | p99 ms | max ms | non-2xx answers |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for route, p in f["routes"].items():
        others = ", ".join(f"{s}×{n}" for s, n in f["statuses"][route].items() if not s.startswith("2"))
        print(f"| {route} | {p['count']} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {p['max_ms']} | {others} |")
    raw_p99 = base["raw aiokafka produce→consume (paced 100/s)"]["p99_ms"] if base else None
    print("\n| event hop | n | p50 ms | p95 ms | p99 ms | p99 / raw Kafka p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    hops = {f"DossierValidated → enrolment unlocked (polled every {f['unlock_hop']['poll_ms']} ms)": f["unlock_hop"],
            **{f"→ email « {s[:40]}… »": p for s, p in f["email_hops"].items()}}
    for name, p in hops.items():
        if p.get("count"):
            ratio = f"×{p['p99_ms'] / raw_p99:.1f}" if raw_p99 else ""
            print(f"| {name} | {p['count']} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {ratio} |")
    print("\n| process tree | CPU s | of which background | CPU s per journey (net) | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for name, p in sorted(f["processes"].items(), key=lambda kv: -kv[1]["cpu_s"]):
        per = p["cpu_s_net"] / f["completed"] if f["completed"] else 0
        print(f"| {name} | {p['cpu_s']} | {p['background_cpu_s']} | {per:.3f} | {p['peak_rss_mb']} |")
    print("\n| service | DB commands per journey (net) | idle background per s | most frequent (per journey) |")
    print("|---|---:|---:|---|")
    for name, c in sorted(f["db_commands_per_journey"].items(), key=lambda kv: -kv[1]["total"]):
        top = ", ".join(f"{k} {v:g}" for k, v in list(c.items())[1:9])
        print(f"| {name} | {c['total']} | {f['background_db_commands_per_s'].get(name, 0)} | {top} |")
    print("\n| slowest database commands | service | ms waited per journey | per journey | mean ms |")
    print("|---|---|---:|---:|---:|")
    for row in f.get("db_ms_per_journey", []):
        print(f"| {row['command']} | {row['service']} | {row['ms_per_journey']} | {row['per_journey']} | {row['mean_ms']} |")


def print_baselines(base: dict[str, Any]) -> None:
    print("\n| baseline (same run, after the journeys) | n | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, p in base.items():
        print(f"| {name} | {p.get('count', p.get('events'))} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | {p['p99_ms']:.1f} |")


# Routes that hash or verify a password (argon2id): the p99 target is for every other route.
HASHING_ROUTES = ("/auth/register", "/auth/login", "/password-reset/confirm")


def targets(f: dict[str, Any], base: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's targets (#17) for one round: (target, measured, met). Reported, never asserted."""
    floor = base[HASH_FLOOR]["cpu_s"]
    ratio = f["system_cpu_s_per_journey"] / floor if floor else float("inf")
    slow = {route: p["p99_ms"] for route, p in f["routes"].items()
            if not any(h in route for h in HASHING_ROUTES) and p["p99_ms"] > 150}
    raw = base[RAW_KAFKA]["p99_ms"]
    hops = {"unlock": f["unlock_hop"], **{f"email « {s[:30]}… »": p for s, p in f["email_hops"].items()}}
    far = {name: p["p99_ms"] / raw for name, p in hops.items() if p.get("count") and p["p99_ms"] > 5 * raw}
    rows = [("system CPU per journey ≤ ×5 the two hashes", f"×{ratio:.1f}", ratio <= 5),
            ("p99 ≤ 150 ms on every route that does not hash a password",
             "all met" if not slow else "; ".join(f"{r} {ms:.0f} ms" for r, ms in sorted(slow.items(), key=lambda kv: -kv[1])), not slow),
            ("event hops p99 ≤ ×5 the raw aiokafka hop",
             "all met" if not far else "; ".join(f"{n} ×{x:.1f}" for n, x in sorted(far.items(), key=lambda kv: -kv[1])), not far)]
    if f["concurrency"] >= 8:
        rows.insert(1, ("≥ 6 journeys/s at concurrency 8", f"{f['journeys_per_s']}", f["journeys_per_s"] >= 6))
    return rows


def print_targets(rounds: list[dict[str, Any]], base: dict[str, Any]) -> None:
    print("\n| round | target (#17) | measured | met |")
    print("|---|---|---|---|")
    for f in rounds:
        for target, measured, met in targets(f, base):
            print(f"| c{f['concurrency']} | {target} | {measured} | {'yes' if met else 'NO'} |")


def chart(rounds: list[dict[str, Any]], out: Path) -> None:
    """Latency percentiles per route, one panel per concurrency level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    routes = sorted({route for f in rounds for route in f["routes"]})
    fig, axes = plt.subplots(1, len(rounds), figsize=(7 * len(rounds), 0.4 * len(routes) + 2), sharex=True, sharey=True, squeeze=False)
    for ax, f in zip(axes[0], rounds):
        y = range(len(routes))
        for offset, (key, colour) in enumerate((("p50_ms", "#4c72b0"), ("p95_ms", "#dd8452"), ("p99_ms", "#c44e52"))):
            values = [f["routes"].get(r, {}).get(key, 0) for r in routes]
            ax.barh([i + (offset - 1) * 0.27 for i in y], values, height=0.27, color=colour, label=key.removesuffix("_ms"))
        ax.axvline(150, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("ms (log scale; dashed: 150 ms target)")
        ax.set_title(f"concurrency {f['concurrency']}: {f['journeys_per_s']} journeys/s")
        ax.legend(loc="lower right")
    axes[0][0].set_yticks(range(len(routes)), routes, fontsize=7)
    axes[0][0].invert_yaxis()
    fig.suptitle("Journey benchmark: latency per route through the gateway")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=20, help="journeys per concurrency level")
    parser.add_argument("--concurrency", default="4", help="families at a time; a comma list runs one round per level (e.g. 2,4,8)")
    parser.add_argument("--poll-ms", type=float, default=50, help="eligibility polling period (resolution of the unlock hop)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the raw Kafka / database / nginx baselines")
    parser.add_argument("--output", default="journey", help="name of the JSON and PNG files under bench/results/")
    parser.add_argument("--telemetry-overhead", type=int, default=0, metavar="PAIRS",
                        help="instead of the usual rounds: PAIRS pairs of rounds with metrics and traces off then on "
                             "(--families each, at the first --concurrency), and the CPU ratio")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    run_id = uuid.uuid4().hex[:6]
    if args.telemetry_overhead:
        overhead = await telemetry_overhead(args.telemetry_overhead, args.families, levels[0], args.poll_ms / 1000, run_id)
        print_overhead(overhead)
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{args.output}-telemetry.json"
        out.write_text(json.dumps({"args": vars(args), "run_id": run_id, "telemetry_overhead": overhead}, indent=2, ensure_ascii=False))
        print(f"\nwritten {out}")
        return
    rounds = []
    for concurrency in levels:
        settings = Settings(poll_s=args.poll_ms / 1000)
        r = await run_round(args.families, concurrency, settings, run_id)
        rounds.append(round_figures(r))
    base = None if args.no_baselines else await baselines()
    for figures in rounds:
        print_round(figures, base)
    if base:
        print_baselines(base)
        print_targets(rounds, base)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.output}.json"
    out.write_text(json.dumps({"args": vars(args), "run_id": run_id, "rounds": rounds, "baselines": base}, indent=2, ensure_ascii=False))
    chart(rounds, RESULTS / f"{args.output}.png")
    print(f"\nwritten {out} and {RESULTS / (args.output + '.png')}")


if __name__ == "__main__":
    asyncio.run(main())
