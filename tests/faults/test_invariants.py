"""The fault run's invariant checks (bench/faults.py) on hand-made outcomes: each one passes on a
clean run and breaks, naming the culprit, on the fault it is there to catch. No server needed."""

from __future__ import annotations

from bench.faults import Outage, failures_by_outage, lost_journeys, one_email_per_transition, seen_by_clients
from bench.journey import ACTIVATION, CONFIRMED, SUBMITTED, VALIDATED, WELCOME, Journey, Round
from bench.journey_client import Attempt, Recorder

T0 = 1_800_000_000.0


def finished_journey(index: int = 0) -> Journey:
    j = Journey(index, f"famille.{index}@example.org", account_id=f"acc-{index}", finished=T0 + 60)
    for subject in (ACTIVATION, WELCOME, SUBMITTED, VALIDATED, CONFIRMED, CONFIRMED):
        j.transitions[subject].append(T0)
    return j


def message(subject: str) -> dict[str, str]:
    return {"Subject": subject, "Created": "2027-01-15T08:00:00.000Z"}


def round_with(journeys: list[Journey], mailbox: dict[str, list[dict[str, str]]]) -> Round:
    return Round(len(journeys), 1, journeys, Recorder(), 60.0, {}, mailbox, 50.0)


def every_email_once(j: Journey) -> list[dict[str, str]]:
    return [message(s) for s in (ACTIVATION, WELCOME, SUBMITTED, VALIDATED, CONFIRMED, CONFIRMED)]


def test_one_email_per_transition_holds_when_each_transition_has_its_email() -> None:
    j = finished_journey()
    check = one_email_per_transition(round_with([j], {j.email: every_email_once(j)}))
    assert check.ok, check.details


def test_a_second_copy_of_an_email_is_reported_as_a_duplicate_for_that_recipient_and_subject() -> None:
    j = finished_journey()
    check = one_email_per_transition(round_with([j], {j.email: [*every_email_once(j), message(VALIDATED)]}))
    assert not check.ok
    assert check.details[0].startswith("duplicates: 1, losses: 0")
    assert any(j.email in line and VALIDATED in line and "×2" in line for line in check.details)


def test_a_missing_confirmation_email_is_reported_as_a_loss() -> None:
    j = finished_journey()
    mails = every_email_once(j)
    mails.remove(message(CONFIRMED))
    check = one_email_per_transition(round_with([j], {j.email: mails}))
    assert not check.ok and check.details[0].startswith("duplicates: 0, losses: 1")


def test_an_email_for_no_transition_of_the_journey_is_listed_without_breaking_the_invariant() -> None:
    j = finished_journey()
    attempt = "Une inscription a été tentée avec votre adresse email"
    check = one_email_per_transition(round_with([j], {j.email: [*every_email_once(j), message(attempt)]}))
    assert check.ok and any(attempt in line for line in check.details)


def test_a_journey_that_gave_up_is_a_lost_journey_with_its_reason() -> None:
    ok, lost = finished_journey(0), Journey(1, "famille.1@example.org", error="GaveUp: POST /api/documents/documents")
    check = lost_journeys([ok, lost])
    assert not check.ok and check.details == ["famille.1@example.org: GaveUp: POST /api/documents/documents"]
    assert lost_journeys([ok]).ok


def test_a_5xx_during_an_outage_is_attributed_to_it_and_one_outside_any_outage_breaks_the_invariant() -> None:
    kafka = Outage("kafka", killed_at=T0, started_at=T0 + 10, ready_at=T0 + 12, start_ok=True)
    during = Attempt("POST /api/household/dossier/submit", 503, 0.01, T0 + 5)
    check = failures_by_outage([during], [kafka])
    assert check.ok and check.details == ["1 × HTTP 503 on POST /api/household/dossier/submit during the kafka outage"]
    later = Attempt("GET /api/enrolment/enrolments/eligible", 500, 0.01, T0 + 300)
    check = failures_by_outage([during, later], [kafka])
    assert not check.ok and "1 × HTTP 500 on GET /api/enrolment/enrolments/eligible during NO outage" in check.details


def test_what_clients_saw_of_an_outage_runs_from_the_first_failed_request_to_the_last_failed_answer() -> None:
    leader = Outage("kafka-2", killed_at=T0, started_at=T0 + 10, ready_at=T0 + 12, start_ok=True)
    replica = Outage("household", killed_at=T0 + 100, started_at=T0 + 103, ready_at=T0 + 104, start_ok=True)
    failures = [
        Attempt("POST /api/household/dossier/submit", 503, 0.5, T0 + 2.0),
        Attempt("POST /api/household/dossier/submit", 503, 0.1, T0 + 6.0),
        Attempt("POST /api/household/dossier", 502, 0.0, T0 + 101.0),
    ]
    assert seen_by_clients(failures, [leader, replica]) == {0: (2, 4.5), 1: (1, 0.0)}


def test_a_second_activation_email_after_a_retried_registration_is_explained_not_a_duplicate() -> None:
    j = finished_journey()
    j.retried_subjects.add(ACTIVATION)
    check = one_email_per_transition(round_with([j], {j.email: [*every_email_once(j), message(ACTIVATION)]}))
    assert check.ok and any("retried request" in line for line in check.details)
    check = one_email_per_transition(round_with([j], {j.email: [*every_email_once(j), message(ACTIVATION), message(ACTIVATION)]}))
    assert not check.ok


def test_a_5xx_in_overlapping_windows_goes_to_the_latest_outage() -> None:
    household = Outage("household", killed_at=T0, started_at=T0 + 4, ready_at=T0 + 5, start_ok=True)
    documents = Outage("documents", killed_at=T0 + 13, started_at=T0 + 19, ready_at=T0 + 20, start_ok=True)
    upload = Attempt("POST /api/documents/documents", 502, 0.01, T0 + 15)  # in household's aftermath too
    check = failures_by_outage([upload], [household, documents])
    assert check.details == ["1 × HTTP 502 on POST /api/documents/documents during the documents outage"]
