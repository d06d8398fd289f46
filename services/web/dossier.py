"""Family file pages: declare my household (Déclarer mon entourage), supporting documents, submit, timeline."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
