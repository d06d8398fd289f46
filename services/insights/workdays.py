"""The French public holidays, from the `holidays` library (the one module that imports it)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from services.insights.domain import WorkCalendar


@lru_cache(maxsize=64)
def _france(year: int) -> frozenset[date]:
    # Metropolitan France: Alsace-Moselle's two extra days are not the town's.
    return frozenset(holidays.France(years=year).keys())


def is_french_holiday(day: date) -> bool:
    return day in _france(day.year)


def french_calendar(zone: str = "Europe/Paris") -> WorkCalendar:
    return WorkCalendar(ZoneInfo(zone), is_french_holiday)
