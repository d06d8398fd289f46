"""The file's short reference (or the enrolment's) is printed in every email that carries one, so
the family can quote it on the phone; an event without one (older) prints none."""

from __future__ import annotations

from services.notifier.tests.test_family_emails import EVENTS, render


def test_a_dossier_email_prints_the_files_reference_in_text_and_html() -> None:
    for name in ("dossier_submitted", "corrections_requested", "dossier_validated", "dossier_rejected"):
        _, mail = render(EVENTS[name].model_copy(update={"reference": "MSL-2027-000123"}))
        assert "Référence à rappeler : MSL-2027-000123" in mail.text, name
        assert "Référence à rappeler : <strong>MSL-2027-000123</strong>" in mail.html, name


def test_an_event_without_a_reference_prints_none() -> None:
    _, mail = render(EVENTS["dossier_submitted"])
    assert "Référence à rappeler" not in mail.text and "Référence à rappeler" not in mail.html


def test_every_enrolment_email_prints_the_enrolments_reference() -> None:
    for name in ("enrolment_confirmed", "enrolment_refused", "derogation_accepted", "derogation_refused"):
        _, mail = render(EVENTS[name].model_copy(update={"reference": "INS-2027-000123"}))
        assert "Référence à rappeler : INS-2027-000123" in mail.text, name
        assert "Référence à rappeler : <strong>INS-2027-000123</strong>" in mail.html, name
