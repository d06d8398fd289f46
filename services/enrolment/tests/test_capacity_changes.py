"""Which SchoolCapacityChanged events a school's capacities cause (domain.capacity_changes), without I/O."""

from services.enrolment.domain import CapacityChange, capacity_changes

SCHOOL = {"capacity": {"PS": 56, "MS": 50}, "capacities": {"2027": {"PS": 60}}}


def test_a_school_announced_for_the_first_time_announces_every_default_and_every_year_of_its_own() -> None:
    assert capacity_changes(None, SCHOOL) == [
        CapacityChange("MS", None, 50, None), CapacityChange("PS", None, 56, None), CapacityChange("PS", 2027, 60, None)]


def test_writing_the_same_capacities_again_announces_nothing() -> None:
    assert capacity_changes(SCHOOL, {**SCHOOL, "name": "renamed"}) == []


def test_only_the_levels_whose_capacity_changed_are_announced_with_their_previous_capacity() -> None:
    after = {"capacity": {"PS": 56, "MS": 45, "GS": 30}, "capacities": {"2027": {"PS": 60}, "2028": {"MS": 40}}}
    assert capacity_changes(SCHOOL, after) == [
        CapacityChange("GS", None, 30, None), CapacityChange("MS", None, 45, 50), CapacityChange("MS", 2028, 40, None)]


def test_a_capacity_lowered_to_zero_is_a_change() -> None:
    assert capacity_changes(SCHOOL, {**SCHOOL, "capacity": {"PS": 0, "MS": 50}}) == [CapacityChange("PS", None, 0, 56)]
