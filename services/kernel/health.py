"""Liveness and readiness: `/healthz` says the process is up, `/readyz` names what is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ReadinessCheck:
    """A dependency the service needs to serve requests: ``probe`` raises when it is unreachable."""

    name: str
    probe: Callable[[], Awaitable[None]]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    down: list[str]


async def _run(check: ReadinessCheck) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(check.probe(), CHECK_TIMEOUT_S)
        return check.name, None
    except Exception as exc:  # any failure means "not reachable"; the text helps the operator
        return check.name, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__


async def evaluate(checks: Sequence[ReadinessCheck]) -> Readiness:
    results = await asyncio.gather(*(_run(c) for c in checks))
    down = [name for name, error in results if error is not None]
    return Readiness(
        status="unavailable" if down else "ready",
        checks={name: error or "ok" for name, error in results},
        down=down,
    )


def health_router(checks: Callable[[Request], Sequence[ReadinessCheck]]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="The process is alive")
    async def healthz() -> Health:
        return Health(status="alive")

    @router.get(
        "/readyz",
        response_model=Readiness,
        summary="Every dependency of this service is reachable",
        responses={503: {"model": Readiness, "description": "A dependency is down; `down` names it"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        readiness = await evaluate(checks(request))
        return JSONResponse(readiness.model_dump(), status_code=503 if readiness.down else 200)

    return router
