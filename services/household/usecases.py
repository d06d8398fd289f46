"""What each household request and event does: domain rules, then one compare-and-set write of
the dossier carrying its events. Failures are ``HouseholdError`` exceptions with a French
message that the API maps to an HTTP status (never a 500, never a partial write)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from services.household import domain, events
from services.household.domain import Decision, Status, TransitionRefused
from services.household.store import DossierExists, HouseholdStore
from services.kernel.envelope import EventData, new_event
from services.kernel.logging import get_logger
from services.kernel.mongo import is_transient_db_error
from services.kernel.outbox import outbox_entry

SOURCE = "/services/household"
TOWN_TIME = ZoneInfo("Europe/Paris")
UNAVAILABLE = "Le service des dossiers est momentanément indisponible. Réessayez dans quelques instants."
log = get_logger(__name__)


class HouseholdError(Exception):
    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class NotFound(HouseholdError):
    pass


class Conflict(HouseholdError):
    pass


class Forbidden(HouseholdError):
    pass


class Invalid(HouseholdError):
    """422: the data or the file is not acceptable; ``problems`` lists each reason."""


class Unavailable(HouseholdError):
    pass


class HouseholdService:
    def __init__(
        self,
        store: HouseholdStore,
        *,
        documents_url: str = "http://127.0.0.1:8103",
        reference_prefix: str = "MSL",
        http: httpx.AsyncClient | None = None,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.documents_url = documents_url.rstrip("/")
        self.reference_prefix = reference_prefix
        self.http = http
        self._events_queued = events_queued
        self._now = clock

    def _entries(self, *datas: EventData, subject: str, correlation_id: str | None, causation_id: str | None = None) -> list[dict[str, Any]]:
        return [
            outbox_entry(new_event(d, source=SOURCE, subject=subject, correlation_id=correlation_id, causation_id=causation_id), d.topic)
            for d in datas
        ]

    async def _db(self, action: Any) -> Any:
        try:
            return await action
        except HouseholdError:
            raise
        except Exception as exc:
            if is_transient_db_error(exc):
                raise Unavailable(UNAVAILABLE) from exc
            raise

    # ---- family ---------------------------------------------------------------------------------

    async def create(self, account_id: str, content: dict[str, Any] | None, *, today: date | None = None) -> dict[str, Any]:
        if not await self._db(self.store.is_active(account_id)):
            raise Forbidden(domain.NOT_ACTIVATED)
        if await self._db(self.store.of_account(account_id)) is not None:
            raise Conflict(domain.ALREADY_EXISTS)
        now = self._now()
        new_content = self._checked_content({}, content or {}, today or now.date())
        dossier = {
            "_id": domain.new_id(), "account_id": account_id, "status": Status.DRAFT.value, "version": 1,
            "created_at": now, "updated_at": now, **new_content, "corrections": [], "history": [],
            "children_count": len(new_content["children"]), "reference": await self._new_reference(now),
        }
        dossier["search"] = await self._search_terms(dossier)
        try:
            await self._db(self.store.insert(dossier))
        except DossierExists:
            raise Conflict(domain.ALREADY_EXISTS) from None
        return dossier

    async def backfill_references(self) -> int:
        """Files opened before references and search words existed get both (run at start; a
        file already given one is left alone by the conditional write)."""
        done = 0
        for dossier in await self.store.without_reference():
            fields = {"reference": await self._new_reference(dossier.get("created_at") or self._now())}
            fields["search"] = await self._search_terms({**dossier, **fields})
            done += await self.store.set_reference(dossier["_id"], fields)
        if done:
            log.info("references given to older files", files=done)
        return done

    async def _new_reference(self, now: datetime) -> str:
        number = await self._db(self.store.next_number(f"dossier-{now.year}"))
        return domain.reference(self.reference_prefix, now.year, number)

    async def _search_terms(self, dossier: dict[str, Any]) -> list[str]:
        email = await self._db(self.store.account_email(dossier["account_id"]))
        return domain.search_terms(dossier, email)

    def _checked_content(self, current: dict[str, Any], content: dict[str, Any], today: date) -> dict[str, Any]:
        try:
            new_content = domain.apply_content(current, content)
        except domain.UnknownItem as exc:
            raise Invalid(exc.message, [exc.message]) from None
        problems = domain.content_problems(new_content, today)
        if problems:
            raise Invalid(" ".join(problems), problems)
        return new_content

    async def mine(self, account_id: str) -> dict[str, Any]:
        dossier = await self._db(self.store.of_account(account_id))
        if dossier is None:
            raise NotFound(domain.NO_DOSSIER)
        return dossier

    async def of_family(self, dossier_id: str, account_id: str) -> dict[str, Any]:
        dossier = await self._db(self.store.get(dossier_id))
        if dossier is None or dossier.get("account_id") != account_id:
            raise NotFound(domain.NOT_FOUND)
        return dossier

    async def update(
        self, account_id: str, content: dict[str, Any], *, expected_version: int | None = None, today: date | None = None
    ) -> dict[str, Any]:
        dossier = await self.mine(account_id)
        self._transition(domain.check_editable, dossier["status"])
        if expected_version is not None and expected_version != dossier["version"]:
            raise Conflict(domain.CHANGED_MEANWHILE)
        now = self._now()
        new_content = self._checked_content(domain.content_of(dossier), content, today or now.date())
        changed = new_content != domain.content_of(dossier)
        status = domain.after_edit(dossier["status"], changed)
        fields = {**new_content, "status": status.value, "updated_at": now, "children_count": len(new_content["children"])}
        fields["search"] = await self._search_terms({**dossier, **fields})
        if not await self._db(self.store.replace_if_version(dossier["_id"], dossier["version"], fields, [], was=dossier["status"])):
            raise Conflict(domain.CHANGED_MEANWHILE)
        return {**dossier, **fields, "version": dossier["version"] + 1}

    async def preview(self, dossier: dict[str, Any], *, today: date | None = None) -> list[str]:
        """What would prevent the submission right now (shown to the family while editing)."""
        if dossier.get("status") in (Status.SUBMITTED, Status.VALIDATED, Status.ERASED):
            return []
        content = domain.content_of(dossier)
        known = await self._db(self.store.known_documents(domain.document_ids(content)))
        return domain.submission_problems(content, dossier["account_id"], known, today or self._now().date())

    async def submit(self, account_id: str, *, correlation_id: str | None = None, today: date | None = None) -> dict[str, Any]:
        dossier = await self.mine(account_id)
        self._transition(domain.check_submittable, dossier["status"])
        now = self._now()
        problems = await self.preview(dossier, today=today or now.date())
        if problems:
            raise Invalid("Votre dossier ne peut pas encore être transmis : " + " ".join(problems), problems)
        resubmission = dossier.get("first_submitted_at") is not None
        content = domain.content_of(dossier)
        data = events.HouseholdSubmitted(
            dossier_id=dossier["_id"], account_id=account_id, submitted_at=now, resubmission=resubmission,
            document_ids=domain.document_ids(content),
            # Enrolment finds each child's sector school from these before the file is validated.
            address=events.Address(**{f: content["address"][f] for f in domain.ADDRESS_FIELDS}),
            children=[events.SubmittedChild(child_id=c["child_id"], birth_date=date.fromisoformat(c["birth_date"]))
                      for c in content["children"]],
        )
        entry = {"at": now, "action": "submitted", "actor": "family", "resubmission": resubmission,
                 "version": dossier["version"] + 1}
        fields: dict[str, Any] = {"status": Status.SUBMITTED.value, "submitted_at": now, "resubmission": resubmission,
                                  "updated_at": now}
        if not resubmission:
            fields["first_submitted_at"] = now
        if not dossier.get("reference"):  # a file opened before references existed gets one now
            fields["reference"] = await self._new_reference(now)
            fields["search"] = await self._search_terms({**dossier, **fields})
        data = data.model_copy(update={"reference": fields.get("reference") or dossier.get("reference")})
        done = await self._db(self.store.replace_if_version(
            dossier["_id"], dossier["version"], fields,
            self._entries(data, subject=dossier["_id"], correlation_id=correlation_id), push={"history": entry},
        ))
        if not done:
            raise Conflict(domain.CHANGED_MEANWHILE)
        self._events_queued()
        log.info("dossier submitted", dossier_id=dossier["_id"], resubmission=resubmission)
        return {**dossier, **fields, "version": dossier["version"] + 1, "history": [*dossier.get("history", []), entry]}

    @staticmethod
    def _transition(check: Callable[[str], None], status: str) -> None:
        try:
            check(status)
        except TransitionRefused as exc:
            raise Conflict(exc.message) from None

    # ---- agents ---------------------------------------------------------------------------------

    async def for_review(self, dossier_id: str, *, erased_too: bool = False) -> dict[str, Any]:
        """The file for an agent; an erased one only for its audit trail."""
        dossier = await self._db(self.store.get(dossier_id))
        if dossier is None or (dossier.get("status") == Status.ERASED and not erased_too):
            raise NotFound(domain.NOT_FOUND)
        return dossier

    async def known_documents(self, document_ids: list[str]) -> dict[str, dict[str, Any]]:
        return await self._db(self.store.known_documents(document_ids))

    async def queue(self, **kwargs: Any) -> list[dict[str, Any]]:
        return await self._db(self.store.queue(**kwargs))

    async def search(self, *, query: str = "", assigned: str | None = None, agent_id: str = "",
                     **kwargs: Any) -> tuple[list[dict[str, Any]], int, bool]:
        """``assigned``: "me" (files leased to ``agent_id``), "none" (free ones), or None (all).
        Returns the page, the total and whether the total is capped."""
        return await self._db(self.store.search(
            terms=domain.query_terms(query),
            assigned_to=agent_id if assigned == "me" else None,
            unassigned_at=self._now() if assigned == "none" else None,
            **kwargs,
        ))

    async def export(self, status: str | None) -> bytes:
        rows = await self._db(self.store.for_export(status))
        # The day in the town's time (stored instants are UTC, handed back without their zone).
        return domain.export_csv(rows, lambda at: at.replace(tzinfo=UTC).astimezone(TOWN_TIME).strftime("%d/%m/%Y") if at else "")

    async def take(self, dossier_id: str, agent_id: str) -> dict[str, Any]:
        """« Je prends ce dossier »: a lease of ``ASSIGNMENT_MINUTES``, renewed by taking again."""
        dossier = await self.for_review(dossier_id)
        now = self._now()
        try:
            domain.check_may_take(dossier["status"], dossier.get("assignment"), agent_id, now)
        except TransitionRefused as exc:
            raise Conflict(exc.message) from None
        until = now + timedelta(minutes=domain.ASSIGNMENT_MINUTES)
        if not await self._db(self.store.take(dossier_id, agent_id, now, until)):
            raise Conflict(domain.ASSIGNED_TO_OTHER)  # taken or decided between the read and the write
        log.info("dossier taken", dossier_id=dossier_id, agent_id=agent_id)
        return {"agent_id": agent_id, "since": now, "until": until}

    async def release(self, dossier_id: str, agent_id: str, *, admin: bool = False) -> None:
        dossier = await self.for_review(dossier_id)
        holder = domain.lease_holder(dossier.get("assignment"), self._now())
        if holder is None:
            return  # nothing held: releasing twice is harmless
        if holder != agent_id and not admin:
            raise Conflict(domain.NOT_ASSIGNED_TO_YOU)
        await self._db(self.store.release(dossier_id, None if admin else agent_id))

    async def reassign(self, dossier_id: str, to_agent_id: str) -> dict[str, Any]:
        """An admin hands the file to another agent, whoever held it."""
        dossier = await self.for_review(dossier_id)
        if dossier["status"] != Status.SUBMITTED:
            raise Conflict(domain.NOT_ASSIGNABLE)
        now = self._now()
        until = now + timedelta(minutes=domain.ASSIGNMENT_MINUTES)
        if not await self._db(self.store.reassign(dossier_id, to_agent_id, now, until)):
            raise Conflict(domain.NOT_ASSIGNABLE)
        log.info("dossier reassigned", dossier_id=dossier_id, agent_id=to_agent_id)
        return {"agent_id": to_agent_id, "since": now, "until": until}

    async def decide(
        self,
        dossier_id: str,
        agent_id: str,
        decision: Decision,
        *,
        reason: str | None = None,
        corrections: list[dict[str, str]] | None = None,
        expected_version: int | None = None,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        dossier = await self.for_review(dossier_id)
        if expected_version is not None and expected_version != dossier["version"]:
            raise Conflict(domain.DECIDED_BY_ANOTHER)
        self._transition(domain.check_decidable, dossier["status"])
        now = self._now()
        try:
            domain.check_may_decide(dossier.get("assignment"), agent_id, now)
        except TransitionRefused as exc:
            raise Conflict(exc.message) from None
        content = domain.content_of(dossier)
        account_id = dossier["account_id"]
        fields: dict[str, Any] = {"status": decision.value, "updated_at": now, "decided_at": now}
        entry: dict[str, Any] = {"at": now, "action": decision.value, "actor": "agent", "agent_id": agent_id,
                                 "version": dossier["version"] + 1}
        data: EventData
        if decision is Decision.VALIDATE:
            validated = domain.mark_validated(content)
            fields.update(validated)
            fields["corrections"] = []
            address = validated["address"]
            data = events.DossierValidated(
                dossier_id=dossier_id, account_id=account_id,
                address=events.Address(**{f: address[f] for f in domain.ADDRESS_FIELDS}),
                children=[
                    events.Child(child_id=c["child_id"], first_name=c["first_name"], last_name=c["last_name"],
                                 birth_date=date.fromisoformat(c["birth_date"]))
                    for c in validated["children"] if c.get("validated")
                ],
                document_ids=domain.document_ids(validated), validated_at=now, reference=dossier.get("reference"),
            )
        elif decision is Decision.REJECT:
            assert reason
            entry["reason"] = reason
            fields["corrections"] = []
            fields["rejection_reason"] = reason
            data = events.DossierRejected(dossier_id=dossier_id, account_id=account_id, reason=reason, rejected_at=now,
                                          reference=dossier.get("reference"))
        else:
            assert corrections
            unknown = domain.unknown_items(content, [c["item"] for c in corrections])
            if unknown:
                message = "Élément inconnu dans ce dossier : " + ", ".join(unknown) + "."
                raise Invalid(message, [message])
            entry["corrections"] = corrections
            fields["corrections"] = corrections
            data = events.CorrectionRequested(
                dossier_id=dossier_id, account_id=account_id,
                corrections=[events.Correction(**c) for c in corrections], requested_at=now, reference=dossier.get("reference"),
            )
        done = await self._db(self.store.replace_if_version(
            dossier_id, dossier["version"], fields,
            self._entries(data, subject=dossier_id, correlation_id=correlation_id), push={"history": entry},
            # A decided file is nobody's any more: the lease ends with the decision.
            unset=["assignment", *(["rejection_reason"] if decision is not Decision.REJECT else [])],
        ))
        if not done:
            raise Conflict(domain.DECIDED_BY_ANOTHER)
        self._events_queued()
        log.info("dossier decided", dossier_id=dossier_id, decision=decision.value, agent_id=agent_id)
        return {**dossier, **fields, "version": dossier["version"] + 1, "history": [*dossier.get("history", []), entry]}

    async def download_links(self, document_ids: list[str], authorization: str) -> dict[str, dict[str, Any]]:
        """Links from the documents service, asked with the agent's own token (a read on behalf of
        the agent's request). A document it refuses or a service down gives no link, not an error."""

        async def one(document_id: str) -> tuple[str, dict[str, Any]]:
            assert self.http is not None
            try:
                response = await self.http.get(
                    f"{self.documents_url}/documents/{document_id}/download", headers={"Authorization": authorization}
                )
            except httpx.HTTPError:
                return document_id, {"url": None, "note": "Le service des pièces justificatives ne répond pas."}
            if response.status_code == 200:
                body = response.json()
                return document_id, {"url": body.get("url"), "expires_in": body.get("expires_in"),
                                     "filename": body.get("filename"), "content_type": body.get("content_type")}
            if response.status_code == 410:
                return document_id, {"url": None, "note": "Ce document contenait un virus et a été supprimé."}
            return document_id, {"url": None, "note": "Ce document n'est pas consultable (en cours de vérification, supprimé ou pas encore transmis)."}

        if not document_ids or self.http is None:
            return {}
        return dict(await asyncio.gather(*(one(d) for d in document_ids)))

    # ---- the preset correction reasons (« Motifs de correction ») ------------------------------

    def _first_reasons(self, now: datetime) -> dict[str, Any]:
        texts = list(domain.DEFAULT_CORRECTION_REASONS)
        return {"reasons": domain.new_reasons(texts), "version": 1, "updated_at": now,
                "history": [{"at": now, "action": "seeded", "actor": "system", "version": 1, "added": texts}]}

    async def seed_correction_reasons(self) -> bool:
        """The list the Service starts with, written once (run at start; a list already there,
        edited or not, is left alone)."""
        return await self.store.seed_correction_reasons(self._first_reasons(self._now()))

    async def correction_reasons(self, *, with_history: bool = False) -> dict[str, Any]:
        document = await self._db(self.store.preset_reasons(with_history=with_history))
        if document is None:  # asked before the start's seeding ran
            await self._db(self.store.seed_correction_reasons(self._first_reasons(self._now())))
            document = await self._db(self.store.preset_reasons(with_history=with_history))
        return document

    async def change_correction_reasons(
        self, agent_id: str, wanted: list[dict[str, str | None]], *, expected_version: int | None = None,
    ) -> dict[str, Any]:
        """An admin's new list (added, edited, reordered or removed reasons, see
        ``domain.apply_reasons``), written with who changed what and when; nothing is recorded
        when nothing changed."""
        document = await self.correction_reasons()
        if expected_version is not None and expected_version != document["version"]:
            raise Conflict(domain.REASONS_CHANGED_MEANWHILE)
        try:
            reasons = domain.apply_reasons(document["reasons"], wanted)
        except domain.UnknownItem as exc:
            raise Conflict(exc.message) from None
        problems = domain.correction_reasons_problems([r["text"] for r in reasons])
        if problems:
            raise Invalid(" ".join(problems), problems)
        change = domain.reasons_change(document["reasons"], reasons)
        if not change:
            return document
        now = self._now()
        version = document["version"] + 1
        entry = {"at": now, "action": "changed", "actor": "agent", "agent_id": agent_id, "version": version, **change}
        fields = {"reasons": reasons, "updated_at": now, "updated_by": agent_id}
        if not await self._db(self.store.replace_preset_reasons(document["version"], fields, entry)):
            raise Conflict(domain.REASONS_CHANGED_MEANWHILE)
        log.info("correction reasons changed", agent_id=agent_id, version=version, **{k: len(v) for k, v in change.items()
                                                                                       if isinstance(v, list)})
        return {**document, **fields, "version": version}

    # ---- events ---------------------------------------------------------------------------------

    async def erase_account(self, account_id: str, now: datetime | None = None) -> int:
        """AccountDeleted: the file keeps only what the audit needs (ids, decisions, dates, agents)."""
        now = now or self._now()
        await self.store.account_deleted(account_id, now)
        dossier = await self.store.of_account(account_id)
        erased = await self._anonymise(dossier, now) if dossier is not None else 0
        await self.store.forget_account_documents(account_id)
        if erased:
            log.info("dossier erased", dossier_id=dossier["_id"] if dossier else None)
        return erased

    async def _anonymise(self, dossier: dict[str, Any], now: datetime) -> int:
        fields = {"status": Status.ERASED.value, "erased_at": now, "updated_at": now,
                  "history": domain.anonymised_history(dossier.get("history", [])), "children_count": 0}
        return await self.store.erase(dossier["account_id"], fields, [*domain.PERSONAL_FIELDS, "rejection_reason"])

    async def purge(self, *, updated_before: datetime, audit_before: datetime) -> dict[str, int]:
        """Retention (docs/rgpd.md): a file unchanged for its period is anonymised like an erased
        account's (its owner starts a new one); an erased file's audit goes after its own."""
        now = self._now()
        stale = [await self._anonymise(d, now) for d in await self.store.stale(updated_before) if d.get("account_id")]
        counts = {"files_anonymised": sum(stale), "audits_deleted": await self.store.purge_erased(audit_before)}
        return {k: v for k, v in counts.items() if v}
