"""The back-office's editable list of preset correction reasons: what may be kept, how a new list
is built from the admin's and what its history records (no I/O)."""

import pytest

from services.household import domain

CURRENT = [{"id": "r1", "text": "Document illisible"}, {"id": "r2", "text": "Document expiré"},
           {"id": "r3", "text": "Nom différent de celui déclaré"}]


def test_the_first_list_is_the_services_usual_reasons() -> None:
    assert "Justificatif de domicile de plus de 3 mois" in domain.DEFAULT_CORRECTION_REASONS
    assert domain.correction_reasons_problems(list(domain.DEFAULT_CORRECTION_REASONS)) == []


def test_an_empty_reason_one_too_long_and_a_list_without_any_are_refused_in_french() -> None:
    assert domain.correction_reasons_problems(["Document illisible", ""]) == [
        "Le motif n° 2 est vide : saisissez-le ou supprimez-le."]
    too_long = "x" * (domain.MAX_CORRECTION_REASON_LENGTH + 1)
    assert domain.correction_reasons_problems([too_long]) == [
        f"Le motif n° 1 dépasse {domain.MAX_CORRECTION_REASON_LENGTH} caractères : raccourcissez-le."]
    assert domain.correction_reasons_problems(["x" * domain.MAX_CORRECTION_REASON_LENGTH]) == []
    assert domain.correction_reasons_problems([]) == [
        "Gardez au moins un motif dans la liste : les agents choisissent parmi eux."]


def test_two_reasons_reading_the_same_whatever_accents_and_case_are_refused() -> None:
    assert domain.correction_reasons_problems(["Document expiré", "DOCUMENT EXPIRE"]) == [
        "Le motif « DOCUMENT EXPIRE » figure déjà dans la liste (n° 1)."]


def test_more_reasons_than_the_limit_are_refused() -> None:
    texts = [f"Motif {n}" for n in range(domain.MAX_CORRECTION_REASONS + 1)]
    assert domain.correction_reasons_problems(texts) == [
        f"La liste compte au plus {domain.MAX_CORRECTION_REASONS} motifs : supprimez-en avant d'en ajouter."]
    assert domain.correction_reasons_problems(texts[:-1]) == []


def test_a_new_list_keeps_named_reasons_edits_them_adds_new_ones_and_drops_the_others() -> None:
    wanted = [{"id": "r3", "text": "Nom  différent\nde celui déclaré"}, {"id": None, "text": " Photo floue "},
              {"id": "r1", "text": "Document illisible ou tronqué"}]
    after = domain.apply_reasons(CURRENT, wanted)
    assert [r["text"] for r in after] == ["Nom différent de celui déclaré", "Photo floue", "Document illisible ou tronqué"]
    assert after[0]["id"] == "r3" and after[2]["id"] == "r1" and after[1]["id"] not in {"r1", "r2", "r3"}
    assert domain.reasons_change(CURRENT, after) == {
        "added": ["Photo floue"], "removed": ["Document expiré"],
        "edited": [{"from": "Document illisible", "to": "Document illisible ou tronqué"}], "reordered": True,
    }


def test_moving_a_reason_is_recorded_as_a_new_order_only_and_an_unchanged_list_records_nothing() -> None:
    moved = domain.apply_reasons(CURRENT, [CURRENT[1], CURRENT[0], CURRENT[2]])  # type: ignore[list-item]
    assert domain.reasons_change(CURRENT, moved) == {"reordered": True}
    assert domain.reasons_change(CURRENT, domain.apply_reasons(CURRENT, CURRENT)) == {}  # type: ignore[arg-type]
    # removing one keeps the others' order: not a reordering
    assert domain.reasons_change(CURRENT, [CURRENT[0], CURRENT[2]]) == {"removed": ["Document expiré"]}


def test_a_reason_removed_meanwhile_or_named_twice_cannot_be_edited() -> None:
    with pytest.raises(domain.UnknownItem, match="n'est plus dans la liste"):
        domain.apply_reasons(CURRENT, [{"id": "gone", "text": "Document illisible"}])
    with pytest.raises(domain.UnknownItem):
        domain.apply_reasons(CURRENT, [{"id": "r1", "text": "A"}, {"id": "r1", "text": "B"}])
