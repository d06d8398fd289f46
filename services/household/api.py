"""HTTP routes of the household service. Thin: validate input, call the use cases, map outcomes.

Families (role ``family``) reach only their own file: ``/dossier`` is "mine", and
``/dossiers/{id}`` answers 404 for anyone else's. Agents and admins use ``/review/…``: they read
and decide but never edit family data. Every answer other than success is
``{"detail": "<French>"}`` (422s add ``problems``, one French sentence each).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from services.household import domain
from services.household.domain import Decision, Status
from services.household.store import BadCursor, decode_cursor, encode_cursor
from services.household.usecases import (
    Conflict,
    Forbidden,
    HouseholdError,
    HouseholdService,
    Invalid,
    NotFound,
    Unavailable,
)
from services.kernel.auth import Principal, require_role

router = APIRouter()
# A school id as enrolment hands them out (uuids, "ecole-…").
SCHOOL_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
DocumentId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Problem(BaseModel):
    detail: str
    problems: list[str] | None = None


# ---- family input ------------------------------------------------------------------------------


class AddressIn(BaseModel):
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10)] = Field(
        description="Numéro, avec son suffixe éventuel (« 12 », « 12 bis »)")
    street: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    postcode: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{5}$")] = Field(description="5 chiffres")
    town: Name
    proof_document_id: DocumentId | None = Field(default=None, description="Justificatif de domicile ou attestation sur l'honneur")


class GuardianIn(BaseModel):
    guardian_id: DocumentId | None = Field(default=None, description="Omit for a new guardian")
    first_name: Name
    last_name: Name
    relationship: Literal["mère", "père", "autre représentant légal"]
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 .-]{6,20}$")] | None = None
    email: EmailStr | None = None
    identity_document_id: DocumentId | None = None


class ChildIn(BaseModel):
    child_id: DocumentId | None = Field(default=None, description="Omit for a new child")
    first_name: Name
    last_name: Name
    birth_date: date
    identity_document_id: DocumentId | None = None


class RecommendedIn(BaseModel):
    kind: Literal["vaccination_record", "custody_judgement", "insurance", "other"]
    document_id: DocumentId
    child_id: DocumentId | None = None


class DossierIn(BaseModel):
    """The whole file as the family wants it (a full replacement: send back the ids you got)."""

    address: AddressIn | None = None
    guardians: list[GuardianIn] = Field(default_factory=list, max_length=domain.MAX_GUARDIANS)
    children: list[ChildIn] = Field(default_factory=list, max_length=domain.MAX_CHILDREN)
    recommended: list[RecommendedIn] = Field(default_factory=list, max_length=20)
    version: int | None = Field(default=None, description="The version you read: 409 if the file changed since")

    def content(self) -> dict[str, Any]:
        return {
            "address": self.address.model_dump() if self.address else None,
            "guardians": [g.model_dump() for g in self.guardians],
            "children": [{**c.model_dump(), "birth_date": c.birth_date.isoformat()} for c in self.children],
            "recommended": [r.model_dump() for r in self.recommended],
        }


# ---- views -------------------------------------------------------------------------------------


class HistoryEntry(BaseModel):
    at: datetime
    action: str
    label: str
    reason: str | None = None
    corrections: list[dict[str, str]] | None = None


class AuditEntry(HistoryEntry):
    actor: str | None = None
    agent_id: str | None = None
    version: int | None = None


def _label(entry: dict[str, Any]) -> str:
    if entry.get("action") == "submitted":
        return domain.RESUBMITTED_LABEL if entry.get("resubmission") else domain.SUBMITTED_LABEL
    return domain.DECISION_LABELS.get(Decision(entry["action"]), entry["action"]) if entry.get("action") in set(Decision) else str(entry.get("action"))


def history(dossier: dict[str, Any], *, audit: bool) -> list[dict[str, Any]]:
    out = []
    for entry in dossier.get("history") or []:
        item = {"at": entry["at"], "action": entry["action"], "label": _label(entry),
                "reason": entry.get("reason"), "corrections": entry.get("corrections")}
        if audit:
            item.update(actor=entry.get("actor"), agent_id=entry.get("agent_id"), version=entry.get("version"))
        out.append(item)
    return out


def family_view(dossier: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The family's own file; next to each item, the agent's correction reasons."""
    corrections = dossier.get("corrections") or []
    address = dossier.get("address")
    return {
        "id": dossier["_id"],
        "reference": dossier.get("reference"),
        "status": dossier["status"],
        "status_label": domain.STATUS_LABELS[Status(dossier["status"])],
        "version": dossier["version"],
        "created_at": dossier.get("created_at"),
        "submitted_at": dossier.get("submitted_at"),
        "address": None if address is None else {
            **address, "corrections": domain.corrections_for(corrections, "address", address.get("proof_document_id") or ""),
        },
        "guardians": [
            {**g, "corrections": domain.corrections_for(corrections, f"guardians.{g['guardian_id']}", g.get("identity_document_id") or "")}
            for g in dossier.get("guardians") or []
        ],
        "children": [
            {**c, "corrections": domain.corrections_for(corrections, f"children.{c['child_id']}", c.get("identity_document_id") or "")}
            for c in dossier.get("children") or []
        ],
        "recommended": [
            {**r, "label": domain.RECOMMENDED_KINDS[r["kind"]], "corrections": domain.corrections_for(corrections, r["document_id"])}
            for r in dossier.get("recommended") or []
        ],
        "corrections": corrections,
        "rejection_reason": dossier.get("rejection_reason"),
        "timeline": history(dossier, audit=False),
        "submission_problems": problems,
    }


def current_assignment(dossier: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The lease in force (agent id, since, until), or None when free or expired."""
    assignment = dossier.get("assignment")
    if domain.lease_holder(assignment, now) is None:
        return None
    return {k: assignment.get(k) for k in ("agent_id", "since", "until")}


def _document_view(attachment: domain.Attachment, link: dict[str, Any]) -> dict[str, Any]:
    """A document of the file for the agent: a sworn statement says so and what it replaces
    (``replaces``: the piece's label), never passes for the piece itself."""
    sworn = bool(link.get("sworn"))
    return {"document_id": attachment.document_id, "requirement": attachment.requirement, "label": attachment.label, **link,
            "sworn": sworn, "title": domain.document_title(attachment, sworn=sworn), "replaces": attachment.label if sworn else None}


def review_view(dossier: dict[str, Any], links: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What an agent needs to decide. Guardians' contact data is left out, the second guardian's
    included (DESIGN: never shown to the other; the review does not need it)."""
    content = domain.content_of(dossier)
    guardians = [
        {k: g.get(k) for k in ("guardian_id", "first_name", "last_name", "relationship", "identity_document_id")}
        for g in content.get("guardians") or []
    ]
    return {
        "id": dossier["_id"],
        "reference": dossier.get("reference"),
        "assignment": current_assignment(dossier, datetime.now(UTC)),
        "account_id": dossier.get("account_id"),
        "status": dossier["status"],
        "status_label": domain.STATUS_LABELS[Status(dossier["status"])],
        "version": dossier["version"],
        "submitted_at": dossier.get("submitted_at"),
        "resubmission": dossier.get("resubmission", False),
        "address": content.get("address"),
        "guardians": guardians,
        "children": content.get("children") or [],
        "recommended": content.get("recommended") or [],
        "corrections": dossier.get("corrections") or [],
        "documents": [_document_view(a, links.get(a.document_id, {"url": None})) for a in domain.attachments(content)],
        "timeline": history(dossier, audit=False),
    }


class Assignment(BaseModel):
    agent_id: str
    since: datetime | None = None
    until: datetime


class QueueItem(BaseModel):
    id: str
    reference: str | None = None
    assignment: Assignment | None = Field(default=None, description="The agent examining it now (lease in force)")
    status: str
    submitted_at: datetime | None
    resubmission: bool = False
    children_count: int = 0
    family: str = Field(default="", description="The guardians' names, as the agent's queue lists them")
    version: int


class QueuePage(BaseModel):
    items: list[QueueItem]
    next_cursor: str | None = Field(default=None, description="Keyset mode (`cursor` given or asked with `cursor=`): the next page's cursor")
    total: int | None = Field(default=None, description="Numbered mode: how many files match (at most 10,000 counted)")
    total_capped: bool = Field(default=False, description="True when there are more than `total`")
    page: int | None = None
    pages: int | None = None


class ReassignIn(BaseModel):
    agent_id: DocumentId = Field(description="The staff account that takes over the file")


class DecisionIn(BaseModel):
    version: int | None = Field(default=None, description="The version the agent read: 409 if someone decided since")


class RejectIn(DecisionIn):
    reason: Reason


class CorrectionIn(BaseModel):
    item: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)] = Field(
        description="\"address\", \"address.postcode\", \"children.<id>\", \"guardians.<id>\" (optionally .<field>), or a document id")
    reason: Reason


class CorrectionsIn(DecisionIn):
    corrections: list[CorrectionIn] = Field(min_length=1, max_length=50)


# ---- plumbing ----------------------------------------------------------------------------------


def service(request: Request) -> HouseholdService:
    return request.app.state.household


def correlation(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None)


Service = Annotated[HouseholdService, Depends(service)]
Family = Annotated[Principal, Depends(require_role("family"))]
Agent = Annotated[Principal, Depends(require_role("agent", "admin"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]

_STATUS: list[tuple[type[HouseholdError], int]] = [
    (NotFound, 404), (Conflict, 409), (Forbidden, 403), (Invalid, 422), (Unavailable, 503),
]


def household_error_response(exc: HouseholdError) -> JSONResponse:
    code = next(c for kind, c in _STATUS if isinstance(exc, kind))
    body: dict[str, Any] = {"detail": exc.message}
    if exc.problems:
        body["problems"] = exc.problems
    return JSONResponse(body, status_code=code, headers={"Retry-After": "10"} if code == 503 else None)


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


# ---- family routes -----------------------------------------------------------------------------


@router.post("/dossier", status_code=201, tags=["family"], summary="Create my file (one per activated account)",
             responses=_responses(403, 409, 422, 503))
async def create(principal: Family, household: Service, body: DossierIn | None = None) -> dict[str, Any]:
    dossier = await household.create(principal.account_id, body.content() if body else None)
    return family_view(dossier, await household.preview(dossier))


@router.get("/dossier", tags=["family"], summary="My file: status, timeline, corrections next to each item, what is missing",
            responses=_responses(404, 503))
async def mine(principal: Family, household: Service) -> dict[str, Any]:
    dossier = await household.mine(principal.account_id)
    return family_view(dossier, await household.preview(dossier))


@router.get("/dossiers/{dossier_id}", tags=["family"], summary="My file by its id (anyone else's: 404)",
            responses=_responses(404, 503))
async def mine_by_id(dossier_id: str, principal: Family, household: Service) -> dict[str, Any]:
    dossier = await household.of_family(dossier_id, principal.account_id)
    return family_view(dossier, await household.preview(dossier))


@router.put("/dossier", tags=["family"], summary="Replace my file's content (not while under review)",
            responses=_responses(404, 409, 422, 503))
async def update(body: DossierIn, principal: Family, household: Service) -> dict[str, Any]:
    dossier = await household.update(principal.account_id, body.content(), expected_version=body.version)
    return family_view(dossier, await household.preview(dossier))


@router.post("/dossier/submit", tags=["family"], summary="Submit my file for review (422 lists everything missing)",
             responses=_responses(404, 409, 422, 503))
async def submit(request: Request, principal: Family, household: Service) -> dict[str, Any]:
    dossier = await household.submit(principal.account_id, correlation_id=correlation(request))
    return family_view(dossier, [])


# ---- agent routes ------------------------------------------------------------------------------


def _family_names(row: dict[str, Any]) -> str:
    names = (f"{g.get('first_name', '')} {g.get('last_name', '')}".strip() for g in row.get("guardians") or [])
    return ", ".join(name for name in names if name)


def _queue_item(row: dict[str, Any], now: datetime) -> QueueItem:
    return QueueItem(id=row["_id"], reference=row.get("reference"), assignment=current_assignment(row, now),
                     status=row["status"], submitted_at=row.get("submitted_at"), resubmission=row.get("resubmission", False),
                     children_count=row.get("children_count", 0), family=_family_names(row), version=row["version"])


@router.get("/review/queue", response_model=QueuePage, tags=["review"],
            summary="Files by status: search (reference, names, email), filters, sort, numbered pages with the total",
            responses=_responses(422, 503))
async def queue(
    principal: Agent,
    household: Service,
    status: Annotated[Literal["submitted", "validated", "rejected", "corrections_requested", "all"], Query()] = "submitted",
    q: Annotated[str, Query(max_length=200, description="A reference, a family or child's name, an email")] = "",
    assigned: Annotated[Literal["me", "none"] | None, Query(description="Files I took, or files nobody holds")] = None,
    sort: Annotated[Literal["oldest", "newest"], Query()] = "oldest",
    school: Annotated[str | None, Query(max_length=80, description=(
        "A school id (enrolment's): files with a child enrolled in it or asking for it (enrolment's events)"))] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    submitted_until: Annotated[datetime | None, Query(description="Numbered mode: submitted at or before (« en retard »)")] = None,
    submitted_from: Annotated[datetime | None, Query(description="Inclusive (keyset mode)")] = None,
    submitted_to: Annotated[datetime | None, Query(description="Exclusive (keyset mode)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=300, description="Keyset mode: oldest first, by date range")] = None,
) -> QueuePage:
    now = datetime.now(UTC)
    if school is not None and not SCHOOL_ID.match(school):
        raise Invalid("Le paramètre « school » n'est pas un identifiant d'école valide.")
    if cursor is None and submitted_from is None and submitted_to is None:
        rows, total, capped = await household.search(
            query=q, assigned=assigned, agent_id=principal.account_id, status=None if status == "all" else status,
            newest_first=sort == "newest", page=page, limit=limit, submitted_until=submitted_until, school=school)
        return QueuePage(items=[_queue_item(r, now) for r in rows], total=total, total_capped=capped,
                         page=page, pages=max(1, -(-total // limit)))
    if status == "all" or q or assigned or sort != "oldest" or submitted_until or school:
        raise Invalid("La recherche et les filtres se combinent avec les pages numérotées, pas avec « cursor » ni les dates.")
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadCursor:
        raise Invalid("Le paramètre « cursor » n'est pas valide : repartez de la première page.") from None
    rows = await household.queue(status=status, submitted_from=submitted_from, submitted_to=submitted_to, after=after, limit=limit)
    items = [_queue_item(r, now) for r in rows]
    last = rows[-1] if len(rows) == limit else None
    return QueuePage(items=items, next_cursor=encode_cursor(last["submitted_at"], last["_id"]) if last else None)


@router.get("/review/dossiers/{dossier_id}", tags=["review"],
            summary="A file with its documents and their download links (asked with the agent's own token)",
            responses=_responses(404, 503))
async def review(dossier_id: str, request: Request, principal: Agent, household: Service) -> dict[str, Any]:
    dossier = await household.for_review(dossier_id)
    ids = domain.document_ids(domain.content_of(dossier))
    links, known = await asyncio.gather(household.download_links(ids, request.headers.get("authorization", "")),
                                        household.known_documents(ids))
    # A sworn statement (attestation sur l'honneur) stands in for the piece: the agent sees it as such.
    for document_id, document in known.items():
        links.setdefault(document_id, {"url": None})["sworn"] = document.get("kind") == domain.SWORN_STATEMENT
    return review_view(dossier, links)


@router.get("/review/dossiers/{dossier_id}/audit", response_model=list[AuditEntry], tags=["review"],
            summary="Every submission and decision on the file: who, when, what, why", responses=_responses(404, 503))
async def audit(dossier_id: str, principal: Agent, household: Service) -> list[dict[str, Any]]:
    dossier = await household.for_review(dossier_id, erased_too=True)
    return history(dossier, audit=True)


def _decided(dossier: dict[str, Any]) -> dict[str, Any]:
    return {"id": dossier["_id"], "status": dossier["status"], "status_label": domain.STATUS_LABELS[Status(dossier["status"])],
            "version": dossier["version"]}


@router.post("/review/dossiers/{dossier_id}/validate", tags=["review"], summary="Validate the file (emits DossierValidated)",
             responses=_responses(404, 409, 503))
async def validate(dossier_id: str, request: Request, principal: Agent, household: Service, body: DecisionIn | None = None) -> dict[str, Any]:
    dossier = await household.decide(dossier_id, principal.account_id, Decision.VALIDATE,
                                     expected_version=body.version if body else None, correlation_id=correlation(request))
    return _decided(dossier)


@router.post("/review/dossiers/{dossier_id}/reject", tags=["review"], summary="Reject the file with a reason the family sees",
             responses=_responses(404, 409, 422, 503))
async def reject(dossier_id: str, body: RejectIn, request: Request, principal: Agent, household: Service) -> dict[str, Any]:
    dossier = await household.decide(dossier_id, principal.account_id, Decision.REJECT, reason=body.reason,
                                     expected_version=body.version, correlation_id=correlation(request))
    return _decided(dossier)


@router.post("/review/dossiers/{dossier_id}/request-corrections", tags=["review"],
             summary="Ask the family to correct items, one reason per item", responses=_responses(404, 409, 422, 503))
async def request_corrections(dossier_id: str, body: CorrectionsIn, request: Request, principal: Agent, household: Service) -> dict[str, Any]:
    dossier = await household.decide(dossier_id, principal.account_id, Decision.REQUEST_CORRECTIONS,
                                     corrections=[c.model_dump() for c in body.corrections],
                                     expected_version=body.version, correlation_id=correlation(request))
    return _decided(dossier)


# ---- assignment (« Je prends ce dossier ») ----------------------------------------------------


@router.post("/review/dossiers/{dossier_id}/assignment", response_model=Assignment, tags=["review"],
             summary="Take the file: a lease of 30 minutes shown to the other agents; taking again renews it",
             responses=_responses(404, 409, 503))
async def take(dossier_id: str, principal: Agent, household: Service) -> dict[str, Any]:
    return await household.take(dossier_id, principal.account_id)


@router.delete("/review/dossiers/{dossier_id}/assignment", status_code=204, tags=["review"],
               summary="Release the file (its holder, or an admin)", responses=_responses(404, 409, 503))
async def release(dossier_id: str, principal: Agent, household: Service) -> Response:
    await household.release(dossier_id, principal.account_id, admin=principal.role == "admin")
    return Response(status_code=204)


@router.put("/review/dossiers/{dossier_id}/assignment", response_model=Assignment, tags=["review"],
            summary="Hand the file to another agent (admins only)", responses=_responses(404, 409, 422, 503))
async def reassign(dossier_id: str, body: ReassignIn, principal: Admin, household: Service) -> dict[str, Any]:
    return await household.reassign(dossier_id, body.agent_id)


@router.get("/review/export.csv", tags=["review"], response_class=Response,
            summary="CSV of the files (UTF-8 with BOM, « ; » separators: opens in French spreadsheet software)",
            responses={200: {"content": {"text/csv": {}}}, **_responses(422, 503)})
async def export(
    principal: Agent, household: Service,
    status: Annotated[Literal["submitted", "validated", "rejected", "corrections_requested", "draft", "all"], Query()] = "all",
) -> Response:
    data = await household.export(None if status == "all" else status)
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="dossiers-{status}.csv"', "Cache-Control": "no-store"})


# ---- the preset correction reasons (« Motifs de correction ») -----------------------------------


class PresetReason(BaseModel):
    id: str
    text: str


class CorrectionReasons(BaseModel):
    version: int = Field(description="Send it back with a change: 409 if the list changed since")
    reasons: list[PresetReason] = Field(description="In the order agents see them")
    updated_at: datetime | None = None
    updated_by: str | None = Field(default=None, description="The admin's account id (none for the first list)")


class PresetReasonIn(BaseModel):
    id: DocumentId | None = Field(default=None, description="A reason of the list, kept (its text edited if changed); omit for a new one")
    # Checked by the rules for a French reason each (empty, too long, twice in the list): only a bound here.
    text: Annotated[str, StringConstraints(max_length=2000)]


class CorrectionReasonsIn(BaseModel):
    """The whole list as the admin wants it: reasons not named are removed, the order is kept."""

    reasons: list[PresetReasonIn] = Field(max_length=200)
    version: int | None = Field(default=None, description="The version you read: 409 if the list changed since")


class EditedReason(BaseModel):
    from_: str = Field(alias="from")
    to: str


class ReasonsChange(BaseModel):
    at: datetime
    action: Literal["seeded", "changed"]
    label: str
    agent_id: str | None = Field(default=None, description="The admin who changed the list (none for the first list)")
    version: int | None = None
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    edited: list[EditedReason] = Field(default_factory=list)
    reordered: bool = False


def _reasons_view(document: dict[str, Any]) -> dict[str, Any]:
    return {"version": document["version"], "reasons": [{"id": r["id"], "text": r["text"]} for r in document.get("reasons") or []],
            "updated_at": document.get("updated_at"), "updated_by": document.get("updated_by")}


@router.get("/review/correction-reasons", response_model=CorrectionReasons, tags=["review"],
            summary="The preset reasons an agent picks when asking a family to correct a document", responses=_responses(503))
async def correction_reasons(principal: Agent, household: Service) -> dict[str, Any]:
    return _reasons_view(await household.correction_reasons())


@router.put("/review/correction-reasons", response_model=CorrectionReasons, tags=["review"],
            summary="Replace the preset reasons: add, edit, reorder, remove (admins only; recorded with who and when)",
            responses=_responses(409, 422, 503))
async def change_correction_reasons(body: CorrectionReasonsIn, principal: Admin, household: Service) -> dict[str, Any]:
    wanted = [{"id": r.id, "text": r.text} for r in body.reasons]
    return _reasons_view(await household.change_correction_reasons(principal.account_id, wanted, expected_version=body.version))


@router.get("/review/correction-reasons/history", response_model=list[ReasonsChange], tags=["review"],
            summary="Every change of the preset reasons, newest first: when, which admin, what", responses=_responses(503))
async def correction_reasons_history(principal: Agent, household: Service) -> list[dict[str, Any]]:
    document = await household.correction_reasons(with_history=True)
    return [{**entry, "label": domain.REASON_LABELS.get(entry.get("action", ""), str(entry.get("action")))}
            for entry in reversed(document.get("history") or [])]
