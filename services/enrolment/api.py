"""HTTP routes of the enrolment service. Thin: validate input, call the use cases, map outcomes.

Every answer other than success is JSON ``{"detail": "<French>"}``. Another family's enrolment
and an unknown id are the same 404."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.enrolment import domain
from services.enrolment.domain import Level, ReasonCategory, SchoolType
from services.enrolment.usecases import (
    Conflict,
    DerogationRequest,
    EnrolmentError,
    EnrolmentService,
    Forbidden,
    Invalid,
    NotFound,
    NotReadyYet,
    Unavailable,
)
from services.kernel.auth import Principal, require_role

router = APIRouter()
MAX_CSV_BYTES = 900_000


class Problem(BaseModel):
    detail: str


def service(request: Request) -> EnrolmentService:
    return request.app.state.enrolment


Service = Annotated[EnrolmentService, Depends(service)]
Family = Annotated[Principal, Depends(require_role("family"))]
Staff = Annotated[Principal, Depends(require_role("agent", "admin"))]
Anyone = Annotated[Principal, Depends(require_role("family", "agent", "admin"))]

_STATUS: list[tuple[type[EnrolmentError], int]] = [
    (NotFound, 404), (Forbidden, 403), (Conflict, 409), (Invalid, 422), (Unavailable, 503),
]


def enrolment_error_response(exc: EnrolmentError) -> JSONResponse:
    code = next(c for kind, c in _STATUS if isinstance(exc, kind))
    headers = {"Retry-After": "30"} if code == 503 else {"Retry-After": "5"} if isinstance(exc, NotReadyYet) else None
    return JSONResponse({"detail": exc.message, **exc.extra}, status_code=code, headers=headers)


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


def correlation(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None)


def _year(svc: EnrolmentService, value: str | None) -> int:
    if value is None or not value.strip():
        return svc.coming_year()
    year = domain.parse_school_year(value)
    if year is None:
        coming = svc.coming_year()
        raise Invalid(domain.BAD_YEAR.format(year=coming, next=coming + 1))
    return year


def _reference(value: str | None) -> str | None:
    """An agent's search by reference, as stored; a 422 for what is not one."""
    if not value or not value.strip():
        return None
    found = domain.reference_query(value)
    if found is None:
        raise Invalid(domain.REFERENCE_INVALID)
    return found


# ---- views ---------------------------------------------------------------------------------------


class SchoolRef(BaseModel):
    id: str
    name: str
    address: str


class DerogationView(BaseModel):
    requested_school_id: str
    reason_category: ReasonCategory
    reason_label: str
    reason_text: str | None = None
    status: Literal["pending", "accepted", "refused", "withdrawn"]
    decision_reason: str | None = None
    requested_at: datetime | None = None
    decided_at: datetime | None = None


class EnrolmentView(BaseModel):
    id: str
    reference: str
    child_id: str | None
    child_first_name: str | None = None
    child_last_name: str | None = None
    child_birth_date: date | None = None
    school_year: str
    school_year_title: str = Field(description="« rentrée 2027 (année scolaire 2027-2028) » or « année scolaire en cours 2026-2027 ».")
    mid_year: bool = Field(description="Asked for the school year in progress (a family moving in mid-year).")
    level: Level
    level_label: str
    status: Literal["pending_agent", "confirmed", "refused", "withdrawn"]
    pending_reason: Literal["address_unknown", "no_seat", "derogation"] | None = None
    address_outside_town: bool = Field(default=False, description="The family's address is not in the town: no sector school.")
    status_label: str
    school_id: str | None = Field(description="The school the child is registered in (or asked for, while pending).")
    sector_school_id: str | None
    derogation: DerogationView | None = None
    refusal_reason: str | None = None
    certificate_available: bool
    verification_code: str | None = Field(default=None, description="Printed on the certificate; checked on the public page /verifier/<code>.")
    created_at: datetime
    confirmed_at: datetime | None = None

    @classmethod
    def of(cls, e: dict[str, Any]) -> EnrolmentView:
        status = e["status"]
        if status == "confirmed":
            label = "inscription confirmée" + (" (certificat en préparation)" if e.get("certificate_due") else "")
        elif status == "refused":
            label = "inscription refusée"
        elif status == "withdrawn":
            label = domain.WITHDRAWN_LABEL
        elif e.get("outside_town"):
            label = domain.OUT_OF_TOWN_LABEL
        else:
            label = domain.PENDING_LABELS[domain.PendingReason(e["pending_reason"])]
        if (e.get("derogation") or {}).get("status") == "pending" and status != "pending_agent":
            label += " ; " + domain.PENDING_LABELS[domain.PendingReason.DEROGATION]
        d = e.get("derogation")
        child = e.get("child") or {}
        return cls(
            id=e["_id"], reference=e["reference"], child_id=child.get("child_id"),
            child_first_name=child.get("first_name"), child_last_name=child.get("last_name"),
            child_birth_date=child.get("birth_date"),
            school_year=domain.school_year_label(e["school_year"]),
            school_year_title=domain.year_title(e["school_year"], in_progress=bool(e.get("mid_year"))),
            mid_year=bool(e.get("mid_year")), address_outside_town=bool(e.get("outside_town")),
            level=e["level"], level_label=domain.level_label(e["level"]),
            status=status, pending_reason=e.get("pending_reason"), status_label=label,
            school_id=e.get("school_id"), sector_school_id=e.get("sector_school_id"),
            derogation=DerogationView(
                requested_school_id=d["requested_school_id"], reason_category=d["reason_category"],
                reason_label=domain.REASON_LABELS[ReasonCategory(d["reason_category"])], reason_text=d.get("reason_text"),
                status=d["status"], decision_reason=d.get("decision_reason"), requested_at=d.get("requested_at"),
                decided_at=d.get("decided_at"),
            ) if d else None,
            refusal_reason=e.get("refusal_reason"), certificate_available=bool(e.get("certificate")),
            verification_code=e.get("verification_code") if e.get("certificate") else None,
            created_at=e["created_at"], confirmed_at=e.get("confirmed_at"),
        )


class EnrolmentList(BaseModel):
    enrolments: list[EnrolmentView]


class EligibleChild(BaseModel):
    child_id: str
    first_name: str
    last_name: str
    birth_date: date
    eligible: bool = Field(description="False when the child is too young or too old for that school year (see message).")
    message: str | None
    level: Level | None
    level_label: str | None
    sector_school: SchoolRef | None
    address_on_map: bool = Field(description="False: the address goes to an agent, the child can still be enrolled.")
    enrolment: dict[str, str] | None = Field(description="{id, status} of the child's enrolment for that year, if any.")
    can_enrol: bool = Field(description="Show the « Inscription scolaire » button for this child.")


class SchoolYearChoice(BaseModel):
    school_year: str
    school_year_start: int
    in_progress: bool = Field(description="The school year running now (enrolment of a family moving in mid-year).")
    title: str = Field(description="French, e.g. « année scolaire en cours 2026-2027 », « rentrée 2027 (année scolaire 2027-2028) ».")


class Eligibility(BaseModel):
    unlocked: bool = Field(description="A DossierValidated event has been seen for this account.")
    message: str | None
    school_year: str = Field(description="The year the levels and sector schools below are for (the one asked, else the next rentrée).")
    school_year_start: int
    school_year_title: str
    school_years: list[SchoolYearChoice] = Field(description="The years families may enrol for today, oldest first.")
    address_in_town: bool | None = Field(description="False: the address is outside the town, it has no sector school (see address_message).")
    address_message: str | None
    children: list[EligibleChild]
    dossier_reference: str | None = Field(default=None, description="The family's file reference (household's MSL-2027-000123), as the last DossierValidated carried it.")


class Verification(BaseModel):
    code: str
    valid: bool
    school_name: str
    level: Level
    level_label: str
    school_year: str
    child_initials: str = Field(description="The only thing said of the child, e.g. « L. D. ».")


class DerogationBody(BaseModel):
    requested_school_id: str = Field(min_length=1, max_length=64)
    reason_category: ReasonCategory
    reason_text: str = Field(min_length=1, max_length=2000)

    def request(self) -> DerogationRequest:
        return DerogationRequest(self.requested_school_id.strip(), self.reason_category, domain.clean_text(self.reason_text, 2000))


class EnrolmentBody(BaseModel):
    child_id: str = Field(min_length=1, max_length=64)
    school_year: str | int = Field(description="\"2027-2028\" or 2027: the school year starting in September 2027.")
    derogation: DerogationBody | None = Field(default=None, description="Ask for another school than the sector one.")


class DecisionBody(BaseModel):
    decision: Literal["confirm", "refuse"]
    reason: str | None = Field(default=None, max_length=2000, description="Required to refuse; shown to the family.")
    school_id: str | None = Field(default=None, max_length=64, description="The school chosen when the address is not on the map.")


class DerogationDecisionBody(BaseModel):
    decision: Literal["accepted", "refused"]
    reason: str | None = Field(default=None, max_length=2000, description="Required when refused; shown to the family.")


class Download(BaseModel):
    url: str = Field(description="Presigned GET on the object store; answers with Content-Disposition: attachment.")
    expires_in: int = Field(description="Seconds the link stays valid (at most 300).")
    filename: str
    content_type: str


class SchoolBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=300)
    type: SchoolType
    levels: list[Level] = Field(min_length=1)
    capacity: dict[Level, int] = Field(default_factory=dict, description="Default capacity per level, every year.")


class SchoolView(BaseModel):
    id: str
    name: str
    address: str
    type: SchoolType
    levels: list[Level]
    capacity: dict[str, int]
    capacities: dict[str, dict[str, int]] = Field(description="Per school year (\"2027\") overrides of the capacity.")

    @classmethod
    def of(cls, s: dict[str, Any]) -> SchoolView:
        return cls(id=s["_id"], name=s["name"], address=s["address"], type=s["type"], levels=s["levels"],
                   capacity=s.get("capacity", {}), capacities=s.get("capacities", {}))


class CapacityBody(BaseModel):
    school_year: str | int
    level: Level
    capacity: int = Field(ge=0, le=1000)


class LevelCount(BaseModel):
    level: Level
    label: str
    capacity: int
    seats_taken: int
    confirmed: int
    pending: int
    free: int


class SchoolEnrolments(BaseModel):
    school: SchoolView
    school_year: str
    levels: list[LevelCount]
    enrolments: list[EnrolmentView]


class ReportProblem(BaseModel):
    kind: str
    line: int | None
    message: str


class ImportReportView(BaseModel):
    import_id: str | None = None
    rows: int
    segments: int
    streets: int
    can_apply: bool
    errors: list[ReportProblem]
    warnings: list[ReportProblem]


_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}, "example": (
    "street;number_from;number_to;side;maternelle;elementaire\nrue des Lilas;1;99;odd;mat-tilleuls;elem-jaures\n")}}}}


async def _csv(request: Request) -> bytes:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_CSV_BYTES:
            raise Invalid("Le fichier de carte scolaire est trop volumineux (900 ko au plus).")
    if not raw.strip():
        raise Invalid("Le fichier de carte scolaire est vide.")
    return raw


# ---- families -----------------------------------------------------------------------------------


@router.get("/enrolments/eligible", response_model=Eligibility, tags=["familles"],
            summary="Which of my children can be enrolled now, for which school year, at which level and sector school")
async def eligible(principal: Family, svc: Service,
                   school_year: Annotated[str | None, Query(max_length=12, description="\"2026-2027\" or 2026; default: the next rentrée.")] = None,
                   ) -> Eligibility:
    return Eligibility.model_validate(await svc.eligible(principal.account_id, school_year))


@router.post("/enrolments", status_code=201, response_model=EnrolmentView, tags=["familles"],
             summary="Enrol my child for an open school year (the one in progress or the next rentrée; sector school, or dérogation)",
             responses=_responses(403, 404, 409, 422, 503))
async def enrol(body: EnrolmentBody, principal: Family, request: Request, svc: Service) -> EnrolmentView:
    derogation = body.derogation.request() if body.derogation else None
    enrolment = await svc.request(principal.account_id, body.child_id.strip(), body.school_year, derogation,
                                  correlation_id=correlation(request))
    return EnrolmentView.of(enrolment)


@router.get("/enrolments", response_model=EnrolmentList, tags=["familles"], summary="My enrolments, newest first")
async def mine(principal: Family, svc: Service) -> EnrolmentList:
    return EnrolmentList(enrolments=[EnrolmentView.of(e) for e in await svc.mine(principal.account_id)])


@router.get("/enrolments/pending", response_model=EnrolmentList, tags=["agents"],
            summary="Enrolments and dérogations waiting for an agent's decision, oldest first")
async def pending(
    principal: Staff, svc: Service,
    school_id: Annotated[str | None, Query(max_length=64)] = None,
    school_year: Annotated[str | None, Query(max_length=12)] = None,
) -> EnrolmentList:
    year = domain.parse_school_year(school_year) if school_year else None
    if school_year and year is None:
        _year(svc, school_year)
    return EnrolmentList(enrolments=[EnrolmentView.of(e) for e in await svc.pending(school_id, year)])


@router.get("/enrolments/{enrolment_id}", response_model=EnrolmentView, tags=["familles"],
            summary="One enrolment (its family; agents)", responses=_responses(404))
async def one(enrolment_id: str, principal: Anyone, svc: Service) -> EnrolmentView:
    return EnrolmentView.of(await svc.get(enrolment_id, principal.account_id, principal.role))


@router.post("/enrolments/{enrolment_id}/derogation", response_model=EnrolmentView, tags=["familles"],
             summary="Ask for another school than the sector one (dérogation), with a reason",
             responses=_responses(404, 409, 422))
async def ask_derogation(enrolment_id: str, body: DerogationBody, principal: Family, svc: Service) -> EnrolmentView:
    return EnrolmentView.of(await svc.ask_derogation(enrolment_id, principal.account_id, body.request()))


@router.get("/enrolments/{enrolment_id}/certificate", response_model=Download, tags=["familles"],
            summary="A presigned link (at most 5 minutes) to the certificat d'inscription PDF", responses=_responses(404, 409, 503))
async def certificate(enrolment_id: str, principal: Anyone, svc: Service) -> Download:
    link = await svc.certificate_link(enrolment_id, principal.account_id, principal.role)
    return Download(url=link.url, expires_in=link.expires_in, filename=link.filename, content_type=link.content_type)


# ---- agents -------------------------------------------------------------------------------------


@router.post("/enrolments/{enrolment_id}/decision", response_model=EnrolmentView, tags=["agents"],
             summary="Confirm (choosing the school if the address is not on the map) or refuse (with a reason) a pending enrolment",
             responses=_responses(404, 409, 422))
async def decide(enrolment_id: str, body: DecisionBody, principal: Staff, request: Request, svc: Service) -> EnrolmentView:
    reason = domain.clean_text(body.reason or "", 2000)
    school_id = body.school_id.strip() if body.school_id else None
    return EnrolmentView.of(await svc.decide(enrolment_id, body.decision, reason, school_id, principal.account_id,
                                             correlation_id=correlation(request)))


@router.post("/enrolments/{enrolment_id}/derogation/decision", response_model=EnrolmentView, tags=["agents"],
             summary="Accept (capacity permitting) or refuse (with a reason) a dérogation", responses=_responses(404, 409, 422))
async def decide_derogation(enrolment_id: str, body: DerogationDecisionBody, principal: Staff, request: Request,
                            svc: Service) -> EnrolmentView:
    reason = domain.clean_text(body.reason or "", 2000)
    return EnrolmentView.of(await svc.decide_derogation(enrolment_id, body.decision == "accepted", reason, principal.account_id,
                                                        correlation_id=correlation(request)))


@router.get("/schools", response_model=list[SchoolView], tags=["écoles"], summary="The town's schools")
async def schools(principal: Anyone, svc: Service) -> list[SchoolView]:
    return [SchoolView.of(s) for s in await svc.schools()]


@router.get("/schools/{school_id}", response_model=SchoolView, tags=["écoles"], responses=_responses(404))
async def school(school_id: str, principal: Anyone, svc: Service) -> SchoolView:
    return SchoolView.of(await svc.school(school_id))


@router.put("/schools/{school_id}", response_model=SchoolView, tags=["écoles"],
            summary="Create or replace a school (levels offered, default capacity per level)", responses=_responses(422))
async def put_school(
    school_id: str, body: SchoolBody, principal: Staff, svc: Service
) -> SchoolView:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", school_id):
        raise Invalid("Identifiant d'école invalide : lettres minuscules, chiffres et tirets.")
    doc = await svc.put_school(school_id, {**body.model_dump(mode="json"), "capacity": {k.value: v for k, v in body.capacity.items()}},
                              by=principal.account_id)
    return SchoolView.of(doc)


@router.put("/schools/{school_id}/capacity", response_model=LevelCount, tags=["écoles"],
            summary="Set the capacity of a level for a school year", responses=_responses(404, 409, 422))
async def set_capacity(school_id: str, body: CapacityBody, principal: Staff, svc: Service) -> LevelCount:
    year = _year(svc, str(body.school_year))
    seat = await svc.set_capacity(school_id, year, body.level, body.capacity, by=principal.account_id)
    return LevelCount(level=body.level, label=domain.level_label(body.level), capacity=seat["capacity"], seats_taken=seat["count"],
                      confirmed=seat["count"], pending=0, free=seat["free"])


@router.get("/schools/{school_id}/enrolments", response_model=SchoolEnrolments, tags=["agents"],
            summary="Enrolments of a school for a year, by level, against capacity", responses=_responses(404, 422))
async def school_enrolments(school_id: str, principal: Staff, svc: Service,
                            school_year: Annotated[str | None, Query(max_length=12)] = None) -> SchoolEnrolments:
    overview = await svc.school_overview(school_id, _year(svc, school_year))
    return SchoolEnrolments(
        school=SchoolView.of(overview["school"]), school_year=overview["school_year"],
        levels=[LevelCount.model_validate(level) for level in overview["levels"]],
        enrolments=[EnrolmentView.of(e) for e in overview["enrolments"]],
    )


@router.get("/schools/{school_id}/enrolments.csv", tags=["agents"], response_class=Response,
            summary="CSV export of a school's enrolments (semicolons, UTF-8 with BOM: opens in French Excel)",
            responses={200: {"content": {"text/csv": {}}}, **_responses(404, 422)})
async def school_csv(school_id: str, principal: Staff, svc: Service,
                     school_year: Annotated[str | None, Query(max_length=12)] = None) -> Response:
    filename, data = await svc.export_csv(school_id, _year(svc, school_year))
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


# ---- sector map ---------------------------------------------------------------------------------


@router.post("/sector-map/validate", response_model=ImportReportView, tags=["carte scolaire"], openapi_extra=_CSV_BODY,
             responses=_responses(422), summary="Dry run: the validation report of a sector map CSV (nothing is stored)")
async def validate_map(request: Request, principal: Staff, svc: Service) -> ImportReportView:
    report = await svc.validate_map(await _csv(request))
    return ImportReportView.model_validate(report.as_dict())


@router.post("/sector-map/imports", status_code=201, response_model=ImportReportView, tags=["carte scolaire"],
             openapi_extra=_CSV_BODY, responses=_responses(422), summary="Store a sector map CSV as a new version with its report (not applied yet)")
async def import_map(request: Request, principal: Staff, svc: Service,
                     name: Annotated[str, Query(max_length=120)] = "carte.csv") -> ImportReportView:
    result = await svc.import_map(await _csv(request), domain.clean_text(name, 120), principal.account_id)
    return ImportReportView.model_validate(result)


@router.post("/sector-map/imports/{import_id}/apply", tags=["carte scolaire"], responses=_responses(404, 409),
             summary="Make an imported version the current map (one atomic switch); refused when its report has errors")
async def apply_map(import_id: str, principal: Staff, svc: Service) -> dict[str, Any]:
    return await svc.apply_map(import_id, by=principal.account_id)


@router.get("/sector-map", tags=["carte scolaire"], responses=_responses(404), summary="The current sector map")
async def current_map(principal: Staff, svc: Service) -> dict[str, Any]:
    doc = await svc.current_map()
    return {"version": doc["_id"], "created_at": doc["created_at"], "applied_at": doc.get("applied_at"),
            "source_name": doc.get("source_name"), "report": doc["report"], "segments": doc["segments"]}


@router.get("/sector-map/versions", tags=["carte scolaire"], summary="Imported map versions, newest first")
async def map_versions(principal: Staff, svc: Service) -> list[dict[str, Any]]:
    current = (await svc.store.current_map_version())
    return [{"version": d["_id"], "created_at": d["created_at"], "applied_at": d.get("applied_at"), "current": d["_id"] == current,
             "source_name": d.get("source_name"), "report": d["report"]} for d in await svc.map_versions()]


@router.get("/sector-map/lookup", tags=["carte scolaire"],
            summary="Which sector an address belongs to (with postcode and town: none outside the town)")
async def lookup(principal: Staff, svc: Service,
                 street: Annotated[str, Query(min_length=1, max_length=200)],
                 number: Annotated[str, Query(min_length=1, max_length=20)],
                 postcode: Annotated[str | None, Query(max_length=10)] = None,
                 town: Annotated[str | None, Query(max_length=120)] = None) -> dict[str, Any]:
    return await svc.lookup(street, number, postcode, town)


# ---- public -------------------------------------------------------------------------------------


@router.get("/verifications/{code}", response_model=Verification, tags=["public"],
            responses={**_responses(404), 429: {"model": Problem, "description": "Too many checks from this address (the gateway's limit)."}},
            summary="Check a printed certificat d'inscription by its code (no login: school, level, year, initials only)")
async def verify(code: Annotated[str, Path(max_length=40)], svc: Service) -> Verification:
    return Verification.model_validate(await svc.verify(code))



# ---- the decision trail and « Inscriptions à décider » (agents) ---------------------------------


class TrailEntry(BaseModel):
    id: str
    at: datetime
    agent_id: str = Field(description="The staff account that decided (names: identity's GET /staff)")
    action: str
    label: str
    enrolment_id: str | None = None
    reference: str | None = None
    school_id: str | None = None
    level: str | None = None
    school_year: str | None = None
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TrailPage(BaseModel):
    items: list[TrailEntry]
    total: int
    page: int
    pages: int


class PendingItem(EnrolmentView):
    address: dict[str, Any] | None = Field(default=None, description="The family's address as validated")
    on_map: bool = Field(description="The address is on the sector map (else an agent chooses the school)")
    kind: str = Field(description="address_unknown, no_seat, derogation or outside_town")


class PendingPage(BaseModel):
    items: list[PendingItem]
    total: int
    page: int
    pages: int


def _pages(total: int, limit: int) -> int:
    return max(1, -(-total // limit))


@router.get("/audit", response_model=TrailPage, tags=["agents"],
            summary="The decision trail: every enrolment decision, capacity change and sector-map import, newest first, who and when")
async def audit(
    principal: Staff, svc: Service,
    enrolment_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[Literal[tuple(domain.TRAIL_ACTIONS)] | None, Query()] = None,  # type: ignore[valid-type]
    reference: Annotated[str | None, Query(max_length=40, description="An enrolment's reference, e.g. INS-2027-000123")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> TrailPage:
    rows, total = await svc.trail(enrolment_id=enrolment_id, action=action, page=page, limit=limit,
                                  reference=_reference(reference))
    items = [TrailEntry(id=r["_id"], at=r["at"], agent_id=r["agent_id"], action=r["action"],
                        label=domain.TRAIL_ACTIONS.get(r["action"], r["action"]), enrolment_id=r.get("enrolment_id"),
                        reference=r.get("reference"), school_id=r.get("school_id"), level=r.get("level"),
                        school_year=domain.school_year_label(r["school_year"]) if r.get("school_year") else None,
                        reason=r.get("reason"), details=r.get("details") or {}) for r in rows]
    return TrailPage(items=items, total=total, page=page, pages=_pages(total, limit))


@router.get("/pending-decisions", response_model=PendingPage, tags=["agents"],
            summary="« Inscriptions à décider »: paged, by school, level and reason, with the family's address")
async def pending_decisions(
    principal: Staff, svc: Service,
    school_id: Annotated[str | None, Query(max_length=64)] = None,
    school_year: Annotated[str | None, Query(max_length=12)] = None,
    level: Annotated[Level | None, Query()] = None,
    reason: Annotated[Literal[domain.PENDING_FILTERS] | None, Query()] = None,  # type: ignore[valid-type]
    reference: Annotated[str | None, Query(max_length=40, description="An enrolment's reference, e.g. INS-2027-000123")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PendingPage:
    wanted = _reference(reference)
    year = domain.parse_school_year(school_year) if school_year else None
    if school_year and year is None:
        _year(svc, school_year)
    rows, total = await svc.to_decide(school_id=school_id, year=year, level=level.value if level else None, kind=reason,
                                      page=page, limit=limit, reference=wanted)
    items = [PendingItem(**EnrolmentView.of(e).model_dump(), address=e.get("address"), kind=domain.pending_kind(e),
                         on_map=bool(e.get("sector_school_id")) and not e.get("outside_town")) for e in rows]
    return PendingPage(items=items, total=total, page=page, pages=_pages(total, limit))
