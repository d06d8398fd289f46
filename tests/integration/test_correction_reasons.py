"""The preset correction reasons against the real household service, through the gateway: agents
read the list, an admin adds, edits, moves and removes a reason and each change is in the
history with the admin and the time; bad lists get a French 422 and change nothing; an agent
may not change it. The list is shared with every other test and user: these tests only touch a
reason of their own, and retry on a 409 when someone else changed the list meanwhile."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.integration.test_backoffice_services import staff  # noqa: F401  (fixture)

PATH = "/review/correction-reasons"
Reasons = list[dict[str, Any]]


async def changed(admin: httpx.AsyncClient, change: Callable[[Reasons], Reasons]) -> dict[str, Any]:
    """The list after ``change`` (applied to the current list, sent with its version)."""
    for _ in range(5):
        current = (await admin.get(PATH)).json()
        answer = await admin.put(PATH, json={"version": current["version"], "reasons": change(current["reasons"])})
        if answer.status_code != 409:
            assert answer.status_code == 200, answer.text
            return dict(answer.json())
    raise AssertionError("the list kept changing under this test")


def texts(body: dict[str, Any]) -> list[str]:
    return [r["text"] for r in body["reasons"]]


async def test_an_admin_adds_edits_moves_and_removes_a_reason_each_change_recorded_with_who_and_when(staff: Any) -> None:  # noqa: F811
    _, marie_id, marie = staff["marie"]
    _, admin_id, admin = staff["admin"]
    mine = f"Photo floue {uuid.uuid4().hex[:6]}"
    try:
        before = (await marie.get(PATH)).json()
        assert "Document illisible" in texts(before)  # the first list, as agents read it
        started = datetime.now(UTC) - timedelta(seconds=5)

        added = await changed(admin, lambda reasons: [*reasons, {"text": f"  {mine} "}])
        assert texts(added)[-1] == mine and added["updated_by"] == admin_id
        assert mine in texts((await marie.get(PATH)).json())  # agents see it at once
        reason_id = next(r["id"] for r in added["reasons"] if r["text"] == mine)

        edited = await changed(admin, lambda reasons: [{**r, "text": f"{mine} (à reprendre)"} if r["id"] == reason_id else r
                                                       for r in reasons])
        assert f"{mine} (à reprendre)" in texts(edited) and mine not in texts(edited)
        moved = await changed(admin, lambda reasons: [r for r in reasons if r["id"] == reason_id]
                              + [r for r in reasons if r["id"] != reason_id])
        assert moved["reasons"][0]["id"] == reason_id
        removed = await changed(admin, lambda reasons: [r for r in reasons if r["id"] != reason_id])
        assert reason_id not in {r["id"] for r in removed["reasons"]}

        history = (await marie.get(f"{PATH}/history")).json()
        ours = [e for e in history if e["agent_id"] == admin_id]  # an admin of this test's own
        assert [e["label"] for e in ours] == ["Liste modifiée"] * 4
        assert all(datetime.fromisoformat(e["at"]).replace(tzinfo=UTC) >= started for e in ours)
        newest_first = list(reversed(ours))
        assert newest_first[0]["added"] == [mine]
        assert newest_first[1]["edited"] == [{"from": mine, "to": f"{mine} (à reprendre)"}]
        assert newest_first[2]["reordered"] is True and not newest_first[2]["added"]
        assert newest_first[3]["removed"] == [f"{mine} (à reprendre)"]
        assert history[-1]["label"] == "Liste initiale" and history[-1]["agent_id"] is None
        assert marie_id not in {e["agent_id"] for e in history}
    finally:  # a run stopped halfway leaves nothing in the shared list
        await changed(admin, lambda reasons: [r for r in reasons if not r["text"].startswith(mine)])


async def test_a_bad_list_gets_a_french_422_a_stale_one_a_409_and_neither_changes_anything(staff: Any) -> None:  # noqa: F811
    _, _, admin = staff["admin"]
    current = (await admin.get(PATH)).json()
    reasons = [{"id": r["id"], "text": r["text"]} for r in current["reasons"]]
    first = reasons[0]["text"]
    cases = {
        "vide": ([*reasons, {"text": "   "}], "est vide"),
        "trop long": ([*reasons, {"text": "x" * 151}], "dépasse 150 caractères"),
        "en double": ([*reasons, {"text": first.upper()}], "figure déjà dans la liste"),
        "trop de motifs": ([*reasons, *({"text": f"Motif {n}"} for n in range(31))], "au plus 30 motifs"),
        "aucun": ([], "au moins un motif"),
    }
    for case, (body, expected) in cases.items():
        answer = await admin.put(PATH, json={"version": current["version"], "reasons": body})
        assert answer.status_code == 422, (case, answer.status_code, answer.text)
        assert expected in answer.json()["detail"], case
        assert any(expected in p for p in answer.json()["problems"]), case
    assert (await admin.get(PATH)).json()["version"] == current["version"]  # nothing written

    stale = await admin.put(PATH, json={"version": current["version"] - 1, "reasons": [*reasons, {"text": "Périmé"}]})
    assert stale.status_code == 409 and "modifiée entre-temps" in stale.json()["detail"]
    unknown = await admin.put(PATH, json={"version": current["version"], "reasons": [{"id": "inconnu", "text": "X"}]})
    assert unknown.status_code == 409 and "n'est plus dans la liste" in unknown.json()["detail"]
    assert (await admin.get(PATH)).json()["version"] == current["version"]


async def test_an_agent_reads_the_list_but_may_not_change_it(staff: Any) -> None:  # noqa: F811
    _, _, marie = staff["marie"]
    current = (await marie.get(PATH)).json()
    refused = await marie.put(PATH, json={"version": current["version"], "reasons": [*current["reasons"], {"text": "Non"}]})
    assert refused.status_code == 403 and refused.json()["detail"]
    assert (await marie.get(PATH)).json()["version"] == current["version"]
