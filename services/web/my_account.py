"""My account: change my password, delete my account."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
