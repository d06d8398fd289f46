"""School enrolment pages (Inscription scolaire): children, level, sector school, out-of-sector request, certificate."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
