"""HTTP routes of the insights service (agents only): the campaign's live tables, read from the faust
tables of this process. Thin: the figures are computed by the domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.insights import domain
from services.insights.consumers import InsightsStreams
from services.kernel.auth import Principal, require_role

router = APIRouter(tags=["tableau de bord"])
Agent = Annotated[Principal, Depends(require_role("agent", "admin"))]


def _streams(request: Request) -> InsightsStreams:
    return request.app.state.streams  # type: ignore[no-any-return]


Streams = Annotated[InsightsStreams, Depends(_streams)]


class DayCounts(BaseModel):
    day: str = Field(description="Paris day, YYYY-MM-DD")
    submitted: int = Field(description="Submissions that day (resubmissions included)")
    decided: int = Field(description="Decisions that day (corrections requested, validated, rejected)")


class WeekDelays(BaseModel):
    week: str = Field(description="ISO week of the first decision (Paris), e.g. 2026-W49")
    files: int
    p50_hours: float
    p90_hours: float


class Backlog(BaseModel):
    status: str
    waiting_for: str = Field(description="agent or family")
    files: int
    oldest_waiting_since: datetime | None
    oldest_age_hours: float | None


class CorrectionItem(BaseModel):
    item: str = Field(description="document:<kind>, or the field path the agent named")
    count: int


class Corrections(BaseModel):
    files_submitted: int
    files_sent_back: int
    share_sent_back: float
    top_items: list[CorrectionItem]


class Files(BaseModel):
    """The review of families' files."""

    generated_at: datetime
    by_status: dict[str, int]
    per_day: list[DayCounts]
    decision_delays: list[WeekDelays]
    backlog: list[Backlog]
    corrections: Corrections
    overdue: int = Field(description="Files waiting for an agent longer than the threshold of working days")
    overdue_threshold_working_days: int


class SchoolLevel(BaseModel):
    school_year: str
    school_id: str
    level: str
    requested: int
    confirmed: int
    waiting: int
    derogations_asked: int
    derogations_granted: int
    school_name: str | None = Field(description="From enrolment's SchoolCapacityChanged; null before the school was announced")
    capacity: int | None = Field(description="Seats of the level that school year (the year's own, else the school's default); null when not announced")


class Schools(BaseModel):
    generated_at: datetime
    rows: list[SchoolLevel]


class FunnelDay(BaseModel):
    day: str
    registered: int
    activated: int
    file_started: int
    submitted: int
    validated: int
    enrolled: int


class Funnel(BaseModel):
    generated_at: datetime
    reached: dict[str, int] = Field(description="Families that reached each step (file_started: a first document uploaded)")
    stopped_at: dict[str, int] = Field(description="Families whose furthest step is this one")
    per_day: list[FunnelDay]


class OverdueFile(BaseModel):
    dossier_id: str
    waiting_since: datetime
    working_days_waiting: int


class OverdueFiles(BaseModel):
    threshold_working_days: int
    files: list[OverdueFile]


@router.get("/files", response_model=Files, summary="Files per status, per day, decision delays, backlog, corrections")
async def files(agent: Agent, streams: Streams) -> Files:
    now = datetime.now(UTC)
    dossiers = streams.records("dossiers")
    return Files(
        generated_at=now,
        by_status=domain.files_by_status(dossiers),
        per_day=[DayCounts(**d) for d in streams.per_day()],
        decision_delays=[WeekDelays(**w) for w in domain.decision_delays(dossiers, streams.calendar)],
        backlog=[Backlog(**b) for b in domain.backlog(dossiers, now)],
        corrections=Corrections(**domain.corrections(dossiers, streams.document_kinds())),
        overdue=len(streams.overdue_files(now)),
        overdue_threshold_working_days=streams.settings.overdue_working_days,
    )


@router.get("/schools", response_model=Schools,
            summary="Per school year, school and level: requested, confirmed, waiting, dérogations, against capacity")
async def schools(agent: Agent, streams: Streams) -> Schools:
    return Schools(generated_at=datetime.now(UTC),
                   rows=[SchoolLevel(**r) for r in domain.schools(
                       streams.records("enrolments"), domain.deleted_accounts(streams.records("accounts")),
                       streams.records("schools"))])


@router.get("/funnel", response_model=Funnel, summary="Families per step: registered → activated → file started → submitted → validated → enrolled")
async def funnel(agent: Agent, streams: Streams) -> Funnel:
    steps = domain.family_steps(streams.records("accounts"), streams.records("documents"),
                                streams.records("dossiers"), streams.records("enrolments"))
    figures = domain.funnel(steps, streams.calendar)
    return Funnel(generated_at=datetime.now(UTC), reached=figures["reached"], stopped_at=figures["stopped_at"],
                  per_day=[FunnelDay(**d) for d in figures["per_day"]])


@router.get("/overdue", response_model=OverdueFiles, summary="Files waiting for an agent longer than the threshold (oldest first)")
async def overdue(agent: Agent, streams: Streams) -> OverdueFiles:
    return OverdueFiles(threshold_working_days=streams.settings.overdue_working_days,
                        files=[OverdueFile(dossier_id=o.dossier_id, waiting_since=o.waiting_since,
                                           working_days_waiting=o.working_days_waiting)
                               for o in streams.overdue_files()])
