"""Household against the real gateway, identity, documents (S3, clamd), Kafka and database: the
family file's whole lifecycle, the agents' review, replays, concurrency, access, erasure."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from jsonschema import Draft202012Validator

from services.kernel import mongo
from services.kernel.envelope import TYPE_PREFIX
from tests.integration.conftest import ROOT
from tests.integration.identity_client import GATEWAY, GOOD_PASSWORD
from tests.integration.kafka_tools import BOOTSTRAP, OPERATOR, read_all
from tests.integration.polling import eventually
from tests.integration.test_documents import Family, agent_token, eicar, fetch, new_family, pdf_bytes

API = f"{GATEWAY}/api/household"
TOPIC = "household.dossier.v1"
DOCUMENTS_TOPIC = "documents.document.v1"


class Household:
    def __init__(self, family: Family) -> None:
        self.family = family
        self.http = httpx.AsyncClient(base_url=API, timeout=30, headers=family.headers)

    async def created(self) -> dict[str, Any]:
        async def attempt() -> dict[str, Any] | None:
            response = await self.http.post("/dossier", json={})
            if response.status_code == 403:  # AccountActivated not projected yet
                return None
            assert response.status_code == 201, response.text
            return response.json()

        return await eventually(attempt, "the household service knows the account is activated")

    async def put(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.put("/dossier", json=body)

    async def mine(self) -> dict[str, Any]:
        response = await self.http.get("/dossier")
        assert response.status_code == 200, response.text
        return response.json()

    async def submitted(self) -> dict[str, Any]:
        """Submits once the local projection has seen every document's verdict."""
        last: list[httpx.Response] = []

        async def attempt() -> dict[str, Any] | None:
            response = await self.http.post("/dossier/submit")
            last[:] = [response]
            return response.json() if response.status_code == 200 else None

        try:
            return await eventually(attempt, "submission accepted")
        except AssertionError:
            raise AssertionError(last[0].text) from None

    async def complete_and_submitted(self) -> tuple[dict[str, str], dict[str, Any]]:
        """A new file with one guardian, one child and their clean proofs, submitted: the proofs
        by kind, and the file."""
        docs = {k: await clean_document(self.family, k) for k in ("proof_of_address", "guardian_identity", "child_identity")}
        await self.created()
        assert (await self.put(content(docs, guardians=content(docs)["guardians"][:1]))).status_code == 200
        return docs, await self.submitted()

    async def close(self) -> None:
        await self.http.aclose()


async def clean_document(family: Family, kind: str) -> str:
    document = await family.uploaded(pdf_bytes(kind), f"{kind}.pdf", kind)
    await family.wait_status(document["id"], "clean")
    return document["id"]


def content(docs: dict[str, str], **over: Any) -> dict[str, Any]:
    body = {
        # an address of the town (the sector map is Montclair-sur-Loire's)
        "address": {"number": "12 bis", "street": "rue des Lilas", "postcode": "45190", "town": "Montclair-sur-Loire",
                    "proof_document_id": docs.get("proof_of_address")},
        "guardians": [
            {"first_name": "Camille", "last_name": "Martin", "relationship": "mère", "phone": "06 12 34 56 78",
             "identity_document_id": docs.get("guardian_identity")},
            {"first_name": "Alex", "last_name": "Durand", "relationship": "père", "phone": "07 98 76 54 32",
             "email": "alex.durand@example.org", "identity_document_id": docs.get("guardian2_identity")},
        ],
        "children": [{"first_name": "Léa", "last_name": "Martin", "birth_date": "2021-03-14",
                      "identity_document_id": docs.get("child_identity")}],
    }
    body.update(over)
    return body


def sent_back(view: dict[str, Any]) -> dict[str, Any]:
    """The family's view turned back into a request body (ids kept)."""
    address = {k: view["address"][k] for k in ("number", "street", "postcode", "town", "proof_document_id")}
    guardians = [{k: g.get(k) for k in ("guardian_id", "first_name", "last_name", "relationship", "phone", "email", "identity_document_id")}
                 for g in view["guardians"]]
    children = [{k: c.get(k) for k in ("child_id", "first_name", "last_name", "birth_date", "identity_document_id")}
                for c in view["children"]]
    return {"address": address, "guardians": guardians, "children": children,
            "recommended": [{k: r.get(k) for k in ("kind", "document_id", "child_id")} for r in view["recommended"]],
            "version": view["version"]}


@pytest.fixture
async def household() -> Any:
    family = await new_family()
    h = Household(family)
    try:
        yield h
    finally:
        await h.close()
        await family.close()


_AGENT: dict[str, str] = {}


@pytest.fixture
async def agent() -> Any:
    """One agent account for the module (its token lives 10 minutes), a client per test."""
    if "token" not in _AGENT:
        _AGENT["token"] = await agent_token()
    token = _AGENT["token"]
    async with httpx.AsyncClient(base_url=API, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        client.account_id = (await client.get("/session")).json()["account_id"]  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def household_db(settings: Any) -> Any:
    client = mongo.connect(settings.mongo_url)
    try:
        yield client["ecp_household"]
    finally:
        client.close()


async def dossier_events(dossier_id: str) -> list[dict[str, Any]]:
    return [e for e in (json.loads(r.value) for r in await read_all(TOPIC)) if e["subject"] == dossier_id]


async def review_links(agent: httpx.AsyncClient, dossier_id: str) -> dict[str, Any] | None:
    view = (await agent.get(f"/review/dossiers/{dossier_id}")).json()
    return view if view["documents"] and all(d["url"] for d in view["documents"]) else None


async def test_the_whole_lifecycle_with_the_correction_loop_validation_and_a_change_after_it(
    household: Household, agent: httpx.AsyncClient
) -> None:
    family = household.family
    docs = {kind: await clean_document(family, kind) for kind in ("proof_of_address", "guardian_identity")}
    docs["guardian2_identity"] = await clean_document(family, "sworn_statement")
    infected = await family.uploaded(b"%PDF-1.4\n" + eicar() + b"\n%%EOF\n", "virus.pdf", "child_identity")
    docs["child_identity"] = infected["id"]
    dossier = await household.created()
    assert dossier["status"] == "draft" and len(dossier["submission_problems"]) == 3

    saved = await household.put({**content(docs), "version": dossier["version"]})
    assert saved.status_code == 200, saved.text
    view = saved.json()
    dossier_id = view["id"]

    # refused while the child's document is pending or infected, with a French list
    await family.wait_status(infected["id"], "infected")

    async def refused_for_the_virus() -> bool:
        response = await household.http.post("/dossier/submit")
        assert response.status_code == 422, response.text
        return any("virus" in p and "Léa Martin" in p for p in response.json()["problems"])

    await eventually(refused_for_the_virus, "submission refused because of the infected document")

    pending = await family.uploaded(pdf_bytes("enfant"), "enfant.pdf", "child_identity")
    docs["child_identity"] = pending["id"]
    view = (await household.put({**content(docs), "version": view["version"]})).json()
    early = await household.http.post("/dossier/submit")
    if early.status_code == 422:  # the projection has not seen the clean verdict yet
        assert any("Léa Martin" in p for p in early.json()["problems"])
    await family.wait_status(pending["id"], "clean")
    # the early submission went through when the clean verdict was already projected
    submitted = early.json() if early.status_code == 200 else await household.submitted()
    assert submitted["status"] == "submitted"

    # under review: the family cannot edit, submitting again is refused
    assert (await household.put(content(docs))).status_code == 409
    again = await household.http.post("/dossier/submit")
    assert again.status_code == 409 and "transmis" in again.json()["detail"]

    # the queue shows it (oldest first); the review has the documents with working links
    since = (datetime.fromisoformat(submitted["submitted_at"]) - timedelta(seconds=1)).isoformat()
    page = (await agent.get("/review/queue", params={"submitted_from": since, "limit": 100})).json()
    listed = next(item for item in page["items"] if item["id"] == dossier_id)
    assert listed["family"] == "Camille Martin, Alex Durand"  # names only: no contact details in the queue
    times = [item["submitted_at"] for item in page["items"]]
    assert times == sorted(times)
    review = await eventually(lambda: review_links(agent, dossier_id), "download links for the agent")
    assert {d["document_id"] for d in review["documents"]} == set(docs.values())
    sworn = next(d for d in review["documents"] if d["document_id"] == docs["guardian2_identity"])
    assert sworn["sworn"] and sworn["replaces"].startswith("la pièce d'identité de ")  # not passed off as the piece
    assert sworn["title"] == f"Attestation sur l'honneur, à la place de {sworn['replaces']}"
    assert not any(d["sworn"] for d in review["documents"] if d["document_id"] != docs["guardian2_identity"])
    assert all("phone" not in g and "email" not in g for g in review["guardians"])
    assert (await fetch(review["documents"][0]["url"])).status_code == 200

    # corrections: one reason per item, shown next to it
    asked = await agent.post(f"/review/dossiers/{dossier_id}/request-corrections", json={"corrections": [
        {"item": docs["child_identity"], "reason": "La pièce d'identité de l'enfant est illisible."},
        {"item": "address.number", "reason": "Le numéro ne correspond pas au justificatif."},
    ]})
    assert asked.status_code == 200, asked.text
    mine = await household.mine()
    assert mine["status"] == "corrections_requested"
    assert mine["children"][0]["corrections"] == ["La pièce d'identité de l'enfant est illisible."]
    assert mine["address"]["corrections"] == ["Le numéro ne correspond pas au justificatif."]
    assert [e["action"] for e in mine["timeline"]] == ["submitted", "corrections_requested"]

    # the family replaces the document and resubmits
    docs["child_identity"] = await clean_document(family, "child_identity")
    body = sent_back(mine)
    body["children"][0]["identity_document_id"] = docs["child_identity"]
    body["address"]["number"] = "14"
    assert (await household.put(body)).status_code == 200
    resubmitted = await household.submitted()
    assert resubmitted["status"] == "submitted"

    # two agents validate at once: one wins
    answers = await asyncio.gather(
        agent.post(f"/review/dossiers/{dossier_id}/validate"), agent.post(f"/review/dossiers/{dossier_id}/validate")
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["detail"] == "Ce dossier vient d'être traité par un autre agent."
    mine = await household.mine()
    assert mine["status"] == "validated" and mine["children"][0]["validated"] and mine["address"]["validated"]
    assert mine["corrections"] == []

    # a new child after validation: back to review for it, Léa stays validated
    body = sent_back(mine)
    body["children"].append({"first_name": "Tom", "last_name": "Martin", "birth_date": "2023-05-02",
                             "identity_document_id": await clean_document(family, "child_identity")})
    changed = (await household.put(body)).json()
    assert changed["status"] == "draft"
    assert [c["validated"] for c in changed["children"]] == [True, False]
    assert (await household.submitted())["status"] == "submitted"
    review = (await agent.get(f"/review/dossiers/{dossier_id}")).json()
    assert [c["validated"] for c in review["children"]] == [True, False]
    assert (await agent.post(f"/review/dossiers/{dossier_id}/validate")).status_code == 200

    # the events, in order; DossierValidated matches its published JSON Schema
    async def all_events() -> list[dict[str, Any]] | None:
        found = await dossier_events(dossier_id)
        return found if len(found) == 6 else None

    found = await eventually(all_events, "six events on household.dossier.v1")
    assert [e["type"].removeprefix(TYPE_PREFIX) for e in found] == [
        "HouseholdSubmitted", "CorrectionRequested", "HouseholdSubmitted", "DossierValidated", "HouseholdSubmitted", "DossierValidated",
    ]
    assert [e["data"]["resubmission"] for e in found if e["type"] == "fr.montclair-sur-loire.ecp.HouseholdSubmitted"] == [False, True, True]
    schema = json.loads((ROOT / "schemas/events/DossierValidated.v1.json").read_text())
    last = found[-1]
    assert list(Draft202012Validator(schema).iter_errors(last)) == []
    assert last["data"]["address"] == {"number": "14", "street": "rue des Lilas", "postcode": "45190", "town": "Montclair-sur-Loire"}
    assert [c["first_name"] for c in last["data"]["children"]] == ["Léa", "Tom"]
    assert last["data"]["account_id"] == family.account_id

    # the audit trail: who, when, what, why
    audit = (await agent.get(f"/review/dossiers/{dossier_id}/audit")).json()
    assert [e["action"] for e in audit] == ["submitted", "corrections_requested", "submitted", "validated", "submitted", "validated"]
    decisions = [e for e in audit if e["actor"] == "agent"]
    assert all(e["agent_id"] == agent.account_id for e in decisions)  # type: ignore[attr-defined]
    assert decisions[0]["corrections"][0]["reason"] == "La pièce d'identité de l'enfant est illisible."
    assert all(e["at"] for e in audit)
    # the family sees the timeline without agent ids
    assert all("agent_id" not in e for e in (await household.mine())["timeline"])


async def test_an_agent_reads_a_clean_document_of_a_submitted_file_and_the_owner_cannot_delete_it(
    household: Household, agent: httpx.AsyncClient
) -> None:
    family = household.family
    docs, dossier = await household.complete_and_submitted()
    documents_api = httpx.AsyncClient(base_url=f"{GATEWAY}/api/documents", timeout=30, headers=agent.headers)
    async with documents_api:
        async def link() -> httpx.Response | None:
            response = await documents_api.get(f"/documents/{docs['child_identity']}/download")
            return response if response.status_code == 200 else None

        response = await eventually(link, "the documents service knows the file is submitted")
        downloaded = await fetch(response.json()["url"])
        assert downloaded.status_code == 200 and downloaded.content.startswith(b"%PDF")
    refused = await family.http.delete(f"/documents/{docs['proof_of_address']}")
    assert refused.status_code == 409, refused.text
    assert "dossier" in refused.json()["detail"]

    # rejected: the family may replace its documents again
    rejected = await agent.post(f"/review/dossiers/{dossier['id']}/reject", json={"reason": "Adresse hors commune."})
    assert rejected.status_code == 200
    mine = await household.mine()
    assert mine["status"] == "rejected" and mine["rejection_reason"] == "Adresse hors commune."

    async def deletable() -> bool:
        return (await family.http.delete(f"/documents/{docs['proof_of_address']}")).status_code == 204

    await eventually(deletable, "the owner may delete once the file is rejected")


async def test_replayed_events_change_nothing(household: Household, agent: httpx.AsyncClient, household_db: Any) -> None:
    family = household.family
    docs = {k: await clean_document(family, k) for k in ("proof_of_address", "guardian_identity", "child_identity")}
    await household.created()
    assert (await household.put(content(docs, guardians=content(docs)["guardians"][:1]))).status_code == 200
    dossier = await household.submitted()
    asked = await agent.post(f"/review/dossiers/{dossier['id']}/request-corrections",
                             json={"corrections": [{"item": "address", "reason": "Adresse incomplète."}]})
    assert asked.status_code == 200

    # the owner deletes the proof of address once the file is sent back
    async def deleted() -> bool:
        return (await family.http.delete(f"/documents/{docs['proof_of_address']}")).status_code == 204

    await eventually(deleted, "the proof of address can be deleted")
    projection = household_db["documents"]
    await eventually(lambda: projection.find_one({"_id": docs["proof_of_address"], "status": "deleted"}), "deletion projected")

    # re-send the document's upload and clean verdict, and the file's submission, twice each
    records = [r for r in await read_all(DOCUMENTS_TOPIC) if r.key == docs["proof_of_address"]]
    types = [json.loads(r.value)["type"].removeprefix(TYPE_PREFIX) for r in records]
    assert types == ["DocumentUploaded", "DocumentScanned", "DocumentDeleted"]
    submission = [r for r in await read_all(TOPIC) if r.key == dossier["id"]][0]
    before = await household_db["dossiers"].find_one({"_id": dossier["id"]}, {"outbox": 0})
    producer = AIOKafkaProducer(**OPERATOR.client_options(), bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for _ in range(2):
            for record in records[:2]:
                await producer.send_and_wait(DOCUMENTS_TOPIC, record.value, key=record.key.encode())
            await producer.send_and_wait(TOPIC, submission.value, key=submission.key.encode())
    finally:
        await producer.stop()
    await asyncio.sleep(4)
    assert (await projection.find_one({"_id": docs["proof_of_address"]}))["status"] == "deleted"
    after = await household_db["dossiers"].find_one({"_id": dossier["id"]}, {"outbox": 0})
    assert after == before
    refused = await household.http.post("/dossier/submit")
    assert refused.status_code == 422 and any("supprimé" in p for p in refused.json()["problems"])
    # the documents service did not attach the file's documents again: the owner may still delete
    assert (await family.http.delete(f"/documents/{docs['child_identity']}")).status_code == 204


async def test_access_matrix(household: Household, agent: httpx.AsyncClient) -> None:
    dossier = await household.created()
    other = await new_family()
    async with httpx.AsyncClient(base_url=API, timeout=30, headers=other.headers) as other_http:
        assert (await other_http.get(f"/dossiers/{dossier['id']}")).status_code == 404
        assert (await other_http.get("/dossier")).status_code == 404
        assert (await other_http.get("/review/queue")).status_code == 403
        assert (await other_http.get(f"/review/dossiers/{dossier['id']}")).status_code == 403
        assert (await other_http.post(f"/review/dossiers/{dossier['id']}/validate")).status_code == 403
    await other.close()
    assert (await household.http.get(f"/dossiers/{dossier['id']}")).status_code == 200
    assert (await household.http.get("/review/queue")).status_code == 403
    async with httpx.AsyncClient(base_url=API, timeout=30) as anonymous:
        for method, path in [("GET", "/dossier"), ("POST", "/dossier"), ("GET", "/review/queue"),
                             ("GET", f"/review/dossiers/{dossier['id']}/audit")]:
            answer = await anonymous.request(method, path)
            assert answer.status_code == 401, path
    # agents decide but never edit family data, nor create files
    assert (await agent.put("/dossier", json={})).status_code == 403
    assert (await agent.post("/dossier", json={})).status_code == 403
    # a draft cannot be decided
    draft = await agent.post(f"/review/dossiers/{dossier['id']}/validate")
    assert draft.status_code == 409 and "pas en attente" in draft.json()["detail"]
    assert (await agent.get("/review/dossiers/not-a-dossier")).status_code == 404
    # one file per account
    again = await household.http.post("/dossier", json={})
    assert again.status_code == 409


async def test_bad_input_gets_a_french_4xx_and_writes_nothing(household: Household, agent: httpx.AsyncClient, household_db: Any) -> None:
    dossier = await household.created()
    stored = await household_db["dossiers"].find_one({"_id": dossier["id"]}, {"outbox": 0})
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    cases = [
        {"address": {"number": "1", "street": "rue", "postcode": "7502", "town": "Paris"}},
        {"children": [{"first_name": "Léa", "last_name": "Martin", "birth_date": future}]},
        {"children": [{"first_name": "Léa", "last_name": "Martin", "birth_date": "1990-01-01"}]},
        {"guardians": [{"first_name": "A", "last_name": "B", "relationship": "oncle"}]},
        {"guardians": [{"first_name": "A", "last_name": "B", "relationship": "mère"}] * 3},
        {"children": [{"child_id": "inconnu", "first_name": "A", "last_name": "B", "birth_date": "2020-01-01"}]},
        {"children": [{"first_name": "", "last_name": "B", "birth_date": "2020-01-01"}]},
    ]
    for body in cases:
        answer = await household.put(body)
        assert answer.status_code == 422, body
        assert answer.json()["detail"]
    problems = (await household.put(cases[1])).json()["problems"]
    assert "futur" in problems[0]
    garbage = await household.http.put("/dossier", content=b"{pas du json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 422
    stale = await household.put({"version": dossier["version"] + 5})
    assert stale.status_code == 409
    assert await household_db["dossiers"].find_one({"_id": dossier["id"]}, {"outbox": 0}) == stored
    # the review refuses empty reasons and corrections lists
    assert (await agent.post(f"/review/dossiers/{dossier['id']}/reject", json={"reason": "  "})).status_code == 422
    assert (await agent.post(f"/review/dossiers/{dossier['id']}/request-corrections", json={"corrections": []})).status_code == 422
    assert (await agent.get("/review/queue", params={"cursor": "@@@"})).status_code == 422
    assert (await agent.get("/review/queue", params={"status": "nimporte"})).status_code == 422


async def test_erasure_keeps_only_what_the_audit_needs(household: Household, agent: httpx.AsyncClient, household_db: Any) -> None:
    family = household.family
    docs = {k: await clean_document(family, k) for k in ("proof_of_address", "guardian_identity", "child_identity")}
    await household.created()
    assert (await household.put(content(docs))).status_code == 200  # the second guardian has no document
    problems = (await household.http.post("/dossier/submit")).json()["problems"]
    assert any("Alex Durand" in p for p in problems)
    assert (await household.put(content(docs, guardians=content(docs)["guardians"][:1]))).status_code == 200
    dossier = await household.submitted()
    assert (await agent.post(f"/review/dossiers/{dossier['id']}/reject", json={"reason": "Léa Martin n'habite pas la commune."})).status_code == 200
    deleted = await family.identity.post("/me/delete", json={"password": GOOD_PASSWORD}, headers=family.headers)
    assert deleted.status_code in (200, 204), deleted.text

    async def erased() -> dict[str, Any] | None:
        return await household_db["dossiers"].find_one({"_id": dossier["id"], "status": "erased"}, {"outbox": 0})

    left = await eventually(erased, "the file is erased")
    for field in ("address", "children", "guardians", "recommended", "account_id", "rejection_reason", "corrections"):
        assert field not in left, field
    assert [e["action"] for e in left["history"]] == ["submitted", "rejected"]
    assert left["history"][1]["agent_id"] == agent.account_id  # type: ignore[attr-defined]
    assert all("reason" not in e for e in left["history"])
    assert "Martin" not in json.dumps(left, default=str)
    assert await household_db["documents"].count_documents({"account_id": family.account_id}) == 0
    # the file is gone from review; its audit trail still reads
    assert (await agent.get(f"/review/dossiers/{dossier['id']}")).status_code == 404
    audit = (await agent.get(f"/review/dossiers/{dossier['id']}/audit")).json()
    assert [(e["action"], e["agent_id"]) for e in audit] == [("submitted", None), ("rejected", agent.account_id)]  # type: ignore[attr-defined]


async def test_the_queue_pages_oldest_first_with_ties_and_filters(db: Any) -> None:
    from services.household.store import HouseholdStore, decode_cursor, encode_cursor

    store = HouseholdStore(db)
    await store.ensure_indexes()
    base = datetime(2026, 9, 1, tzinfo=UTC)
    rows = [{"_id": f"d{i:02d}", "status": "submitted" if i % 5 else "validated", "version": 1,
             "submitted_at": base + timedelta(minutes=i // 3)} for i in range(40)]  # three per minute: ties
    for row in rows:  # as the service writes them: counted, so pages walk windows from the oldest counted
        await store.insert(row)
    expected = sorted((r for r in rows if r["status"] == "submitted"), key=lambda r: (r["submitted_at"], r["_id"]))
    seen: list[str] = []
    after = None
    while True:
        page = await store.queue(status="submitted", after=after, limit=7)
        seen += [p["_id"] for p in page]
        if len(page) < 7:
            break
        after = decode_cursor(encode_cursor(page[-1]["submitted_at"], page[-1]["_id"]))
    assert seen == [r["_id"] for r in expected]
    window = await store.queue(status="submitted", submitted_from=base + timedelta(minutes=2),
                               submitted_to=base + timedelta(minutes=4), limit=100)
    assert [w["_id"] for w in window] == [r["_id"] for r in expected if base + timedelta(minutes=2) <= r["submitted_at"] < base + timedelta(minutes=4)]
