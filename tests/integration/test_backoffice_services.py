"""The back-office's service side against the real servers: short references, the queue's search,
filters and totals, assignment leases, the staff directory (names, deactivation), and families
kept out of every new route."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.identity_client import GATEWAY, NEW_PASSWORD, invited_staff, logged_in, person
from tests.integration.test_household import Household, clean_document, content
from tests.integration.test_documents import new_family

API = f"{GATEWAY}/api/household"
IDENTITY_API = f"{GATEWAY}/api/identity"


async def staff_member(role: str, name: str) -> tuple[str, str, httpx.AsyncClient]:
    """(email, account id, a household client with the member's token)."""
    email, token = await invited_staff(role, name)
    client, _ = person()
    async with client:
        confirmed = await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
        assert confirmed.status_code == 200, confirmed.text
        access = (await logged_in(client, email, NEW_PASSWORD))["access_token"]
    http = httpx.AsyncClient(base_url=API, timeout=30, headers={"Authorization": f"Bearer {access}"})
    account_id = (await http.get("/session")).json()["account_id"]
    return email, account_id, http


@pytest.fixture
async def staff() -> Any:
    members = {
        "marie": await staff_member("agent", "Marie Dupont"),
        "paul": await staff_member("agent", "Paul Bernard"),
        "admin": await staff_member("admin", "Alice Admin"),
    }
    try:
        yield members
    finally:
        for _, _, http in members.values():
            await http.aclose()


async def submitted_file(first_name: str, last_name: str) -> tuple[Household, dict[str, Any]]:
    family = await new_family()
    household = Household(family)
    docs = {kind: await clean_document(family, kind) for kind in ("proof_of_address", "guardian_identity", "child_identity")}
    docs["guardian2_identity"] = await clean_document(family, "sworn_statement")  # in place of the second ID
    dossier = await household.created()
    body = content(docs, children=[{"first_name": first_name, "last_name": last_name, "birth_date": "2021-03-14",
                                    "identity_document_id": docs["child_identity"]}])
    saved = await household.put({**body, "version": dossier["version"]})
    assert saved.status_code == 200, saved.text
    return household, await household.submitted()


async def test_a_file_gets_a_short_reference_and_is_found_by_it_by_a_childs_name_and_by_email(staff: Any) -> None:
    _, _, marie = staff["marie"]
    last_name = f"Quintard{uuid.uuid4().hex[:6]}"  # a name of this run only
    household, dossier = await submitted_file("Éloïse", last_name)
    try:
        reference = dossier["reference"]
        assert re.fullmatch(r"MSL-\d{4}-\d{6}", reference), reference
        for query in (reference, reference.lower(), reference.rsplit("-", 1)[1].lstrip("0"), f"eloise {last_name}", last_name.upper(),
                      household.family.email):
            page = (await marie.get("/review/queue", params={"q": query, "status": "all"})).json()
            assert [item["id"] for item in page["items"]] == [dossier["id"]], query
            assert page["items"][0]["reference"] == reference and page["total"] == 1 and page["pages"] == 1
        at = dossier["submitted_at"]
        late = (await marie.get("/review/queue", params={"q": last_name, "submitted_until": at})).json()
        assert dossier["id"] in [i["id"] for i in late["items"]]  # « en retard »: submitted at or before the bound
        earlier = (datetime.fromisoformat(at) - timedelta(seconds=1)).isoformat()
        not_late = (await marie.get("/review/queue", params={"q": last_name, "submitted_until": earlier})).json()
        assert dossier["id"] not in [i["id"] for i in not_late["items"]]
        nobody = (await marie.get("/review/queue", params={"q": "quintard-inconnu-xyz"})).json()
        assert nobody["items"] == [] and nobody["total"] == 0
        review = (await marie.get(f"/review/dossiers/{dossier['id']}")).json()
        assert review["reference"] == reference and review["assignment"] is None
    finally:
        await household.family.close()
        await household.close()


async def test_the_queue_counts_its_pages_and_sorts_both_ways(staff: Any) -> None:
    _, _, marie = staff["marie"]
    oldest = (await marie.get("/review/queue", params={"limit": 2})).json()
    newest = (await marie.get("/review/queue", params={"limit": 2, "sort": "newest"})).json()
    assert oldest["total"] == newest["total"] >= 1 and oldest["pages"] == -(-oldest["total"] // 2)
    assert [i["submitted_at"] for i in oldest["items"]] == sorted(i["submitted_at"] for i in oldest["items"])
    assert [i["submitted_at"] for i in newest["items"]] == sorted((i["submitted_at"] for i in newest["items"]), reverse=True)
    if oldest["total"] > 2:
        second = (await marie.get("/review/queue", params={"limit": 2, "page": 2})).json()
        assert not {i["id"] for i in second["items"]} & {i["id"] for i in oldest["items"]}


async def test_an_agent_takes_a_file_the_others_see_who_and_cannot_decide_until_released_or_reassigned(staff: Any) -> None:
    _, marie_id, marie = staff["marie"]
    _, paul_id, paul = staff["paul"]
    _, _, admin = staff["admin"]
    name = f"Vasseur{uuid.uuid4().hex[:6]}"
    household, dossier = await submitted_file("Noé", name)
    dossier_id = dossier["id"]
    try:
        taken = await marie.post(f"/review/dossiers/{dossier_id}/assignment")
        assert taken.status_code == 200 and taken.json()["agent_id"] == marie_id
        seen = (await paul.get(f"/review/dossiers/{dossier_id}")).json()
        assert seen["assignment"]["agent_id"] == marie_id
        mine = (await marie.get("/review/queue", params={"assigned": "me", "q": name})).json()
        assert [i["id"] for i in mine["items"]] == [dossier_id] and mine["items"][0]["assignment"]["agent_id"] == marie_id
        free = (await paul.get("/review/queue", params={"assigned": "none", "q": name})).json()
        assert free["items"] == []

        refused = await paul.post(f"/review/dossiers/{dossier_id}/assignment")
        assert refused.status_code == 409 and "autre agent" in refused.json()["detail"]
        blocked = await paul.post(f"/review/dossiers/{dossier_id}/validate", json={})
        assert blocked.status_code == 409 and "autre agent" in blocked.json()["detail"]
        assert (await paul.delete(f"/review/dossiers/{dossier_id}/assignment")).status_code == 409
        assert (await paul.put(f"/review/dossiers/{dossier_id}/assignment", json={"agent_id": paul_id})).status_code == 403

        handed = await admin.put(f"/review/dossiers/{dossier_id}/assignment", json={"agent_id": paul_id})
        assert handed.status_code == 200 and handed.json()["agent_id"] == paul_id
        assert (await marie.post(f"/review/dossiers/{dossier_id}/validate", json={})).status_code == 409
        assert (await paul.delete(f"/review/dossiers/{dossier_id}/assignment")).status_code == 204
        free = (await marie.get("/review/queue", params={"assigned": "none", "q": name})).json()
        assert [i["id"] for i in free["items"]] == [dossier_id]

        assert (await marie.post(f"/review/dossiers/{dossier_id}/assignment")).status_code == 200
        decided = await marie.post(f"/review/dossiers/{dossier_id}/validate", json={})
        assert decided.status_code == 200, decided.text
        after = (await marie.get(f"/review/dossiers/{dossier_id}")).json()
        assert after["assignment"] is None  # the decision ends the lease
        again = await marie.post(f"/review/dossiers/{dossier_id}/assignment")
        assert again.status_code == 409 and "en attente d'examen" in again.json()["detail"]
    finally:
        await household.family.close()
        await household.close()


async def test_the_staff_directory_names_agents_and_a_deactivated_agent_can_no_longer_log_in(staff: Any) -> None:
    marie_email, marie_id, marie = staff["marie"]
    _, admin_id, admin = staff["admin"]
    identity = httpx.AsyncClient(base_url=IDENTITY_API, timeout=30)
    marie_identity = httpx.AsyncClient(base_url=IDENTITY_API, timeout=30, headers=marie.headers)
    admin_identity = httpx.AsyncClient(base_url=IDENTITY_API, timeout=30, headers=admin.headers)
    try:
        directory = (await marie_identity.get("/staff")).json()
        names = {m["account_id"]: m for m in directory}
        assert names[marie_id]["display_name"] == "Marie Dupont" and names[marie_id]["active"] is True
        assert (await marie_identity.post(f"/admin/staff/{admin_id}/deactivate")).status_code == 403
        own = await admin_identity.post(f"/admin/staff/{admin_id}/deactivate")
        assert own.status_code == 422 and "propre compte" in own.json()["detail"]
        assert (await admin_identity.post("/admin/staff/inconnu-0000/deactivate")).status_code == 404

        off = await admin_identity.post(f"/admin/staff/{marie_id}/deactivate")
        assert off.status_code == 200 and off.json()["active"] is False
        client, _ = person()
        async with client:
            refused = await client.post("/auth/login", json={"email": marie_email, "password": NEW_PASSWORD})
            assert refused.status_code == 403 and "désactivé" in refused.json()["detail"]
            listed = {m["account_id"]: m for m in (await admin_identity.get("/staff")).json()}
            assert listed[marie_id]["active"] is False and listed[marie_id]["display_name"] == "Marie Dupont"
            on = await admin_identity.post(f"/admin/staff/{marie_id}/reactivate")
            assert on.status_code == 200 and on.json()["active"] is True
            await logged_in(client, marie_email, NEW_PASSWORD)
    finally:
        for http in (identity, marie_identity, admin_identity):
            await http.aclose()


async def test_families_get_403_on_every_new_agent_route() -> None:
    family = await new_family()
    try:
        household = httpx.AsyncClient(base_url=API, timeout=30, headers=family.headers)
        identity = httpx.AsyncClient(base_url=IDENTITY_API, timeout=30, headers=family.headers)
        async with household, identity:
            for method, path in [("GET", "/review/queue?q=martin"), ("POST", "/review/dossiers/x/assignment"),
                                 ("DELETE", "/review/dossiers/x/assignment"), ("PUT", "/review/dossiers/x/assignment"),
                                 ("GET", "/review/correction-reasons"), ("PUT", "/review/correction-reasons"),
                                 ("GET", "/review/correction-reasons/history")]:
                body = {"reasons": [{"text": "x"}]} if path.endswith("reasons") else {"agent_id": "x"}
                response = await household.request(method, path, json=body if method == "PUT" else None)
                assert response.status_code == 403, (method, path, response.status_code)
            for method, path in [("GET", "/staff"), ("POST", "/admin/staff/x/deactivate"), ("POST", "/admin/staff/x/reactivate")]:
                assert (await identity.request(method, path)).status_code == 403, path
        async with httpx.AsyncClient(base_url=API, timeout=30) as anonymous:
            assert (await anonymous.get("/review/queue")).status_code == 401
            assert (await anonymous.post("/review/dossiers/x/assignment")).status_code == 401
            assert (await anonymous.get("/review/correction-reasons")).status_code == 401
            assert (await anonymous.put("/review/correction-reasons", json={"reasons": []})).status_code == 401
    finally:
        await family.close()
