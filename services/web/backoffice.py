"""Agents' back-office: queue of files, file review with inline viewer, decisions, enrolments vs capacity, out-of-sector decisions, sector-map import."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
