"""Rules of the enrolment service, without I/O."""

from datetime import date

import pytest

from services.enrolment import domain
from services.enrolment.domain import Level, SectorIndex, Segment, Side

# ---- level from the birth year -----------------------------------------------------------------

EXPECTED = [(2, Level.TPS), (3, Level.PS), (4, Level.MS), (5, Level.GS), (6, Level.CP), (7, Level.CE1),
            (8, Level.CE2), (9, Level.CM1), (10, Level.CM2)]


@pytest.mark.parametrize("year", [2026, 2027])
@pytest.mark.parametrize(("age", "level"), EXPECTED)
def test_the_level_comes_from_the_birth_year_for_31_december_and_1_january(year: int, age: int, level: Level) -> None:
    born = year - age
    assert domain.level_for(date(born, 1, 1), year, tps_offered=True).level is level
    assert domain.level_for(date(born, 12, 31), year, tps_offered=True).level is level
    # one day later (1 January of the next year) is the level below; one day earlier, the level above
    below = domain.level_for(date(born + 1, 1, 1), year, tps_offered=True)
    above = domain.level_for(date(born - 1, 12, 31), year, tps_offered=True)
    assert below.level == domain.AGE_LEVEL.get(age - 1)
    assert above.level == domain.AGE_LEVEL.get(age + 1)


@pytest.mark.parametrize("year", [2026, 2027])
def test_a_child_born_in_y_minus_2_enters_tps_only_where_the_school_offers_it(year: int) -> None:
    refused = domain.level_for(date(year - 2, 12, 31), year, tps_offered=False)
    assert refused.level is None
    assert refused.message == (
        f"Votre enfant, né·e en {year - 2}, pourra être inscrit·e en petite section à la rentrée {year + 1}. "
        "Son école de secteur n'accueille pas d'enfants en toute petite section."
    )
    assert domain.level_for(date(year - 2, 1, 1), year, tps_offered=True).level is Level.TPS


@pytest.mark.parametrize("year", [2026, 2027])
def test_too_young_names_the_year_of_petite_section(year: int) -> None:
    for born in (date(year - 1, 1, 1), date(year - 1, 12, 31), date(year, 6, 1)):
        placement = domain.level_for(born, year, tps_offered=True)
        assert placement.level is None
        assert placement.message == f"Votre enfant, né·e en {born.year}, pourra être inscrit·e en petite section à la rentrée {born.year + 3}."
    assert domain.level_for(date(2024, 5, 5), 2026, tps_offered=False).message == (
        "Votre enfant, né·e en 2024, pourra être inscrit·e en petite section à la rentrée 2027. "
        "Son école de secteur n'accueille pas d'enfants en toute petite section."
    )


@pytest.mark.parametrize("year", [2026, 2027])
def test_too_old_is_refused_with_the_range_of_birth_years(year: int) -> None:
    for born in (date(year - 11, 12, 31), date(year - 11, 1, 1), date(year - 15, 3, 3)):
        placement = domain.level_for(born, year, tps_offered=True)
        assert placement.level is None
        assert f"nés de {year - 10} à {year - 2}" in (placement.message or "")
    assert domain.level_for(date(year - 10, 1, 1), year, tps_offered=True).level is Level.CM2


@pytest.mark.parametrize(("text", "year"), [("2027", 2027), (2027, 2027), ("2027-2028", 2027), (" 2027 / 2028 ", 2027),
                                            ("2027-2029", None), ("27", None), ("rentrée", None), ("", None)])
def test_school_years_are_parsed_strictly(text: str | int, year: int | None) -> None:
    assert domain.parse_school_year(text) == year


def test_school_year_label_and_reference() -> None:
    assert domain.school_year_label(2027) == "2027-2028"
    assert domain.reference(2027, 123) == "INS-2027-000123"


def test_a_reference_has_six_digits_per_year_and_grows_past_them_rather_than_repeat() -> None:
    assert domain.reference(2028, 1) == "INS-2028-000001"
    assert domain.reference(2027, 1_234_567) == "INS-2027-1234567"


@pytest.mark.parametrize(("typed", "found"), [
    ("INS-2027-000123", "INS-2027-000123"), (" ins-2027-123 ", "INS-2027-000123"), ("INS 2027 000123", "INS-2027-000123"),
    ("ins-2027-3f2b8c1d", "INS-2027-3F2B8C1D"),  # enrolments made before counters keep their reference
    ("", None), ("Dupont", None), ("INS-27-1", None), ("MSL-2027-000123", None)])
def test_an_agent_finds_an_enrolment_by_its_reference_however_typed(typed: str, found: str | None) -> None:
    assert domain.reference_query(typed) == found


# ---- sector look-ups -------------------------------------------------------------------------


def _index() -> SectorIndex:
    return SectorIndex([
        Segment("rue des Lilas", 1, 99, Side.ODD, "mat-a", "elem-a"),
        Segment("rue des Lilas", 2, 98, Side.EVEN, "mat-b", "elem-a"),
        Segment("Avenue de l'Église", 1, 40, Side.BOTH, "mat-a", "elem-a"),
        Segment("Avenue de l'Église", 41, 80, Side.BOTH, "mat-b", "elem-b"),
    ])


@pytest.mark.parametrize(("street", "number", "school"), [
    ("rue des Lilas", "1", "mat-a"), ("rue des Lilas", "99", "mat-a"), ("rue des Lilas", "2", "mat-b"),
    ("rue des Lilas", "98", "mat-b"), ("rue des Lilas", "12 bis", "mat-b"), ("rue des Lilas", "13bis", "mat-a"),
    ("rue des Lilas", "12 B", "mat-b"), ("RUE DES LILAS", " 7 ", "mat-a"), ("r. des lilas", "7", "mat-a"),
    ("avenue de l'eglise", "40", "mat-a"), ("av. de l’Église", "41", "mat-b"), ("Avenue de l Eglise", "80 ter", "mat-b"),
])
def test_a_lookup_honours_sides_range_ends_and_suffixes(street: str, number: str, school: str) -> None:
    segment = _index().lookup(street, number)
    assert segment is not None and segment.maternelle_id == school


@pytest.mark.parametrize(("street", "number"), [
    ("rue des Lilas", "100"), ("rue des Lilas", "101"), ("rue des Lilas", "0"), ("rue des Lilas", ""),
    ("rue des Lilas", "12-14"), ("rue des Lilas", "sans numéro"), ("rue des Lilacs", "3"), ("Avenue de l'Église", "81"),
])
def test_outside_every_range_or_an_unknown_street_finds_nothing(street: str, number: str) -> None:
    assert _index().lookup(street, number) is None


def test_house_numbers_keep_their_integer_part() -> None:
    assert [domain.house_number(t) for t in ("12", "12 bis", "12bis", "12 Ter", "4 A", "0", "", "12-14", "bis")] == [
        12, 12, 12, 12, 4, None, None, None, None]


def test_the_sector_school_depends_on_the_level() -> None:
    segment = _index().lookup("rue des Lilas", "3")
    assert segment is not None
    assert domain.sector_school_id(segment, Level.GS) == "mat-a"
    assert domain.sector_school_id(segment, Level.CP) == "elem-a"


# ---- CSV validation report -------------------------------------------------------------------

SCHOOLS = {"mat-a": ["TPS", "PS", "MS", "GS"], "mat-b": ["PS", "MS", "GS"], "elem-a": ["CP", "CE1", "CE2", "CM1", "CM2"],
           "prim": ["PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"]}
HEADER = "street;number_from;number_to;side;maternelle;elementaire\n"


def test_a_clean_map_can_be_applied() -> None:
    report = domain.parse_sector_csv(HEADER + "rue A;1;99;odd;mat-a;elem-a\nrue A;2;98;even;prim;prim\nrue B;1;10;both;mat-b;elem-a\n", SCHOOLS)
    assert report.can_apply and report.errors == [] and report.warnings == []
    assert report.as_dict()["streets"] == 2


def test_overlapping_ranges_on_the_same_side_are_errors() -> None:
    report = domain.parse_sector_csv(HEADER + "rue A;1;21;odd;mat-a;elem-a\nrue A;21;41;odd;mat-b;elem-a\n"
                                     "rue B;1;20;both;mat-a;elem-a\nrue B;10;30;even;mat-b;elem-a\n", SCHOOLS)
    assert not report.can_apply
    assert [p.kind for p in report.errors] == ["overlap", "overlap"]
    assert "du n° 21 au n° 21" in report.errors[0].message
    assert "côté pair" in report.errors[1].message


def test_odd_and_even_ranges_of_the_same_numbers_do_not_overlap() -> None:
    report = domain.parse_sector_csv(HEADER + "rue A;1;21;odd;mat-a;elem-a\nrue A;2;22;even;mat-b;elem-a\n"
                                     "rue A;23;23;odd;mat-a;elem-a\nrue C;1;1;odd;mat-a;elem-a\nrue C;2;2;both;mat-a;elem-a\n", SCHOOLS)
    assert report.errors == [] and report.warnings == []


def test_gaps_between_ranges_are_warnings() -> None:
    report = domain.parse_sector_csv(HEADER + "rue A;1;21;odd;mat-a;elem-a\nrue A;31;41;odd;mat-b;elem-a\n"
                                     "rue A;2;10;even;mat-a;elem-a\nrue A;13;20;even;mat-a;elem-a\n", SCHOOLS)
    assert report.errors == [] and report.can_apply
    messages = [p.message for p in report.warnings]
    assert messages == ["rue A : aucun secteur côté impair du n° 23 au n° 29.", "rue A : aucun secteur côté pair du n° 12 au n° 12."]


def test_unknown_schools_and_schools_without_the_levels_are_errors() -> None:
    report = domain.parse_sector_csv(HEADER + "rue A;1;9;odd;mat-x;elem-a\nrue B;1;9;odd;elem-a;elem-a\nrue C;1;9;odd;mat-a;mat-b\n", SCHOOLS)
    assert [(p.kind, p.line) for p in report.errors] == [("unknown_school", 2), ("wrong_school_type", 3), ("wrong_school_type", 4)]
    assert "« mat-x »" in report.errors[0].message
    assert report.segments == []


@pytest.mark.parametrize("row", ["rue A;1;9;odd;mat-a", "rue A;x;9;odd;mat-a;elem-a", "rue A;9;1;odd;mat-a;elem-a",
                                 ";1;9;odd;mat-a;elem-a", "rue A;1;9;left;mat-a;elem-a", "rue A;0;9;odd;mat-a;elem-a"])
def test_malformed_rows_are_errors_with_their_line(row: str) -> None:
    report = domain.parse_sector_csv(HEADER + "rue Z;1;9;both;mat-a;elem-a\n" + row + "\n", SCHOOLS)
    assert [(p.kind, p.line) for p in report.errors] == [("malformed", 3)]
    assert not report.can_apply and len(report.segments) == 1


def test_a_missing_column_or_an_empty_file_is_reported() -> None:
    assert domain.parse_sector_csv("street;number_from;number_to;side\n", SCHOOLS).errors[0].message.startswith("Colonnes manquantes")
    assert not domain.parse_sector_csv("", SCHOOLS).can_apply


def test_french_excel_files_are_read_comma_or_semicolon_and_cp1252() -> None:
    raw = "rue;de;a;côté;maternelle;elementaire\r\nrue de l'Église;1;9;impair;mat-a;elem-a\r\n".encode("cp1252")
    report = domain.parse_sector_csv(domain.decode_csv(raw), SCHOOLS)
    assert report.errors == [] and report.segments[0].street == "rue de l'Église" and report.segments[0].side is Side.ODD
    comma = domain.parse_sector_csv("street,number_from,number_to,side,maternelle,elementaire\nrue A,1,9,both,mat-a,elem-a\n", SCHOOLS)
    assert comma.can_apply


def test_the_sample_map_is_clean() -> None:
    import json
    from pathlib import Path

    data = Path(domain.__file__).parent / "data"
    schools = {s["id"]: s["levels"] for s in json.loads((data / "schools.json").read_text())}
    report = domain.parse_sector_csv(domain.decode_csv((data / "sector_map.csv").read_bytes()), schools)
    assert report.can_apply and report.warnings == []
    assert report.as_dict()["streets"] >= 30 and len(schools) == 4


def test_french_dates_and_clean_text() -> None:
    assert domain.french_date(date(2023, 3, 1)) == "1er mars 2023"
    assert domain.french_date(date(2021, 12, 31)) == "31 décembre 2021"
    assert domain.clean_text("  Bonjour\x00\tle  monde ", 100) == "Bonjour le monde"


def test_only_enrolments_an_agent_must_decide_are_in_the_list_to_decide() -> None:
    assert domain.awaits_decision({"status": "pending_agent", "derogation": None})
    assert domain.awaits_decision({"status": "confirmed", "derogation": {"status": "pending"}})
    assert not domain.awaits_decision({"status": "confirmed", "derogation": {"status": "refused"}})
    assert not domain.awaits_decision({"status": "refused"})


# ---- the school the map names for a child's age ------------------------------------------------

@pytest.mark.parametrize(("born", "school"), [(2025, "mat-a"), (2024, "mat-a"), (2022, "mat-a"), (2021, "elem-a"),
                                              (2017, "elem-a"), (2026, None), (2016, None)])
def test_the_sector_school_is_the_maternelle_up_to_grande_section_and_the_elementaire_from_cp_to_cm2(born: int, school: str | None) -> None:
    segment = Segment("rue des Lilas", 1, 99, Side.ODD, "mat-a", "elem-a")
    assert domain.sector_school_by_age(segment, date(born, 12, 31), 2027) == school
    assert domain.sector_school_by_age(segment, date(born, 1, 1), 2027) == school


def test_an_address_off_the_map_has_no_sector_school() -> None:
    assert domain.sector_school_by_age(None, date(2021, 6, 1), 2027) is None
