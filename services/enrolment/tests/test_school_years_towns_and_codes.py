"""Which school years are open, whether an address is in the town, and the certificate's
verification code (domain rules, no I/O)."""

from datetime import date

import pytest

from services.enrolment import domain
from services.enrolment.domain import Level

UNTIL, OPENS = (6, 30), (9, 1)  # the defaults: the year in progress until 30 June, the next rentrée from 1 September


@pytest.mark.parametrize(("today", "years"), [
    (date(2026, 12, 7), [2026, 2027]),   # mid-year: the year in progress and the next rentrée
    (date(2026, 9, 1), [2026, 2027]),
    (date(2027, 6, 30), [2026, 2027]),   # the last day the year in progress takes enrolments
    (date(2027, 7, 1), [2027]),          # summer: the coming rentrée only
    (date(2027, 8, 31), [2027]),
])
def test_a_family_may_enrol_for_the_year_in_progress_and_the_next_rentree_while_both_make_sense(today: date, years: list[int]) -> None:
    assert domain.open_school_years(today, current_until=UNTIL, next_opens=OPENS) == years


def test_the_next_rentree_opens_on_its_campaign_date_and_some_year_is_always_open() -> None:
    assert domain.open_school_years(date(2026, 12, 7), current_until=UNTIL, next_opens=(1, 15)) == [2026]
    assert domain.open_school_years(date(2027, 1, 15), current_until=UNTIL, next_opens=(1, 15)) == [2026, 2027]
    # a gap between the two campaigns still offers the next rentrée
    assert domain.open_school_years(date(2027, 6, 10), current_until=(5, 31), next_opens=(7, 1)) == [2027]


def test_a_child_born_in_2016_is_in_cm2_this_year_and_told_about_the_college_for_the_next() -> None:
    assert domain.level_for(date(2016, 5, 1), 2026, tps_offered=False).level is Level.CM2
    assert domain.level_for(date(2016, 5, 1), 2027, tps_offered=False).level is None


def test_the_year_enrolled_for_reads_as_the_year_in_progress_or_the_next_rentree() -> None:
    assert domain.school_year_title(2026, date(2026, 12, 7)) == "année scolaire en cours 2026-2027"
    assert domain.school_year_title(2027, date(2026, 12, 7)) == "rentrée 2027 (année scolaire 2027-2028)"


@pytest.mark.parametrize(("postcode", "town", "inside"), [
    ("45190", "Montclair-sur-Loire", True),
    (" 45 190", "MONTCLAIR SUR LOIRE", True),
    ("75011", "Paris", False),
    ("45190", "Beaugency", False),            # another commune with the same postcode
    ("75011", "Montclair-sur-Loire", False),  # the town's name with another postcode
    ("", "", False),
])
def test_an_address_is_in_the_town_only_with_its_postcode_and_its_name(postcode: str, town: str, inside: bool) -> None:
    assert domain.in_town(postcode, town, town_name="Montclair-sur-Loire", town_postcodes=["45190"]) is inside


def test_a_verification_code_is_random_and_read_back_whatever_the_case_spaces_or_look_alike_letters() -> None:
    codes = {domain.new_verification_code() for _ in range(200)}
    assert len(codes) == 200
    code = next(iter(codes))
    assert len(code) == 14 and code.count("-") == 2
    assert domain.normalise_verification_code(code.lower().replace("-", " ")) == code
    assert domain.normalise_verification_code("7kqd-m2xf-9pha") == "7KQD-M2XF-9PHA"
    assert domain.normalise_verification_code("OOOO-IIII-LLLL") == "0000-1111-1111"
    for bad in ("", "7KQD-M2XF", "7KQD-M2XF-9PHA-0000", "7KQD-M2XF-9PH!", "../../etc/passwd"):
        assert domain.normalise_verification_code(bad) is None


def test_the_public_page_shows_only_the_childs_initials() -> None:
    assert domain.initials("Léa", "Durand") == "L. D."
    assert domain.initials("élise", "de la Tour") == "É. D."
    assert domain.initials(None, None) == ""
