"""The certificate survives a crash: the enrolment service killed -9 right after a confirmation
(the certificate not rendered yet) issues it after its restart, exactly once.

Stops the enrolment service for a few seconds, and restarts it whatever happens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from datetime import date
from typing import Any

from tests.integration.conftest import ROOT
from tests.integration.kafka_tools import read_all
from tests.integration.polling import eventually
from tests.integration.test_enrolment import TOPIC, agent, certificate_link, child, coming_year, dossier_event, ensure_free, family, publish, unlocked

ECP = str(ROOT / "deploy/local/ecp")


async def confirmations_of(enrolment_id: str) -> list[dict[str, Any]]:
    events = (json.loads(r.value) for r in await read_all(TOPIC))
    return [e for e in events if e["type"] == "fr.montclair-sur-loire.ecp.EnrolmentConfirmed" and e["subject"] == enrolment_id]


async def gone(pid: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "the killed service is still there"
        await asyncio.sleep(0.05)


async def test_a_crash_between_confirmation_and_certificate_still_issues_it_once_after_the_restart(db_client: Any) -> None:
    f = await family()
    staff = await agent()
    try:
        year = await coming_year(f)
        await ensure_free(staff, "elem-jaures", "CE2", year, 2)
        kid = child("Jules", date(year - 8, 6, 6))
        await publish(dossier_event(f.account_id, [kid], number="9", street="rue des Lilas"))
        await unlocked(f)
        pid = int((ROOT / ".local/run/svc-enrolment.pid").read_text().strip())
        created = await f.api.post("/enrolments", json={"child_id": kid.child_id, "school_year": year})
        os.kill(pid, signal.SIGKILL)
        try:
            await gone(pid)
            assert created.status_code == 201 and created.json()["status"] == "confirmed", created.text
            enrolment_id = created.json()["id"]
            stored = await db_client["ecp_enrolment"]["enrolments"].find_one({"_id": enrolment_id})
            assert stored["certificate_due"] is True and stored["certificate"] is None, "the kill came after the render"
        finally:
            subprocess.run([ECP, "start", "enrolment"], cwd=ROOT, check=True, capture_output=True, timeout=120)
        # A kill during the render leaves its lease, which must expire first (30 s).
        link = await certificate_link(f.api, enrolment_id, timeout_s=90)
        assert link["filename"].endswith(".pdf")
        # The relay publishes the event with the recorded certificate; the killed process may have
        # held the enrolment's outbox lease, which must expire first (30 s) as well.
        await eventually(lambda: confirmations_of(enrolment_id), "EnrolmentConfirmed on the topic", timeout_s=60)
        await asyncio.sleep(2)  # a second publication, if there were one, would be there by now
        confirmed = await confirmations_of(enrolment_id)
        assert len(confirmed) == 1 and confirmed[0]["data"]["certificate_available"] is True
    finally:
        await staff.aclose()
        await f.close()
