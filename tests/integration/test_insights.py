"""Insights (faust-streaming) against the real broker and services.

1. Real families go through the portal (one waits, one is sent back, one is rejected, one is
   enrolled in its sector school, one enrolled elsewhere by dérogation): every table of the running
   insights service moves exactly as the source services' own APIs say (household's queue totals,
   enrolment's per-school counts and pending list, each family's own file and enrolment).
2. A private insights process (its own app id, throwaway topics with a synthetic campaign where
   every tenth event is delivered twice) is killed -9 mid-stream and restarted: its tables are
   rebuilt from their changelogs, give the campaign's exact figures, and each overdue file got
   exactly one DossierOverdue.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from tests.integration.conftest import ROOT, Processes
from tests.integration.identity_client import GATEWAY, staff_token
from tests.integration.insights_synthetic import Campaign, Topics, publish
from tests.integration.kafka_tools import OPERATOR, read_all
from tests.integration.polling import eventually
from tests.integration.test_documents import new_family
from tests.integration.test_household import Household, clean_document, content

INSIGHTS = f"{GATEWAY}/api/insights"
STATUSES = ("submitted", "corrections_requested", "validated", "rejected")
KINDS = ("proof_of_address", "guardian_identity", "child_identity")
SCHOOLS = ("elem-jaures", "prim-curie")


def agent_client(token: str, base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def insights_tables(api: httpx.AsyncClient) -> dict[str, Any]:
    files, schools, funnel = [(await api.get(p)).json() for p in ("/files", "/schools", "/funnel")]
    confirmed = {(r["school_id"], r["level"], r["school_year"]): r["confirmed"] for r in schools["rows"]}
    return {"by_status": files["by_status"], "sent_back": files["corrections"]["files_sent_back"],
            "confirmed": confirmed, "waiting": sum(r["waiting"] for r in schools["rows"]),
            "derogations": sum((Counter({(r["school_id"], k): r[k] for k in ("derogations_asked", "derogations_granted")})
                                for r in schools["rows"]), Counter()),
            "funnel": funnel["reached"]}


async def source_tables(household: httpx.AsyncClient, enrolment: httpx.AsyncClient, year: str) -> dict[str, Any]:
    """The same counts, from the source services' own APIs."""
    by_status = {s: (await household.get("/review/queue", params={"status": s, "limit": 1})).json()["total"] for s in STATUSES}
    confirmed: dict[tuple[str, str, str], int] = {}
    for school in SCHOOLS:
        overview = (await enrolment.get(f"/schools/{school}/enrolments", params={"school_year": year})).json()
        for level in overview["levels"]:
            confirmed[(school, level["level"], overview["school_year"])] = level["confirmed"]
    pending = len((await enrolment.get("/enrolments/pending")).json()["enrolments"])
    return {"by_status": by_status, "confirmed": confirmed, "pending": pending}


def delta(after: dict[Any, int], before: dict[Any, int]) -> dict[Any, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def journey(agent_household: httpx.AsyncClient, agent_enrolment: httpx.AsyncClient, outcome: str,
                  birth_year: int, year: str) -> dict[str, Any]:
    family = await new_family()
    h = Household(family)
    try:
        dossier = await h.created()
        docs = {kind: await clean_document(family, kind) for kind in KINDS}
        body = content(docs, address={"number": "12", "street": "rue des Lilas", "postcode": "45190",
                                      "town": "Montclair-sur-Loire", "proof_document_id": docs["proof_of_address"]},
                       children=[{"first_name": "Léa", "last_name": "Martin", "birth_date": f"{birth_year}-03-14",
                                  "identity_document_id": docs["child_identity"]}])
        body["guardians"] = body["guardians"][:1]
        put = await h.put({**body, "version": dossier["version"]})
        assert put.status_code == 200, put.text
        await h.submitted()
        dossier_id = (await h.mine())["id"]
        review = f"/review/dossiers/{dossier_id}"
        if outcome == "sent_back":
            answer = await agent_household.post(f"{review}/request-corrections", json={
                "corrections": [{"item": "address.number", "reason": "Le numéro ne correspond pas au justificatif."}]})
        elif outcome == "rejected":
            answer = await agent_household.post(f"{review}/reject", json={"reason": "Vous n'habitez pas la commune."})
        elif outcome in ("enrolled", "derogation"):
            answer = await agent_household.post(f"{review}/validate")
        else:
            return {"account_id": family.account_id, "dossier_id": dossier_id}
        assert answer.status_code == 200, answer.text
        if outcome in ("enrolled", "derogation"):
            enrolment = httpx.AsyncClient(base_url=f"{GATEWAY}/api/enrolment", headers=family.headers, timeout=30)

            async def unlocked() -> dict[str, Any] | None:
                body = (await enrolment.get("/enrolments/eligible")).json()
                return body if body["unlocked"] and body["children"] else None

            kid = (await eventually(unlocked, "enrolment unlocked", 60))["children"][0]
            wanted: dict[str, Any] = {"child_id": kid["child_id"], "school_year": year}
            if outcome == "derogation":
                wanted["derogation"] = {"requested_school_id": "prim-curie", "reason_category": "fratrie",
                                        "reason_text": "Sa sœur est à Marie-Curie."}
            created = await enrolment.post("/enrolments", json=wanted)
            assert created.status_code == 201, created.text
            if outcome == "derogation":
                decided = await agent_enrolment.post(f"/enrolments/{created.json()['id']}/derogation/decision",
                                                     json={"decision": "accepted"})
                assert decided.status_code == 200, decided.text
            await enrolment.aclose()
        return {"account_id": family.account_id, "dossier_id": dossier_id}
    finally:
        await h.close()
        await family.close()


async def test_every_table_moves_as_the_source_services_apis_say_over_real_journeys() -> None:
    token = await staff_token("agent", "Inès Sights")
    api = agent_client(token, INSIGHTS)
    household = agent_client(token, f"{GATEWAY}/api/household")
    enrolment = agent_client(token, f"{GATEWAY}/api/enrolment")
    overview = (await enrolment.get("/schools/elem-jaures/enrolments")).json()
    year = overview["school_year"]
    start = int(year[:4])
    # A seat for each child in CP (a full level would send the enrolment to an agent).
    for school in SCHOOLS:
        row = next(r for r in (await enrolment.get(f"/schools/{school}/enrolments", params={"school_year": year})).json()["levels"]
                   if r["level"] == "CP")
        if row["free"] < 3:
            raised = await enrolment.put(f"/schools/{school}/capacity",
                                         json={"school_year": start, "level": "CP", "capacity": row["seats_taken"] + 5})
            assert raised.status_code == 200, raised.text

    async def settled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Both sides read twice, a second apart, unchanged: no event in flight. A service restarted
        meanwhile by another engineer (a 502/503 without the expected body) is read again."""
        try:
            first = (await insights_tables(api), await source_tables(household, enrolment, year))
            await asyncio.sleep(1.0)
            second = (await insights_tables(api), await source_tables(household, enrolment, year))
        except (KeyError, httpx.HTTPError):
            return None
        return first if first == second else None

    before_insights, before_source = await eventually(settled, "the campaign is quiet", 180, 1)
    outcomes = ["waiting", "sent_back", "rejected", "enrolled", "derogation"]
    journeys = await asyncio.gather(*(journey(household, enrolment, o, start - 6, year) for o in outcomes))

    async def equal() -> tuple[dict[str, Any], dict[str, Any]] | None:
        got = await settled()
        if got is None:
            return None
        after_insights, after_source = got
        same = (delta(after_insights["by_status"], before_insights["by_status"]) ==
                delta(after_source["by_status"], before_source["by_status"])
                and delta(after_insights["confirmed"], before_insights["confirmed"]) ==
                delta(after_source["confirmed"], before_source["confirmed"])
                and after_insights["waiting"] - before_insights["waiting"] == after_source["pending"] - before_source["pending"])
        return got if same else None

    # The whole campaign (other engineers' families included) moved the same on both sides.
    after_insights, after_source = await eventually(equal, "insights' tables agree with the source services", 180, 1)
    # And the five journeys are in it, as their own files and enrolments say.
    statuses = Counter([(await household.get(f"/review/dossiers/{j['dossier_id']}")).json()["status"] for j in journeys])
    assert statuses == {"submitted": 1, "corrections_requested": 1, "rejected": 1, "validated": 2}
    # (Files per status are net figures: other families' files move out as these move in, so the
    # equality above is the check; the counts below only grow.)
    moved = delta(after_insights["confirmed"], before_insights["confirmed"])
    assert moved.get(("elem-jaures", "CP", year), 0) >= 1 and moved.get(("prim-curie", "CP", year), 0) >= 1
    assert after_insights["sent_back"] - before_insights["sent_back"] >= 1
    derogations = delta(after_insights["derogations"], before_insights["derogations"])
    assert derogations.get(("prim-curie", "derogations_asked"), 0) >= 1
    assert derogations.get(("prim-curie", "derogations_granted"), 0) >= 1
    # Identity has no API counting families: the funnel is checked against the journeys themselves.
    funnel = delta(after_insights["funnel"], before_insights["funnel"])
    for step, at_least in {"registered": 5, "activated": 5, "file_started": 5, "submitted": 5, "validated": 2,
                           "enrolled": 2}.items():
        assert funnel.get(step, 0) >= at_least, (step, funnel)
    for client in (api, household, enrolment):
        await client.aclose()


def insights_process(processes: Processes, topics: Topics, app_id: str, port: int) -> Any:
    env = {**topics.settings_env(), "ECP_APP_ID": app_id, "ECP_HTTP_PORT": str(port), "ECP_OTLP_ENDPOINT": "", "ECP_LOG_LEVEL": "INFO",
           "ECP_KAFKA_USERNAME": OPERATOR.username, "ECP_KAFKA_PASSWORD": OPERATOR.password,
           "ECP_OVERDUE_CHECK_INTERVAL_S": "1", "ECP_OVERDUE_FIRST_CHECK_DELAY_S": "3", "ECP_FIGURES_INTERVAL_S": "2"}
    return processes.start("-m", "services.insights.main", env=env)


async def overdue_announcements(topics: Topics) -> Counter[str]:
    return Counter(json.loads(r.value)["data"]["dossier_id"] for r in await read_all(topics.overdue))


async def applied_so_far(port: int) -> float:
    try:
        metrics = (await httpx.AsyncClient(timeout=2).get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("ecp_insights_events_total{"))


async def test_killed_mid_stream_it_rebuilds_the_same_figures_and_announces_each_overdue_file_once(
    processes: Processes,
) -> None:
    topics = await Topics.created("insights")
    app_id = f"insights-test-{uuid.uuid4().hex[:8]}"
    campaign = Campaign(families=400)
    total = campaign.count()
    port = 18106
    token = await staff_token("agent", "Inès Crash")
    try:
        # The waiting files first (they are overdue), then the rest while the process runs.
        first = await publish(topics, campaign, duplicate_every=10, limit=total // 3)
        process = insights_process(processes, topics, app_id, port)
        await eventually(lambda: overdue_announcements(topics), "a first DossierOverdue announced", 90, 1)
        rest = asyncio.create_task(publish(topics, campaign, duplicate_every=10, skip=total // 3))
        await eventually(lambda: applied_so_far(port), "the app consumed part of the stream", 30, 0.2)
        await asyncio.sleep(1.0)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        sent = first + await rest
        assert sent > total  # duplicates were delivered
        insights_process(processes, topics, app_id, port)
        api = agent_client(token, f"http://127.0.0.1:{port}")

        async def rebuilt() -> dict[str, Any] | None:
            try:
                files = (await api.get("/files")).json()
                schools = (await api.get("/schools")).json()
            except httpx.HTTPError:
                return None
            funnel = (await api.get("/funnel")).json()
            if files.get("by_status") != campaign.expected_status or funnel["reached"]["registered"] != campaign.families:
                return None
            if not any(r["capacity"] for r in schools.get("rows", ())):  # another topic: read at its own pace
                return None
            return {"files": files, "schools": schools, "funnel": funnel}

        tables = await eventually(rebuilt, "the restarted app has the campaign's figures", 180, 1)
        validated = campaign.expected_status["validated"]
        assert tables["schools"]["rows"] == [{"school_year": campaign.school_year, "school_id": "elem-jaures", "level": "CP",
                                              "requested": validated, "confirmed": validated, "waiting": 0,
                                              "derogations_asked": 0, "derogations_granted": 0,
                                              "school_name": "École élémentaire Jean-Jaurès", "capacity": campaign.capacity}]
        # Files submitted and decided per Paris day: the windowed table, rebuilt, duplicates counted once.
        assert tables["files"]["per_day"] == campaign.expected_per_day, (tables["files"]["per_day"], campaign.expected_per_day)
        assert tables["files"]["overdue"] == len(campaign.expected_overdue)
        assert tables["funnel"]["reached"] == {"registered": 400, "activated": 400, "file_started": 300, "submitted": 300,
                          "validated": validated, "enrolled": validated}

        async def all_announced() -> Counter[str] | None:
            seen = await overdue_announcements(topics)
            return seen if campaign.expected_overdue <= set(seen) else None

        await eventually(all_announced, "every overdue file announced", 90, 1)
        await asyncio.sleep(5)  # several more checks after the restart: none may announce again
        announced = await overdue_announcements(topics)
        # A file whose validation was not published yet when the first process ran was overdue then:
        # announced too, once. No file is ever announced twice, across the kill and the restart.
        assert campaign.expected_overdue <= set(announced)
        assert max(announced.values()) == 1, [d for d, n in announced.items() if n > 1]

        # The open figures: the same counts, "<5" below 5, valid against the published JSON Schema.
        figures = [json.loads(r.value) for r in await read_all(topics.figures)]
        assert figures, "no CampaignFigures published"
        latest = max(figures, key=lambda e: e["time"])
        schema = json.loads((ROOT / "schemas/events/CampaignFigures.v1.json").read_text())
        assert not list(Draft202012Validator(schema).iter_errors(latest))
        assert latest["data"]["files_by_status"] == {"submitted": len(campaign.expected_overdue), "validated": validated,
                                                     "corrections_requested": "<5", "rejected": "<5"}
        assert latest["data"]["funnel"]["registered"] == campaign.families
        await api.aclose()
    finally:
        processes.stop_all()
        await topics.delete(app_id)

