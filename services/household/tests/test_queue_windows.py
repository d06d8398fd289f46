"""The queue's listing windows and its ledger of totals, without a database: the windows cover
the asked range once, in order, whatever the floor says; moving a file's entry adjusts each count
once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.household.store import count_delta, count_keys, first_window, just_after, windows

NOW = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def covered(ranges: list[tuple[datetime | None, datetime | None]], moments: list[datetime]) -> list[int]:
    """How many ranges hold each moment (start inclusive, end exclusive, None open)."""
    return [sum(1 for start, end in ranges if (start is None or start <= m) and (end is None or m < end)) for m in moments]


MOMENTS = [NOW - DAY * d for d in (-3, 0, 0.5, 1, 2, 7, 40, 200, 900, 5000)]


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("floor", [None, NOW - DAY * 300, NOW - DAY * 2, NOW + DAY])
def test_the_windows_hold_every_moment_once_whatever_the_floor(newest_first: bool, floor: datetime | None) -> None:
    ranges = list(windows(lower=None, upper=None, floor=floor, now=NOW, first=DAY, newest_first=newest_first))
    assert covered(ranges, MOMENTS) == [1] * len(MOMENTS)


@pytest.mark.parametrize("newest_first", [False, True])
def test_bounded_windows_stay_inside_their_bounds_and_come_in_order(newest_first: bool) -> None:
    lower, upper = NOW - DAY * 100, NOW - DAY * 10
    ranges = list(windows(lower=lower, upper=upper, floor=NOW - DAY * 365, now=NOW, first=DAY, newest_first=newest_first))
    assert covered(ranges, MOMENTS) == [1 if lower <= m < upper else 0 for m in MOMENTS]
    starts = [start or lower for start, _ in ranges]
    assert starts == sorted(starts, reverse=newest_first)


def test_each_window_doubles_from_the_end_the_page_starts_at() -> None:
    ranges = list(windows(lower=None, upper=None, floor=NOW - DAY * 100, now=NOW, first=DAY, newest_first=True))
    assert ranges[:3] == [(NOW - DAY, None), (NOW - DAY * 3, NOW - DAY), (NOW - DAY * 7, NOW - DAY * 3)]
    assert ranges[-1][0] is None  # the last one goes down to the bottom: a floor that errs high loses nothing


def test_the_first_window_follows_the_density_of_submissions() -> None:
    assert first_window(1000, NOW - DAY * 100, NOW, 20) == DAY * 4  # 10 a day: 40 files
    assert first_window(0, None, NOW, 20) == DAY
    assert first_window(10**6, NOW - DAY, NOW, 20) == timedelta(minutes=10)


def test_a_file_counts_under_its_status_and_each_school_once_and_drafts_not_at_all() -> None:
    assert count_keys("submitted", ["b", "a", "a"]) == ["submitted", "submitted:a", "submitted:b"]
    assert count_keys("draft", ["a"]) == [] and count_keys("erased", []) == []


def test_moving_an_entry_adds_one_where_it_goes_and_takes_one_where_it_was() -> None:
    old = {"s": "submitted", "k": ["a"], "v": 3}
    assert count_delta(None, old) == {"counts.submitted": 1, "counts.submitted:a": 1}
    assert count_delta(old, {"s": "validated", "k": ["a"], "v": 4}) == {
        "counts.submitted": -1, "counts.submitted:a": -1, "counts.validated": 1, "counts.validated:a": 1}
    assert count_delta(old, {"s": "submitted", "k": ["a"], "v": 4}) == {}  # a save that changes nothing counted
    assert count_delta(old, {"s": "submitted", "k": ["b"], "v": 5}) == {"counts.submitted:a": -1, "counts.submitted:b": 1}


def test_at_or_before_a_moment_is_before_the_next_millisecond() -> None:
    assert just_after(datetime(2027, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)) == datetime(2027, 1, 1, 8, 0, 0, 124000, tzinfo=UTC)
