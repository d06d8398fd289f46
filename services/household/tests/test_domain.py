"""Rules of the household file, without I/O: lifecycle, submission checks, validated flags."""

from datetime import date

import pytest

from services.household import domain
from services.household.domain import Status, TransitionRefused

TODAY = date(2026, 9, 1)
ACCOUNT = "acc-1"


def content(**over):
    base = {
        "address": {"number": "12", "street": "rue des Lilas", "postcode": "75020", "town": "Paris", "proof_document_id": "d-addr"},
        "guardians": [{"first_name": "Camille", "last_name": "Martin", "relationship": "mère", "identity_document_id": "d-g1"}],
        "children": [{"first_name": "Léa", "last_name": "Martin", "birth_date": "2021-03-14", "identity_document_id": "d-c1"}],
        "recommended": [],
    }
    base.update(over)
    return domain.apply_content({}, base)


def clean(*ids, **kinds):
    default = {"d-addr": "proof_of_address", "d-g1": "guardian_identity", "d-c1": "child_identity"}
    return {i: {"account_id": ACCOUNT, "kind": kinds.get(i, default.get(i, "other")), "status": "clean"} for i in ids}


ALL = ("d-addr", "d-g1", "d-c1")


def test_a_complete_file_with_clean_documents_may_be_submitted() -> None:
    assert domain.submission_problems(content(), ACCOUNT, clean(*ALL), TODAY) == []


def test_every_missing_proof_is_listed_in_french() -> None:
    c = content()
    c["address"]["proof_document_id"] = None
    c["children"][0]["identity_document_id"] = None
    problems = domain.submission_problems(c, ACCOUNT, clean("d-g1"), TODAY)
    assert any("justificatif de domicile" in p for p in problems)
    assert any("l'enfant Léa Martin" in p for p in problems)
    assert len(problems) == 2


def test_an_empty_file_lists_address_guardian_and_child() -> None:
    problems = domain.submission_problems(domain.apply_content({}, {}), ACCOUNT, {}, TODAY)
    assert len(problems) == 3
    assert any("adresse" in p for p in problems)


@pytest.mark.parametrize(("status", "words"), [("pending", "antivirus"), ("infected", "virus"), ("deleted", "supprimé"),
                                                ("quarantined", "pas pu aller jusqu'au bout")])
def test_a_document_not_clean_blocks_the_submission(status: str, words: str) -> None:
    known = clean(*ALL)
    known["d-c1"]["status"] = status
    problems = domain.submission_problems(content(), ACCOUNT, known, TODAY)
    assert len(problems) == 1 and words in problems[0]


def test_a_deleted_document_says_so_even_though_its_tombstone_names_no_account() -> None:
    known = clean(*ALL)
    known["d-c1"] = {"kind": known["d-c1"]["kind"], "status": "deleted"}
    problems = domain.submission_problems(content(), ACCOUNT, known, TODAY)
    assert len(problems) == 1 and "supprimé" in problems[0]


def test_a_document_of_another_account_or_unknown_is_refused() -> None:
    known = clean(*ALL)
    known["d-g1"]["account_id"] = "someone-else"
    del known["d-c1"]
    problems = domain.submission_problems(content(), ACCOUNT, known, TODAY)
    assert len(problems) == 2 and all("introuvable" in p for p in problems)


def test_a_sworn_statement_stands_in_for_any_required_document() -> None:
    known = clean(*ALL, **{"d-addr": "sworn_statement", "d-g1": "sworn_statement", "d-c1": "sworn_statement"})
    assert domain.submission_problems(content(), ACCOUNT, known, TODAY) == []


def test_a_document_of_the_wrong_kind_is_refused() -> None:
    known = clean(*ALL, **{"d-addr": "child_identity"})
    assert any("bon type" in p for p in domain.submission_problems(content(), ACCOUNT, known, TODAY))


def test_recommended_pieces_never_block_when_missing_but_must_be_clean_when_attached() -> None:
    c = content(recommended=[{"kind": "vaccination_record", "document_id": "d-vac"}])
    known = clean(*ALL, "d-vac")
    assert domain.submission_problems(c, ACCOUNT, known, TODAY) == []
    known["d-vac"]["status"] = "pending"
    assert len(domain.submission_problems(c, ACCOUNT, known, TODAY)) == 1
    assert "d-vac" in domain.document_ids(c)


@pytest.mark.parametrize(("born", "word"), [("2026-09-02", "futur"), ("2008-09-01", "18 ans"), ("1990-01-01", "18 ans")])
def test_future_and_implausible_birth_dates_are_refused(born: str, word: str) -> None:
    c = content(children=[{"first_name": "Léa", "last_name": "Martin", "birth_date": born, "identity_document_id": "d-c1"}])
    problems = domain.content_problems(c, TODAY)
    assert len(problems) == 1 and word in problems[0]


def test_a_child_of_seventeen_is_plausible() -> None:
    c = content(children=[{"first_name": "Léa", "last_name": "Martin", "birth_date": "2008-09-02"}])
    assert domain.content_problems(c, TODAY) == []


@pytest.mark.parametrize("status", [Status.DRAFT, Status.CORRECTIONS_REQUESTED, Status.REJECTED])
def test_the_family_submits_a_draft_or_a_file_sent_back(status: Status) -> None:
    domain.check_submittable(status)
    domain.check_editable(status)


@pytest.mark.parametrize(("status", "word"), [(Status.SUBMITTED, "déjà été transmis"), (Status.VALIDATED, "déjà validé"), (Status.ERASED, "supprimé")])
def test_illegal_submissions_have_a_french_reason(status: Status, word: str) -> None:
    with pytest.raises(TransitionRefused, match=word):
        domain.check_submittable(status)


def test_a_file_under_review_cannot_be_edited() -> None:
    with pytest.raises(TransitionRefused, match="en cours d'examen"):
        domain.check_editable(Status.SUBMITTED)


def test_agents_decide_only_on_a_submitted_file_and_a_decided_file_means_another_agent_won() -> None:
    domain.check_decidable(Status.SUBMITTED)
    for status in (Status.VALIDATED, Status.REJECTED, Status.CORRECTIONS_REQUESTED):
        with pytest.raises(TransitionRefused, match="autre agent"):
            domain.check_decidable(status)
    with pytest.raises(TransitionRefused, match="pas en attente"):
        domain.check_decidable(Status.DRAFT)


def test_a_change_to_a_validated_file_makes_it_a_draft_again_only_if_something_changed() -> None:
    assert domain.after_edit(Status.VALIDATED, changed=False) is Status.VALIDATED
    assert domain.after_edit(Status.VALIDATED, changed=True) is Status.DRAFT
    assert domain.after_edit(Status.CORRECTIONS_REQUESTED, changed=True) is Status.CORRECTIONS_REQUESTED


def _sent_back(c):
    """The content as the family sends it back (ids kept)."""
    return {"address": dict(c["address"]), "guardians": [dict(g) for g in c["guardians"]],
            "children": [dict(ch) for ch in c["children"]], "recommended": list(c["recommended"])}


def test_validated_children_stay_validated_when_a_child_is_added() -> None:
    validated = domain.mark_validated(content())
    assert validated["address"]["validated"] and validated["children"][0]["validated"]
    new = _sent_back(validated)
    new["children"].append({"first_name": "Tom", "last_name": "Martin", "birth_date": "2023-01-05"})
    after = domain.apply_content(validated, new)
    assert [c["validated"] for c in after["children"]] == [True, False]
    assert after["address"]["validated"] is True
    assert after["children"][0]["child_id"] == validated["children"][0]["child_id"]


def test_a_new_address_or_a_changed_child_loses_its_validated_flag() -> None:
    validated = domain.mark_validated(content())
    new = _sent_back(validated)
    new["address"]["street"] = "avenue Foch"
    new["children"][0]["birth_date"] = "2021-03-15"
    after = domain.apply_content(validated, new)
    assert after["address"]["validated"] is False
    assert after["children"][0]["validated"] is False


def test_an_unchanged_file_sent_back_is_equal_to_the_stored_one() -> None:
    validated = domain.mark_validated(content())
    assert domain.apply_content(validated, _sent_back(validated)) == validated


def test_an_unknown_child_id_is_refused() -> None:
    with pytest.raises(domain.UnknownItem):
        domain.apply_content(content(), {"children": [{"child_id": "nope", "first_name": "A", "last_name": "B", "birth_date": "2020-01-01"}]})


def test_corrections_concern_known_items_and_are_shown_next_to_them() -> None:
    c = content()
    child = f"children.{c['children'][0]['child_id']}"
    assert domain.unknown_items(c, ["address", "address.postcode", child, f"{child}.birth_date", "d-addr"]) == []
    assert domain.unknown_items(c, ["children.nope", "whatever"]) == ["children.nope", "whatever"]
    corrections = [{"item": "d-c1", "reason": "illisible"}, {"item": f"{child}.birth_date", "reason": "date fausse"},
                   {"item": "address", "reason": "autre"}]
    assert domain.corrections_for(corrections, child, "d-c1") == ["illisible", "date fausse"]


def test_erasure_keeps_only_what_the_audit_needs() -> None:
    history = [{"at": 1, "action": "rejected", "actor": "agent", "agent_id": "ag-1", "version": 3, "reason": "Léa Martin n'habite pas ici",
                "corrections": None}]
    assert domain.anonymised_history(history) == [{"at": 1, "action": "rejected", "actor": "agent", "agent_id": "ag-1", "version": 3}]


# ---- the schools a file is listed under (the queue's « École ») ---------------------------------

def _sector(child_id: str, school_id: str | None) -> dict[str, object]:
    return {"child_id": child_id, "state": "sector", "rank": domain.SECTOR_RANK, "school_id": school_id}


def test_a_submitted_file_is_under_the_sector_school_of_each_child() -> None:
    assert domain.file_schools([_sector("c1", "mat-a"), _sector("c2", "elem-a"), _sector("c3", None)]) == ["elem-a", "mat-a"]


def test_a_childs_real_enrolment_replaces_its_sector_school_but_not_its_siblings() -> None:
    states = [_sector("c1", "mat-a"), _sector("c2", "elem-a"),
              {"child_id": "c1", "state": "requested", "rank": 1, "school_id": "mat-b"}]
    assert domain.file_schools(states) == ["elem-a", "mat-b"]


def test_a_refused_enrolment_leaves_the_child_under_no_school_not_its_sector_school() -> None:
    states = [_sector("c1", "mat-a"), {"child_id": "c1", "state": "refused", "rank": 3, "school_id": None}]
    assert domain.file_schools(states) == []


def test_a_file_without_sector_schools_keeps_its_enrolments_schools() -> None:
    states = [{"child_id": "c1", "state": "confirmed", "rank": 3, "school_id": "elem-a"},
              {"child_id": "c2", "state": "requested", "rank": 1, "school_id": "mat-a"}]
    assert domain.file_schools(states) == ["elem-a", "mat-a"]
