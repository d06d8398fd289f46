"""The campaign's rules, without Kafka: folding events into records, working days, overdue files,
the figures and their masking."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from faust.windows import TumblingWindow

from services.insights import domain
from services.insights.workdays import french_calendar

PARIS = french_calendar()
NO_HOLIDAYS = domain.WorkCalendar(ZoneInfo("Europe/Paris"), lambda day: False)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


def fold(apply: Any, events: list[tuple[str, str, dict[str, Any]]], record: Any = None) -> Any:
    for name, event_id, data in events:
        record = apply(record, name, event_id, data) or record
    return record


def submitted(dossier: str, when: str, account: str = "acc-1") -> dict[str, Any]:
    return {"dossier_id": dossier, "account_id": account, "submitted_at": at(when), "document_ids": []}


def test_an_event_delivered_twice_changes_the_record_once() -> None:
    first = domain.apply_dossier(None, "HouseholdSubmitted", "ev-1", submitted("d1", "2026-09-01T08:00:00"))
    assert first is not None
    assert domain.apply_dossier(first, "HouseholdSubmitted", "ev-1", submitted("d1", "2026-09-01T08:00:00")) is None
    assert first["submissions"] == ["2026-09-01T08:00:00+00:00"]


def test_a_file_sent_back_then_resubmitted_and_validated_keeps_its_first_decision_and_its_items() -> None:
    record = fold(domain.apply_dossier, [
        ("HouseholdSubmitted", "e1", submitted("d1", "2026-09-01T08:00:00")),
        ("CorrectionRequested", "e2", {"dossier_id": "d1", "account_id": "acc-1", "requested_at": at("2026-09-02T08:00:00"),
                                       "corrections": [{"item": "doc-9", "reason": "Illisible"},
                                                       {"item": "address.postcode", "reason": "Faux"}]}),
        ("HouseholdSubmitted", "e3", {**submitted("d1", "2026-09-03T08:00:00"), "resubmission": True}),
        ("DossierValidated", "e4", {"dossier_id": "d1", "account_id": "acc-1", "validated_at": at("2026-09-04T08:00:00")}),
    ])
    assert record["status"] == "validated"
    assert [d["status"] for d in record["decisions"]] == ["corrections_requested", "validated"]
    figures = domain.corrections([record], {"doc-9": "proof_of_address"})
    assert figures["files_sent_back"] == 1 and figures["share_sent_back"] == 1.0
    assert {i["item"] for i in figures["top_items"]} == {"document:proof_of_address", "address.postcode"}
    delays = domain.decision_delays([record], PARIS)
    assert delays == [{"week": "2026-W36", "files": 1, "p50_hours": 24.0, "p90_hours": 24.0}]


def test_working_days_skip_weekends_and_french_public_holidays() -> None:
    # Friday 2026-05-01 (Labour Day) and the weekend: from Thursday 30 April to Monday 4 May, one working day.
    assert PARIS.working_days_between(at("2026-04-30T10:00:00"), at("2026-05-04T10:00:00")) == 1
    assert NO_HOLIDAYS.working_days_between(at("2026-04-30T10:00:00"), at("2026-05-04T10:00:00")) == 2
    # Paris days: 23:30 UTC on Sunday is already Monday in Paris (summer time).
    assert PARIS.local_day(at("2026-09-06T23:30:00")) == date(2026, 9, 7)


def test_a_file_is_overdue_once_it_waits_longer_than_the_threshold_and_is_announced_once_per_spell() -> None:
    record = fold(domain.apply_dossier, [("HouseholdSubmitted", "e1", submitted("d1", "2026-09-07T08:00:00"))])
    # Monday 7 → Monday 14 September: 5 working days, not longer than 5.
    assert domain.overdue_to_announce(record, at("2026-09-14T12:00:00"), 5, PARIS) is None
    overdue = domain.overdue_to_announce(record, at("2026-09-15T12:00:00"), 5, PARIS)
    assert overdue is not None and overdue.working_days_waiting == 6
    marked = domain.apply_dossier(record, "DossierOverdue", overdue.event_id, {
        "dossier_id": "d1", "waiting_since": overdue.waiting_since, "threshold_working_days": 5})
    assert domain.overdue_to_announce(marked, at("2026-09-16T12:00:00"), 5, PARIS) is None
    # The same file, threshold and spell always give the same event id (a resend is a duplicate).
    assert overdue.event_id == domain.overdue_to_announce(record, at("2026-09-20T12:00:00"), 5, PARIS).event_id
    again = domain.apply_dossier(marked, "HouseholdSubmitted", "e9", submitted("d1", "2026-09-21T08:00:00"))
    assert domain.overdue_to_announce(again, at("2026-09-29T12:00:00"), 5, PARIS) is not None


def test_a_file_waiting_for_the_family_is_never_overdue() -> None:
    record = fold(domain.apply_dossier, [
        ("HouseholdSubmitted", "e1", submitted("d1", "2026-09-01T08:00:00")),
        ("CorrectionRequested", "e2", {"dossier_id": "d1", "account_id": "a", "requested_at": at("2026-09-02T08:00:00"),
                                       "corrections": [{"item": "address", "reason": "x"}]})])
    assert domain.waiting_overdue(record, at("2026-10-30T08:00:00"), 5, PARIS) is None


def enrolment(eid: str, status: str, **more: Any) -> dict[str, Any]:
    return {"enrolment_id": eid, "account_id": "acc-" + eid, "child_id": "c-" + eid, "school_year": "2027-2028",
            "level": "CP", "sector_school_id": "elem-a", "requested_at": at("2026-09-01T08:00:00"), "status": status, **more}


def test_schools_count_requests_confirmations_waiting_and_derogations_per_level() -> None:
    confirmed_at = at("2026-09-01T09:00:00")
    granted = fold(domain.apply_enrolment, [
        ("EnrolmentRequested", "r1", enrolment("e1", "pending_agent", requested_school_id="elem-b", pending_reason="derogation")),
        ("DerogationDecided", "r2", {"enrolment_id": "e1", "account_id": "acc-e1", "requested_school_id": "elem-b",
                                     "decision": "accepted"}),
        ("EnrolmentConfirmed", "r3", {"enrolment_id": "e1", "account_id": "acc-e1", "school_id": "elem-b", "level": "CP",
                                      "school_year": "2027-2028", "confirmed_at": confirmed_at})])
    direct = fold(domain.apply_enrolment, [
        ("EnrolmentRequested", "s1", enrolment("e2", "confirmed")),
        ("EnrolmentConfirmed", "s2", {"enrolment_id": "e2", "account_id": "acc-e2", "school_id": "elem-a", "level": "CP",
                                      "school_year": "2027-2028", "confirmed_at": confirmed_at})])
    waiting = fold(domain.apply_enrolment, [("EnrolmentRequested", "t1", enrolment("e3", "pending_agent", pending_reason="no_seat"))])
    rows = {r["school_id"]: r for r in domain.schools([granted, direct, waiting])}
    assert rows["elem-b"] == {"school_year": "2027-2028", "school_id": "elem-b", "level": "CP", "requested": 1,
                                   "confirmed": 1, "waiting": 0, "derogations_asked": 1, "derogations_granted": 1,
                                   "school_name": None, "capacity": None}
    assert (rows["elem-a"]["requested"], rows["elem-a"]["confirmed"], rows["elem-a"]["waiting"]) == (2, 1, 1)
    # The waiting one's family erased its account: enrolment withdrew it (no event), so do the figures.
    after_erasure = {r["school_id"]: r for r in domain.schools([granted, direct, waiting], {"acc-e3"})}
    assert (after_erasure["elem-a"]["requested"], after_erasure["elem-a"]["waiting"]) == (1, 0)


def capacity_changed(level: str, capacity: int, when: str, year: str | None = None, school: str = "elem-a") -> dict[str, Any]:
    return {"school_id": school, "school_name": "École " + school, "level": level, "school_year": year,
            "capacity": capacity, "previous_capacity": None, "changed_at": at(when), "changed_by": None}


def test_a_years_own_capacity_overrides_the_schools_default_and_other_years_keep_the_default() -> None:
    school = fold(domain.apply_school, [("SchoolCapacityChanged", "k1", capacity_changed("CP", 50, "2026-09-01T08:00:00")),
                                        ("SchoolCapacityChanged", "k2", capacity_changed("CP", 56, "2026-09-02T08:00:00", "2027-2028"))])
    assert domain.capacity(school, "2027-2028", "CP") == 56
    assert domain.capacity(school, "2028-2029", "CP") == 50
    assert domain.capacity(school, "2027-2028", "CE1") is None


def test_a_capacity_change_older_than_the_one_applied_is_not_applied_and_a_duplicate_changes_nothing() -> None:
    newer = capacity_changed("CP", 60, "2026-09-03T08:00:00", "2027-2028")
    school = domain.apply_school(None, "SchoolCapacityChanged", "k2", newer)
    # The school's first announcement (relayed from another document) arrives after the agent's change.
    school = domain.apply_school(school, "SchoolCapacityChanged", "k1", capacity_changed("CP", 56, "2026-09-01T08:00:00", "2027-2028"))
    assert domain.capacity(school, "2027-2028", "CP") == 60
    assert domain.apply_school(school, "SchoolCapacityChanged", "k2", newer) is None


def test_every_level_with_a_capacity_is_listed_against_its_counts_even_when_nobody_asked_for_it() -> None:
    school = fold(domain.apply_school, [("SchoolCapacityChanged", "k1", capacity_changed("CP", 50, "2026-09-01T08:00:00")),
                                        ("SchoolCapacityChanged", "k2", capacity_changed("CE1", 30, "2026-09-01T08:00:00"))])
    asked = fold(domain.apply_enrolment, [("EnrolmentRequested", "r1", enrolment("e1", "pending_agent", pending_reason="no_seat"))])
    rows = {(r["school_year"], r["level"]): r for r in domain.schools([asked], capacities=[school])}
    assert set(rows) == {("2027-2028", "CP"), ("2027-2028", "CE1")}
    assert (rows[("2027-2028", "CP")]["capacity"], rows[("2027-2028", "CP")]["requested"]) == (50, 1)
    assert (rows[("2027-2028", "CE1")]["capacity"], rows[("2027-2028", "CE1")]["requested"]) == (30, 0)
    assert rows[("2027-2028", "CE1")]["school_name"] == "École elem-a"


def test_the_funnel_counts_each_family_at_its_furthest_step_and_leaves_staff_out() -> None:
    accounts = [
        fold(domain.apply_account, [("AccountRegistered", "a1", {"account_id": "f1", "registered_at": at("2026-09-01T08:00:00")}),
                                    ("AccountActivated", "a2", {"account_id": "f1", "activated_at": at("2026-09-01T08:05:00"), "role": "family"})]),
        fold(domain.apply_account, [("AccountRegistered", "b1", {"account_id": "f2", "registered_at": at("2026-09-02T08:00:00")})]),
        fold(domain.apply_account, [("AccountActivated", "c1", {"account_id": "agent", "activated_at": at("2026-09-01T08:00:00"), "role": "agent"})]),
    ]
    documents = [domain.apply_document(None, "DocumentUploaded", "d1", {"document_id": "doc", "account_id": "f1",
                                                                        "kind": "proof_of_address", "uploaded_at": at("2026-09-01T09:00:00")})]
    steps = domain.family_steps(accounts, documents, [], [])
    figures = domain.funnel(steps, PARIS)
    assert figures["reached"] == {"registered": 2, "activated": 1, "file_started": 1, "submitted": 0, "validated": 0, "enrolled": 0}
    assert figures["stopped_at"]["file_started"] == 1 and figures["stopped_at"]["registered"] == 1
    assert [d["day"] for d in figures["per_day"]] == ["2026-09-01", "2026-09-02"]


def test_open_figures_publish_counts_below_five_as_less_than_five() -> None:
    figures = domain.campaign_figures("ville", at("2026-09-01T08:00:00"),
                                      {"submitted": 4, "validated": 5, "rejected": 0, "corrections_requested": 12},
                                      3, {"registered": 40}, [])
    assert figures["files_by_status"] == {"submitted": "<5", "corrections_requested": 12, "validated": 5, "rejected": "<5"}
    assert figures["overdue_files"] == "<5" and figures["funnel"]["registered"] == 40 and figures["funnel"]["enrolled"] == "<5"


def window_of(moment: str) -> tuple[float, float]:
    """The one-day tumbling window faust itself puts that moment in."""
    [window] = TumblingWindow(86400).ranges(domain.window_timestamp(at(moment), PARIS.zone))
    return window


def test_tumbling_days_are_paris_days_across_both_daylight_saving_changes() -> None:
    # 22:30 UTC on 1 September is 00:30 on the 2nd in Paris (summer time, UTC+2).
    assert domain.window_day(window_of("2026-09-01T22:30:00")[0]) == "2026-09-02"
    assert domain.window_day(window_of("2026-09-01T21:59:00")[0]) == "2026-09-01"
    # Winter time (UTC+1): 23:00 UTC on 31 December is already New Year's Day.
    assert domain.window_day(window_of("2026-12-31T23:00:00")[0]) == "2027-01-01"
    # 29 March 2026 has 23 hours in Paris, 25 October 2026 has 25: each is one window.
    assert window_of("2026-03-28T23:00:00") == window_of("2026-03-29T21:59:00")
    assert window_of("2026-10-24T22:00:00") == window_of("2026-10-25T22:59:00")
    assert window_of("2026-10-25T23:00:00") != window_of("2026-10-25T22:59:00")


def test_submissions_resubmissions_and_decisions_are_counted_and_nothing_else() -> None:
    assert domain.day_count("HouseholdSubmitted", submitted("d1", "2026-09-01T22:30:00"))[0] == "submitted"
    for name, field in (("CorrectionRequested", "requested_at"), ("DossierValidated", "validated_at"),
                        ("DossierRejected", "rejected_at")):
        assert domain.day_count(name, {field: at("2026-09-02T08:00:00")}) == ("decided", at("2026-09-02T08:00:00"))
    assert domain.day_count("DossierOverdue", {"waiting_since": at("2026-09-02T08:00:00")}) is None


def test_the_per_day_counts_sum_the_windows_of_every_source_partition() -> None:
    windows = [(("submitted:0", window_of("2026-09-01T22:30:00")), 2), (("submitted:2", window_of("2026-09-02T08:00:00")), 3),
               (("decided:1", window_of("2026-09-02T09:00:00")), 1), (("submitted:1", window_of("2026-09-01T08:00:00")), 4)]
    assert domain.per_day(windows) == [{"day": "2026-09-01", "submitted": 4, "decided": 0},
                                       {"day": "2026-09-02", "submitted": 5, "decided": 1}]
