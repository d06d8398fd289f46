from services.web.dates import french_date, french_datetime, numeric_date, numeric_datetime


def test_instants_are_shown_in_paris_time_in_summer_and_in_winter() -> None:
    assert french_datetime("2026-12-31T23:30:00+00:00") == "1er janvier 2027 à 0 h 30"
    assert french_datetime("2026-08-15T06:00:00Z") == "15 août 2026 à 8 h 00"
    assert numeric_datetime("2027-03-14T08:05:00Z") == "14/03/2027 à 9 h 05"
    assert numeric_datetime("2027-07-14T08:05:00") == "14/07/2027 à 10 h 05"  # naive: stored UTC


def test_the_first_of_the_month_is_written_1er() -> None:
    assert french_date("2019-03-01") == "1er mars 2019"
    assert french_date("2019-03-02") == "2 mars 2019"
    assert numeric_date("2019-03-01") == "01/03/2019"


def test_an_unreadable_or_missing_value_shows_nothing() -> None:
    for value in (None, "", "pas une date", "2019-13-40"):
        assert french_date(value) == "" and french_datetime(value) == ""
        assert numeric_date(value) == "" and numeric_datetime(value) == ""
