"""Which enrolments sharing an older reference get a new one (no I/O)."""

from datetime import datetime

from services.enrolment import domain


def test_the_oldest_enrolment_keeps_a_shared_reference_and_the_others_get_new_ones() -> None:
    sharing = [
        {"_id": "c", "reference": "INS-2027-3F2B8C1D", "created_at": datetime(2026, 12, 3)},
        {"_id": "a", "reference": "INS-2027-3F2B8C1D", "created_at": datetime(2026, 12, 1)},
        {"_id": "b", "reference": "INS-2027-3F2B8C1D", "created_at": datetime(2026, 12, 2)},
    ]
    assert [e["_id"] for e in domain.references_to_renumber(sharing)] == ["b", "c"]


def test_without_a_creation_date_an_enrolment_yields_to_dated_ones_and_ids_break_ties() -> None:
    at = datetime(2026, 12, 1)
    sharing = [{"_id": "z", "created_at": None}, {"_id": "y", "created_at": at}, {"_id": "x", "created_at": at}]
    assert [e["_id"] for e in domain.references_to_renumber(sharing)] == ["y", "z"]
    assert domain.references_to_renumber([{"_id": "alone", "created_at": at}]) == []
