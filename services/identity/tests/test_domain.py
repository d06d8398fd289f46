from datetime import UTC, datetime, timedelta

import pytest

from services.identity.domain import (
    LinkStatus,
    activation_url,
    issue_link,
    normalise_email,
    password_problems,
    token_hash,
)


def test_emails_are_normalised_so_one_mailbox_has_one_account() -> None:
    assert normalise_email("  Marie.Dupont@Example.ORG ") == "marie.dupont@example.org"


@pytest.mark.parametrize("password", ["court", "a" * 11])
def test_a_password_shorter_than_twelve_characters_is_refused_in_french(password: str) -> None:
    assert password_problems(password) == ["Le mot de passe doit contenir au moins 12 caractères."]


@pytest.mark.parametrize("password", ["motdepasse123", "azertyuiop12", "123456789012", "password1234"])
def test_common_passwords_are_refused(password: str) -> None:
    assert password_problems(password)


def test_a_password_built_from_the_persons_own_name_is_refused() -> None:
    assert password_problems("mariedupont2024", email="marie.dupont@example.org", display_name="Marie Dupont")


@pytest.mark.parametrize("password", ["cheval pomme lampe vélo", "Grenouille-Violette-42", "tartine au miel de mai"])
def test_long_uncommon_passphrases_are_accepted_without_composition_rules(password: str) -> None:
    assert password_problems(password, email="marie.dupont@example.org", display_name="Marie Dupont") == []


def test_an_overlong_password_is_refused() -> None:
    assert password_problems("x" * 129)


def test_a_link_is_valid_until_it_expires_and_only_its_hash_is_kept() -> None:
    now = datetime(2026, 9, 1, tzinfo=UTC)
    token, link = issue_link(now, timedelta(hours=48))
    assert link.hash == token_hash(token) != token
    assert len(token) >= 40
    assert link.status_at(now + timedelta(hours=47)) == LinkStatus.VALID
    assert link.status_at(now + timedelta(hours=48)) == LinkStatus.EXPIRED


def test_two_links_never_share_a_token() -> None:
    now = datetime.now(UTC)
    assert issue_link(now, timedelta(hours=1))[0] != issue_link(now, timedelta(hours=1))[0]


def test_the_activation_link_points_at_the_web_page() -> None:
    assert activation_url("http://127.0.0.1:8080/", "abc") == "http://127.0.0.1:8080/activation?jeton=abc"


@pytest.mark.parametrize("password", ["Montclair2026", "montclair-sur-loire!", "École Montclair 2026", "MairieLoire2027"])
def test_a_password_built_from_the_towns_name_and_local_words_is_refused(password: str) -> None:
    problems = password_problems(password, email="marie.dupont@example.org", display_name="Marie Dupont")
    assert problems and "ville" in problems[0]


def test_a_passphrase_that_merely_contains_a_local_word_is_accepted() -> None:
    assert password_problems("la Loire coule sous trois ponts bleus", email="m.d@example.org") == []


def test_the_town_words_come_from_the_caller() -> None:
    assert password_problems("Villebrune2026!", local_words=("villebrune",))
    assert password_problems("Villebrune-Ormeaux-1789", local_words=()) == []
