"""The notifier's daily digest of overdue files, against the real database server: one email a day
to the Service's mailbox listing every file announced since the last one, whatever how many times
each DossierOverdue was delivered; nothing before the digest hour; never twice the same day."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
from typing import Any

from schemas.contracts.insights import DossierOverdue
from services.kernel.envelope import new_event
from services.notifier.digest import OverdueDigest
from services.notifier.settings import NotifierSettings


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    async def send(self, message: Message, recipient: str) -> str:
        self.sent.append((recipient, message))
        return "250 OK"


def overdue(dossier_id: str) -> Any:
    data = DossierOverdue(dossier_id=dossier_id, waiting_since=datetime(2027, 3, 1, 9, 0, tzinfo=UTC), working_days_waiting=6,
                          threshold_working_days=5, detected_at=datetime(2027, 3, 9, 5, 0, tzinfo=UTC))
    return new_event(data, source="/services/insights", subject=dossier_id)


def text_of(message: Message) -> str:
    return next(part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain")


async def test_one_digest_a_day_lists_each_overdue_file_once_from_the_digest_hour(db: Any) -> None:
    now = {"at": datetime(2027, 3, 9, 5, 30, tzinfo=UTC)}  # 06:30 in Paris: before the 07:00 digest
    outbox = Outbox()
    settings = NotifierSettings(service_mailbox="scolaire@ville.example.fr", digest_hour=7)
    digest = OverdueDigest(settings, db, outbox, clock=lambda: now["at"])
    await digest.ensure_indexes()
    first, second = overdue("d-0001"), overdue("d-0002")
    for event in (first, second, first):  # the first one delivered twice
        await digest.on_overdue(event)

    assert await digest.send_due() is None and outbox.sent == []
    now["at"] = datetime(2027, 3, 9, 6, 5, tzinfo=UTC)  # 07:05 in Paris
    assert await digest.send_due() == "overdue-2027-03-09"
    [(recipient, message)] = outbox.sent
    assert recipient == "scolaire@ville.example.fr"
    assert str(message["Subject"]) == "2 dossiers en attente depuis trop longtemps"
    body = text_of(message)
    assert body.count("d-0001") == 2 and body.count("d-0002") == 2  # the id and its link
    assert "envoyé le 01/03/2027, 6 jours ouvrés d'attente (seuil : 5)" in body
    assert "/agents/dossiers/d-0001" in body and "/agents/tableau-de-bord" in body

    assert await digest.send_due() is None  # the same day: nothing more
    await digest.on_overdue(overdue("d-0003"))
    now["at"] = datetime(2027, 3, 10, 6, 5, tzinfo=UTC)
    assert await digest.send_due() == "overdue-2027-03-10"
    assert len(outbox.sent) == 2 and "d-0001" not in text_of(outbox.sent[1][1]) and "d-0003" in text_of(outbox.sent[1][1])
    assert str(outbox.sent[1][1]["Subject"]) == "1 dossier en attente depuis trop longtemps"


async def test_digests_past_the_delivery_logs_retention_are_forgotten_with_the_files_they_listed(db: Any) -> None:
    now = {"at": datetime(2027, 3, 9, 6, 5, tzinfo=UTC)}
    digest = OverdueDigest(NotifierSettings(service_mailbox="scolaire@ville.example.fr", digest_hour=7), db, Outbox(),
                           clock=lambda: now["at"])
    await digest.ensure_indexes()
    await digest.on_overdue(overdue("d-0101"))
    assert await digest.send_due() == "overdue-2027-03-09"
    await digest.on_overdue(overdue("d-0102"))  # not in a digest yet: kept whatever its age

    assert await digest.purge(datetime(2027, 3, 9, 0, 0, tzinfo=UTC)) == {"overdue_files": 0, "overdue_digests": 0}
    assert await digest.purge(datetime(2028, 3, 9, 0, 0, tzinfo=UTC)) == {"overdue_files": 1, "overdue_digests": 1}
    assert [f["dossier_id"] for f in await db["overdue_files"].find().to_list(None)] == ["d-0102"]
