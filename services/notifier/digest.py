"""The Service's daily digest of overdue files: one email a day to the shared mailbox, never one per file.

``notifier-overdue`` reads ``insights.dossier.v1``: each DossierOverdue is kept once (its event id
is the document id). Once a day, from ``digest_hour`` (Paris time), the files not in a digest yet
are listed in one email to ``service_mailbox``. The day's digest is claimed by inserting its
document (unique id ``overdue-<day>``) before talking SMTP, so two replicas or a restart never send
it twice; a process killed between the server's 250 and the ``sent`` record leaves a ``sending``
claim that is resumed once its lease expires (the same at-least-once window as every email).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.contracts.insights import DossierOverdue
from services.kernel.envelope import CloudEvent
from services.kernel.logging import get_logger
from services.kernel.mongo import as_utc
from services.kernel.runtime import ConsumerSpec
from services.notifier.render import RenderedMail, build_message, environment
from services.notifier.settings import NotifierSettings
from services.notifier.store import OverdueDigestStore

log = get_logger(__name__)
OVERDUE_GROUP = "notifier-overdue"
TEMPLATE = "overdue_digest"


def digest_subject(count: int) -> str:
    return f"{count} dossier{'s' if count > 1 else ''} en attente depuis trop longtemps"


class OverdueDigest:
    def __init__(self, settings: NotifierSettings, db: Any, mailer: Any,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.store = OverdueDigestStore(db)
        self.mailer = mailer
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self._env = environment()

    def consumer_spec(self) -> ConsumerSpec:
        return ConsumerSpec(OVERDUE_GROUP, [DossierOverdue.topic], {DossierOverdue: self.on_overdue})

    async def ensure_indexes(self) -> None:
        await self.store.ensure_indexes()

    async def purge(self, before: datetime) -> dict[str, int]:
        return await self.store.purge(before=before)

    async def on_overdue(self, event: CloudEvent[DossierOverdue]) -> None:
        d = event.data
        # Keyed by event id: a redelivered event (or a resend after insights' crash) is one file.
        await self.store.record_overdue(event.id, {
            "dossier_id": d.dossier_id, "waiting_since": d.waiting_since, "working_days_waiting": d.working_days_waiting,
            "threshold_working_days": d.threshold_working_days, "detected_at": d.detected_at})

    async def run(self) -> None:
        while True:
            try:
                await self.send_due()
            except Exception as error:  # the next round retries (database or SMTP down)
                log.warning("overdue digest failed", error=repr(error))
            await asyncio.sleep(self.settings.digest_check_interval_s)

    async def send_due(self) -> str | None:
        """Sends today's digest if it is time and files wait; returns the digest id when sent."""
        now = self.clock()
        local = now.astimezone(self.zone)
        if local.hour < self.settings.digest_hour:
            return None
        digest_id = f"overdue-{local.date().isoformat()}"
        lease = timedelta(seconds=self.settings.delivery_lease_s)
        if not await self.store.claim_digest(digest_id, now=now, lease=lease):
            return None  # sent already, or being sent by another process
        files = await self.store.files_for_digest(digest_id)
        if files:
            message = build_message(self.render(files, now), sender=self.settings.sender,
                                    recipient=self.settings.service_mailbox, display_name="Service Scolaire et Périscolaire",
                                    event_id=digest_id, date=now)
            await self.mailer.send(message, self.settings.service_mailbox)
        await self.store.digest_sent(digest_id, now=now, files=len(files))
        log.info("overdue digest sent", digest_id=digest_id, files=len(files))
        return digest_id

    def render(self, files: list[dict[str, Any]], now: datetime) -> RenderedMail:
        rows = [{"dossier_id": f["dossier_id"], "url": self.settings.portal_url(f"{self.settings.queue_path}/{f['dossier_id']}"),
                 "waiting_since": as_utc(f["waiting_since"]).astimezone(self.zone).strftime("%d/%m/%Y"),
                 "working_days": f["working_days_waiting"], "threshold": f["threshold_working_days"]} for f in files]
        context = {"subject": digest_subject(len(rows)), "files": rows, "town_name": self.settings.town_name,
                   "town_contact_email": self.settings.town_contact_email,
                   "dashboard_url": self.settings.portal_url(self.settings.dashboard_path),
                   "day": now.astimezone(self.zone).strftime("%d/%m/%Y")}
        text = self._env.get_template(f"{TEMPLATE}.txt").render(context)
        html = self._env.get_template(f"{TEMPLATE}.html").render(context)
        return RenderedMail(template=TEMPLATE, subject=context["subject"], text=text.strip() + "\n", html=html)
