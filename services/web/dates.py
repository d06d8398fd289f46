"""Dates and instants as the town writes them. The services store UTC; pages show Paris time.

Two styles: the families' pages write dates out (« 1er mars 2027 à 9 h 05 »), the back-office's
tables use the compact numeric form (« 01/03/2027 à 9 h 05 »). Times are written the French way,
as the emails write them (« 9 h 05 »). Unreadable values give "".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

TOWN_ZONE = ZoneInfo("Europe/Paris")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _instant(value: Any) -> datetime | None:
    """In the town's time; a naive value is taken as UTC (what the services store)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TOWN_ZONE)


def french_date(value: Any) -> str:
    """« 1er mars 2027 »."""
    day = _day(value) if value else None
    if day is None:
        return ""
    return f"{'1er' if day.day == 1 else day.day} {MONTHS[day.month - 1]} {day.year}"


def french_time(moment: datetime) -> str:
    """« 8 h 05 » (French typography, as in the emails)."""
    return f"{moment.hour} h {moment.minute:02d}"


def french_datetime(value: Any) -> str:
    """« 26 novembre 2026 à 8 h 05 », in Paris time."""
    moment = _instant(value) if value else None
    return f"{french_date(moment.date())} à {french_time(moment)}" if moment else ""


def numeric_date(value: Any) -> str:
    """« 14/03/2027 »."""
    day = _day(value) if value else None
    return day.strftime("%d/%m/%Y") if day else ""


def numeric_datetime(value: Any) -> str:
    """« 14/03/2027 à 9 h 05 », in Paris time."""
    moment = _instant(value) if value else None
    return f"{moment:%d/%m/%Y} à {french_time(moment)}" if moment else ""
