"""What each documents request and background job does: domain rules, then store writes carrying
their events. Failures are exceptions (``DocumentsError``) with a French message that the API maps
to an HTTP status; none is a 500.

Consistency between the database and S3: the record is written first as an intent ("uploading"),
then the object is put, then one update makes the record "pending" with DocumentUploaded in its
outbox. A failure in between undoes what was done; a crash leaves an old intent or an orphan
object, which the sweeper removes. A deletion turns the record into a tombstone before removing
the object. So no live record points at a missing object, and no object stays without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from services.documents import domain, events
from services.documents.domain import FileType, Kind, Status
from services.documents.scanner import ClamdScanner, ScanIncomplete, ScanUnavailable, Verdict
from services.documents.settings import DocumentsSettings
from services.documents.store import DocumentsStore
from services.documents.upload import ReceivedFile, UnreadableImage, heic_to_jpeg
from services.kernel import telemetry
from services.kernel.auth import UNAUTHENTICATED
from services.kernel.envelope import EventData, new_event
from services.kernel.logging import get_logger
from services.kernel.mongo import is_transient_db_error
from services.kernel.objectstore import ObjectStore, StorageUnavailable
from services.kernel.outbox import outbox_entry

SOURCE = "/services/documents"
log = get_logger(__name__)
VIRUS_SCANS = telemetry.counter("ecp_virus_scans", "Uploaded files scanned by clamd, by outcome (clean, infected, quarantined, unavailable).", ["outcome"])
VIRUS_SCAN_TIME = telemetry.histogram("ecp_virus_scan_seconds", "Time to stream one file from S3 through clamd.", ["outcome"])


async def best_effort(action: Awaitable[Any]) -> bool:
    """Runs a clean-up step whose failure the sweeper will repair later; True if it worked."""
    try:
        await action
        return True
    except Exception:
        return False


class DocumentsError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DocumentsError):
    pass


class Gone(DocumentsError):
    pass


class Conflict(DocumentsError):
    pass


class Unsupported(DocumentsError):
    pass


class Invalid(DocumentsError):
    pass


class TooLarge(DocumentsError):
    pass


class Unavailable(DocumentsError):
    pass


class AccountErased(DocumentsError):
    pass


@dataclass(frozen=True)
class DownloadLink:
    url: str
    expires_in: int
    filename: str
    content_type: str


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, StorageUnavailable | ConnectionError | TimeoutError) or is_transient_db_error(exc)


class DocumentsService:
    def __init__(
        self,
        store: DocumentsStore,
        objects: ObjectStore,
        scanner: ClamdScanner,
        settings: DocumentsSettings,
        *,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.objects = objects
        self.scanner = scanner
        self.settings = settings
        self._events_queued = events_queued
        self._now = clock
        self._scan_wake = asyncio.Event()

    def _entries(self, *datas: EventData, subject: str, correlation_id: str | None, causation_id: str | None = None) -> list[dict[str, Any]]:
        return [
            outbox_entry(
                new_event(d, source=SOURCE, subject=subject, correlation_id=correlation_id, causation_id=causation_id), d.topic
            )
            for d in datas
        ]

    # ---- upload -------------------------------------------------------------------------------

    async def upload(
        self, account_id: str, kind: str, received: ReceivedFile, *, correlation_id: str | None = None
    ) -> dict[str, Any]:
        """Stores a received file (already on disk, counted and hashed). Deletes the temp files."""
        paths = [received.path]
        try:
            if received.size == 0:
                raise Invalid(domain.EMPTY)
            detected = domain.detect_type(received.head)
            if detected is None:
                raise Unsupported(domain.UNSUPPORTED)
            stored = received
            if detected.needs_conversion:
                try:
                    stored = await heic_to_jpeg(
                        received.path, max_pixels=self.settings.max_image_pixels, tmp_dir=self.settings.upload_tmp_dir
                    )
                except UnreadableImage as exc:
                    log.info("HEIC conversion failed", error=str(exc)[:200])
                    raise Unsupported(domain.UNREADABLE_PHOTO) from exc
                paths.append(stored.path)
                if stored.size > self.settings.max_upload_bytes:
                    raise TooLarge(self._too_large())
            original = domain.sanitise_filename(received.filename)
            return await self._store(account_id, Kind(kind), detected, original, received, stored, correlation_id)
        finally:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _too_large(self) -> str:
        return domain.TOO_LARGE.format(max_mb=self.settings.max_upload_bytes // (1024 * 1024))

    async def _store(
        self, account_id: str, kind: Kind, detected: FileType, original: str,
        received: ReceivedFile, stored: ReceivedFile, correlation_id: str | None,
    ) -> dict[str, Any]:
        now = self._now()
        document_id = domain.new_document_id()
        key = domain.object_key(account_id, document_id)
        content_type = domain.JPEG.content_type if detected.needs_conversion else detected.content_type
        name = domain.stored_name(original, detected)
        intent = {"_id": document_id, "account_id": account_id, "kind": kind.value, "object_key": key, "created_at": now}
        try:
            await self.store.insert_intent(intent)
        except Exception as exc:
            log.warning("upload intent not written", error=repr(exc))
            raise Unavailable(domain.UNAVAILABLE) from exc
        # After the intent: an erasure that began before it is seen here, one that begins after
        # it finds the intent and removes it (so nothing stays under an erased account).
        if await self.store.is_erased(account_id):
            await best_effort(self.store.remove_intent(document_id))
            log.info("upload refused: the account was deleted meanwhile", document_id=document_id)
            raise AccountErased(UNAUTHENTICATED)
        try:
            await self.objects.put_file(
                key, stored.path, stored.size, content_type,
                {"document-id": document_id, "original-name": original, "sha256": stored.sha256},
            )
        except Exception as exc:
            log.warning("upload object not stored", error=repr(exc), document_id=document_id)
            await best_effort(self.objects.remove(key))
            await best_effort(self.store.remove_intent(document_id))  # else the sweeper removes it
            raise Unavailable(domain.UNAVAILABLE) from exc
        fields = {
            "original_name": original, "name": name, "content_type": content_type, "detected_type": detected.name,
            "size": stored.size, "sha256": stored.sha256, "received_sha256": received.sha256,
            "uploaded_at": now, "scan_attempts": 0, "next_scan_at": now,
            # The background scan continues the upload's trace (the events it causes with it).
            "traceparent": telemetry.current_traceparent(),
        }
        data = events.DocumentUploaded(
            document_id=document_id, account_id=account_id, kind=kind.value, content_type=content_type,
            size=stored.size, sha256=stored.sha256, uploaded_at=now,
        )
        try:
            done = await self.store.mark_uploaded(
                document_id, fields, self._entries(data, subject=document_id, correlation_id=correlation_id)
            )
        except Exception as exc:
            log.warning("upload not recorded", error=repr(exc), document_id=document_id)
            done = False
        if not done:
            await best_effort(self.objects.remove(key))
            await best_effort(self.store.remove_intent(document_id))
            raise Unavailable(domain.UNAVAILABLE)
        self._events_queued()
        self._scan_wake.set()
        log.info("document uploaded", document_id=document_id, kind=kind.value, size=stored.size, type=detected.name)
        return {**intent, **fields, "status": Status.PENDING}

    # ---- reads --------------------------------------------------------------------------------

    async def _get(self, document_id: str) -> dict[str, Any] | None:
        if not domain.is_document_id(document_id):
            return None
        try:
            return await self.store.get(document_id)
        except Exception as exc:
            if _unavailable(exc):
                raise Unavailable(domain.UNAVAILABLE_READ) from exc
            raise

    async def _visible(self, document_id: str, account_id: str, role: str) -> tuple[dict[str, Any], bool]:
        document = await self._get(document_id)
        if document is None:
            raise NotFound(domain.NOT_FOUND)
        try:
            submitted = await self.store.is_submitted(document_id)
        except Exception as exc:
            if _unavailable(exc):
                raise Unavailable(domain.UNAVAILABLE_READ) from exc
            raise
        if not domain.visible_to(document, account_id=account_id, role=role, submitted=submitted):
            raise NotFound(domain.NOT_FOUND)
        return document, submitted

    async def mine(self, account_id: str) -> list[dict[str, Any]]:
        try:
            return await self.store.of_account(account_id)
        except Exception as exc:
            if _unavailable(exc):
                raise Unavailable(domain.UNAVAILABLE_READ) from exc
            raise

    async def metadata(self, document_id: str, account_id: str, role: str) -> dict[str, Any]:
        document, _ = await self._visible(document_id, account_id, role)
        return document

    async def download(self, document_id: str, account_id: str, role: str) -> DownloadLink:
        document, submitted = await self._visible(document_id, account_id, role)
        if document["status"] == Status.INFECTED:
            raise Gone(domain.INFECTED_NO_DOWNLOAD)
        if document["status"] == Status.QUARANTINED:
            raise Gone(domain.QUARANTINED_NO_DOWNLOAD)
        if not domain.downloadable_by(document, account_id=account_id, role=role, submitted=submitted):
            raise NotFound(domain.NOT_FOUND)
        name = document.get("name") or "document"
        disposition = f"attachment; filename=\"{domain.ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
        ttl = min(self.settings.download_link_ttl_s, 300)
        try:
            url = await self.objects.download_url(document["object_key"], timedelta(seconds=ttl), disposition, document["content_type"])
        except StorageUnavailable as exc:
            raise Unavailable(domain.UNAVAILABLE_READ) from exc
        log.info("download link issued", document_id=document_id, role=role)
        return DownloadLink(url=url, expires_in=ttl, filename=name, content_type=document["content_type"])

    # ---- deletion -----------------------------------------------------------------------------

    async def delete(self, document_id: str, account_id: str, *, correlation_id: str | None = None) -> None:
        document, submitted = await self._visible(document_id, account_id, "family")
        if submitted:
            raise Conflict(domain.ATTACHED_TO_SUBMITTED)
        now = self._now()
        data = events.DocumentDeleted(
            document_id=document_id, account_id=account_id, kind=document["kind"], reason="owner", deleted_at=now
        )
        from_statuses = [s.value for s in Status if domain.can_transition(s, Status.DELETED)]
        try:
            done = await self.store.tombstone(
                document_id, from_statuses, now, self._entries(data, subject=document_id, correlation_id=correlation_id)
            )
        except Exception as exc:
            if _unavailable(exc):
                raise Unavailable(domain.UNAVAILABLE_READ) from exc
            raise
        if not done:
            raise NotFound(domain.NOT_FOUND)
        self._events_queued()
        await best_effort(self.objects.remove(document["object_key"]))  # else the sweeper does
        log.info("document deleted by its owner", document_id=document_id)

    # ---- erasure (AccountDeleted) -------------------------------------------------------------

    async def erase_account(self, account_id: str, *, causation_id: str, correlation_id: str | None) -> int:
        """Deletes every object of the account and anonymises its records. Idempotent: a
        redelivery finds nothing left under the account's id."""
        now = self._now()
        await self.store.mark_erased(account_id, now)  # first: see _store
        documents = await self.store.of_account_all(account_id)
        for document in documents:
            if document["status"] == Status.UPLOADING:
                await self.objects.remove(document["object_key"])
                await self.store.delete_record(document["_id"])
                continue
            if document["status"] != Status.DELETED:
                data = events.DocumentDeleted(
                    document_id=document["_id"], account_id=account_id, kind=document["kind"],
                    reason="account_erased", deleted_at=now,
                )
                await self.store.tombstone(
                    document["_id"], [document["status"]], now,
                    self._entries(data, subject=document["_id"], correlation_id=correlation_id, causation_id=causation_id),
                    erase=True,
                )
            await self.objects.remove(document["object_key"])
            await self.store.anonymise(document["_id"], now)
        # Objects a crash left without a record, under the account's prefix.
        for leftover in await self.objects.list(domain.object_key(account_id, "")):
            await self.objects.remove(leftover.key)
        self._events_queued()
        log.info("account's documents erased", count=len(documents))
        return len(documents)

    # ---- virus scan ---------------------------------------------------------------------------

    async def scan_once(self) -> bool:
        """Leases one pending document and scans it; False when none was due."""
        now = self._now()
        document = await self.store.lease_pending(now, timedelta(seconds=self.settings.scan_lease_s))
        if document is None:
            return False
        with telemetry.span("virus scan", parent=document.get("traceparent")):
            return await self._scan(document)

    async def _scan(self, document: dict[str, Any]) -> bool:
        token = document["scan_lease"]["token"]
        document_id = document["_id"]
        started = asyncio.get_running_loop().time()
        try:
            verdict = await self.scanner.scan(self.objects.chunks(document["object_key"], self.settings.scan_chunk_bytes))
        except (ScanUnavailable, StorageUnavailable) as exc:
            attempts = int(document.get("scan_attempts", 0)) + 1
            # clamd took the file and could not finish, again: never clean, quarantined.
            if domain.scan_never_finishes(
                isinstance(exc, ScanIncomplete) and not isinstance(exc.__cause__, StorageUnavailable),
                attempts, self.settings.scan_incomplete_max_attempts,
            ):
                verdict = Verdict(clean=False, signature=f"{domain.LIMIT_REACHED}.NoVerdict")
                log.warning("scan could not finish", document_id=document_id, error=str(exc)[:200], attempts=attempts)
                return await self._record(document, token, verdict, started)
            VIRUS_SCANS.inc(outcome="unavailable")
            delay = domain.scan_retry_delay(attempts, self.settings.scan_retry_initial_s, self.settings.scan_retry_max_s)
            log.warning("scan postponed", document_id=document_id, error=str(exc)[:200], attempts=attempts, retry_in_s=delay.total_seconds())
            await self.store.postpone_scan(document_id, token, self._now() + delay, str(exc))
            return True
        return await self._record(document, token, verdict, started)

    async def _record(self, document: dict[str, Any], token: str, verdict: Verdict, started: float) -> bool:
        document_id = document["_id"]
        scanned_at = self._now()
        correlation = document_id
        outcome = "clean" if verdict.clean else "quarantined" if domain.is_limit(verdict.signature) else "infected"
        VIRUS_SCANS.inc(outcome=outcome)
        VIRUS_SCAN_TIME.observe(asyncio.get_running_loop().time() - started, outcome=outcome)
        if verdict.clean:
            data = events.DocumentScanned(
                document_id=document_id, account_id=document["account_id"], kind=document["kind"],
                result="clean", reason=None, scanned_at=scanned_at,
            )
            domain.transition(document["status"], Status.CLEAN)
            await self.store.record_verdict(
                document_id, token, Status.CLEAN, {"scanned_at": scanned_at},
                self._entries(data, subject=document_id, correlation_id=correlation),
            )
            log.info("document clean", document_id=document_id)
        elif outcome == "quarantined":
            data = events.DocumentScanned(
                document_id=document_id, account_id=document["account_id"], kind=document["kind"],
                result="quarantined", reason=domain.QUARANTINED_REASON, scanned_at=scanned_at,
            )
            domain.transition(document["status"], Status.QUARANTINED)
            # Kept, never served: the limit reached says nothing about what the rest contains.
            await self.store.record_verdict(
                document_id, token, Status.QUARANTINED,
                {"scanned_at": scanned_at, "reason": domain.QUARANTINED_REASON, "signature": verdict.signature},
                self._entries(data, subject=document_id, correlation_id=correlation),
            )
            log.warning("document quarantined: the scan did not reach its end", document_id=document_id, signature=verdict.signature)
        else:
            reason = domain.infected_reason(verdict.signature or "virus")
            data = events.DocumentScanned(
                document_id=document_id, account_id=document["account_id"], kind=document["kind"],
                result="infected", reason=reason, scanned_at=scanned_at,
            )
            domain.transition(document["status"], Status.INFECTED)
            # Recorded first (never downloadable from now on), then the object goes.
            done = await self.store.record_verdict(
                document_id, token, Status.INFECTED, {"scanned_at": scanned_at, "reason": reason, "signature": verdict.signature},
                self._entries(data, subject=document_id, correlation_id=correlation),
            )
            if done:
                await best_effort(self.objects.remove(document["object_key"]))
            log.warning("document infected, object deleted", document_id=document_id, signature=verdict.signature)
        self._events_queued()
        return True

    async def run_scanner(self) -> None:
        while True:
            try:
                busy = await self.scan_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("scan pass failed; will retry", exc_info=True)
                busy = False
            if not busy:
                self._scan_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._scan_wake.wait(), self.settings.scan_poll_interval_s)

    # ---- sweeper ------------------------------------------------------------------------------

    async def sweep(self) -> dict[str, int]:
        """Repairs what a crash left (old intents, objects without a live record) and purges what
        is past retention. Safe to run at any time, by any number of instances."""
        now = self._now()
        counts = {"intents": 0, "orphans": 0, "retention": 0, "tombstones": 0, "erased_markers": 0}
        for intent in await self.store.stale_intents(now - timedelta(seconds=self.settings.sweep_uploading_after_s)):
            await self.objects.remove(intent["object_key"])
            await self.store.remove_intent(intent["_id"])
            counts["intents"] += 1
            log.info("sweeper removed an unfinished upload", document_id=intent["_id"])
        grace = now - timedelta(seconds=self.settings.sweep_orphan_grace_s)
        listed = [o for o in await self.objects.list(domain.OBJECT_PREFIX) if o.last_modified is None or o.last_modified < grace]
        for start in range(0, len(listed), 200):
            batch = listed[start : start + 200]
            live = await self.store.live_keys([o.key for o in batch])
            for orphan in (o for o in batch if o.key not in live):
                await self.objects.remove(orphan.key)
                counts["orphans"] += 1
                log.info("sweeper removed an object without a record", key=orphan.key)
        for document in await self.store.past_retention(now - timedelta(days=self.settings.retention_days)):
            data = events.DocumentDeleted(
                document_id=document["_id"], account_id=document["account_id"], kind=document["kind"],
                reason="retention", deleted_at=now,
            )
            if await self.store.tombstone(
                document["_id"], [document["status"]], now,
                self._entries(data, subject=document["_id"], correlation_id=document["_id"]), erase=True,
            ):
                await best_effort(self.objects.remove(document["object_key"]))
                counts["retention"] += 1
                log.info("document purged at the end of its retention period", document_id=document["_id"],
                         uploaded_at=str(document.get("created_at")))
        counts["tombstones"] = await self.store.purge_tombstones(now - timedelta(days=self.settings.tombstone_retention_days))
        # Past any access token's lifetime, no upload of an erased account can still be under way.
        counts["erased_markers"] = await self.store.forget_erased(now - timedelta(hours=self.settings.erased_marker_hours))
        if counts["retention"]:
            self._events_queued()
        return counts

    async def run_sweeper(self) -> None:
        while True:
            try:
                counts = await self.sweep()
                if any(counts.values()):
                    log.info("sweep done", **counts)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("sweep failed; will retry", exc_info=True)
            await asyncio.sleep(self.settings.sweep_interval_s)
