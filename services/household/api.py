"""HTTP routes of the household service. Thin: validate input, call the domain and the store."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
