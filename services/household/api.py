"""HTTP routes of the household service. Thin: validate input, call the use cases, map outcomes.

Families (role ``family``) reach only their own file: ``/dossier`` is "mine", and
``/dossiers/{id}`` answers 404 for anyone else's. Agents and admins use ``/review/…``: they read
and decide but never edit family data. Every answer other than success is
``{"detail": "<French>"}`` (422s add ``problems``, one French sentence each).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
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
        "documents": [
            {"document_id": a.document_id, "requirement": a.requirement, "label": a.label, **links.get(a.document_id, {"url": None})}
            for a in domain.attachments(content)
        ],
        "timeline": history(dossier, audit=False),
    }


class QueueItem(BaseModel):
    id: str
    status: str
    submitted_at: datetime | None
    resubmission: bool = False
    children_count: int = 0
    family: str = Field(default="", description="The guardians' names, as the agent's queue lists them")
    version: int


class QueuePage(BaseModel):
    items: list[QueueItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one")


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


@router.get("/review/queue", response_model=QueuePage, tags=["review"],
            summary="Files waiting for review, oldest submission first (keyset pages)", responses=_responses(422, 503))
async def queue(
    principal: Agent,
    household: Service,
    status: Annotated[Literal["submitted", "validated", "rejected", "corrections_requested"], Query()] = "submitted",
    submitted_from: Annotated[datetime | None, Query(description="Inclusive")] = None,
    submitted_to: Annotated[datetime | None, Query(description="Exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> QueuePage:
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadCursor:
        raise Invalid("Le paramètre « cursor » n'est pas valide : repartez de la première page.") from None
    rows = await household.queue(status=status, submitted_from=submitted_from, submitted_to=submitted_to, after=after, limit=limit)
    items = [QueueItem(id=r["_id"], status=r["status"], submitted_at=r.get("submitted_at"), resubmission=r.get("resubmission", False),
                       children_count=r.get("children_count", 0), family=_family_names(r), version=r["version"]) for r in rows]
    last = rows[-1] if len(rows) == limit else None
    return QueuePage(items=items, next_cursor=encode_cursor(last["submitted_at"], last["_id"]) if last else None)


@router.get("/review/dossiers/{dossier_id}", tags=["review"],
            summary="A file with its documents and their download links (asked with the agent's own token)",
            responses=_responses(404, 503))
async def review(dossier_id: str, request: Request, principal: Agent, household: Service) -> dict[str, Any]:
    dossier = await household.for_review(dossier_id)
    ids = domain.document_ids(domain.content_of(dossier))
    links = await household.download_links(ids, request.headers.get("authorization", ""))
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
