"""References, search words and assignment leases of the agents' back-office (no I/O)."""

from datetime import UTC, datetime, timedelta

import pytest

from services.household import domain
from services.household.domain import TransitionRefused

NOW = datetime(2027, 3, 14, 9, 0, tzinfo=UTC)


def test_a_reference_has_the_town_code_the_year_and_six_digits() -> None:
    assert domain.reference("MSL", 2027, 123) == "MSL-2027-000123"
    assert domain.reference("MSL", 2027, 1_234_567) == "MSL-2027-1234567"


def test_a_file_is_found_by_its_reference_names_without_accents_and_emails() -> None:
    dossier = {
        "reference": "MSL-2027-000123",
        "guardians": [{"first_name": "Hélène", "last_name": "Le Goff-Martin", "email": "Helene@Example.fr"}],
        "children": [{"first_name": "Léa", "last_name": "Le Goff-Martin"}],
    }
    terms = set(domain.search_terms(dossier, "compte@example.fr"))
    assert {"msl-2027-000123", "000123", "123"} <= terms
    assert {"helene", "lea", "le goff-martin", "le", "goff", "martin"} <= terms
    assert {"compte@example.fr", "helene@example.fr"} <= terms


def test_a_search_keeps_an_email_or_a_reference_whole_and_splits_names() -> None:
    assert domain.query_terms("  MSL-2027-000123 ") == ["msl-2027-000123"]
    assert domain.query_terms("Helene@Example.fr") == ["helene@example.fr"]
    assert domain.query_terms("Léa MARTIN") == ["lea", "martin"]
    assert domain.query_terms("   ") == []


def test_every_word_a_search_splits_into_is_one_the_file_was_indexed_by() -> None:
    dossier = {"children": [{"first_name": "Jean-Édouard", "last_name": "D'Arcy"}], "guardians": []}
    terms = set(domain.search_terms(dossier, None))
    assert set(domain.query_terms("jean-edouard d'arcy")) <= terms


def test_a_lease_belongs_to_its_agent_until_it_expires() -> None:
    lease = {"agent_id": "marie", "until": NOW + timedelta(minutes=5)}
    assert domain.lease_holder(lease, NOW) == "marie"
    assert domain.lease_holder(lease, NOW + timedelta(minutes=6)) is None
    assert domain.lease_holder(None, NOW) is None
    # The database hands datetimes back without their zone: they are UTC.
    assert domain.lease_holder({"agent_id": "marie", "until": datetime(2027, 3, 14, 9, 5)}, NOW) == "marie"


def test_another_agent_may_neither_take_nor_decide_a_file_someone_holds() -> None:
    lease = {"agent_id": "marie", "until": NOW + timedelta(minutes=5)}
    with pytest.raises(TransitionRefused, match="en cours d'examen par un autre agent"):
        domain.check_may_take("submitted", lease, "paul", NOW)
    with pytest.raises(TransitionRefused, match="en cours d'examen par un autre agent"):
        domain.check_may_decide(lease, "paul", NOW)
    domain.check_may_take("submitted", lease, "marie", NOW)  # renewing one's own lease
    domain.check_may_decide(lease, "marie", NOW)
    domain.check_may_decide(None, "paul", NOW)  # nobody took it: anyone decides


def test_only_a_file_waiting_for_review_can_be_taken() -> None:
    with pytest.raises(TransitionRefused, match="en attente d'examen"):
        domain.check_may_take("validated", None, "paul", NOW)


def test_the_export_is_utf8_with_bom_semicolons_and_neutralised_formulas() -> None:
    rows = [{"reference": "MSL-2027-000123", "status": "submitted", "submitted_at": NOW, "first_submitted_at": NOW,
             "guardians": [{"first_name": "=HYPERLINK(\"x\")", "last_name": "Martin"}],
             "children": [{"first_name": "Léa", "last_name": "Martin; Durand"}], "address": {"postcode": "45190", "town": "Montclair"}}]
    data = domain.export_csv(rows, lambda at: at.strftime("%d/%m/%Y") if at else "")
    assert data.startswith(b"\xef\xbb\xbf")
    header, line = data.decode("utf-8-sig").split("\r\n")[:2]
    assert header.split(";")[:3] == ["Référence", "État", "Transmis le"]
    assert line.startswith("MSL-2027-000123;Transmis au Service Scolaire et Périscolaire, en attente d'examen;14/03/2027;14/03/2027;;")
    assert ";'=HYPERLINK(\"x\") Martin;" not in line and '"\'=HYPERLINK(""x"") Martin"' in line
    assert '"Léa Martin; Durand";1;45190;Montclair' in line
