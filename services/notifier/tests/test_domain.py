"""The notifier's rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifier import domain


def test_message_id_is_stable_per_event_and_recipient_and_differs_otherwise() -> None:
    first = domain.message_id("evt-1", "marie@example.org")
    assert first == domain.message_id("evt-1", "Marie@Example.org ")
    assert first.startswith("<evt-1.") and first.endswith("@ecp.notifier>")
    assert first != domain.message_id("evt-2", "marie@example.org")
    assert first != domain.message_id("evt-1", "paul@example.org")
    assert "marie" not in first  # the address itself never leaves in a header other than To


def test_the_same_address_gets_a_different_digest_in_every_event() -> None:
    assert domain.recipient_hash("a", "x@example.org") != domain.recipient_hash("b", "x@example.org")


def test_each_event_asks_for_its_email_and_the_reset_purpose_picks_the_template() -> None:
    assert domain.mail_for("ActivationLinkIssued", {}).template == "activation"  # type: ignore[union-attr]
    assert domain.mail_for("PasswordResetLinkIssued", {"purpose": "reset"}).template == "password_reset"  # type: ignore[union-attr]
    assert domain.mail_for("PasswordResetLinkIssued", {"purpose": "staff_invitation"}).template == "staff_invitation"  # type: ignore[union-attr]
    assert domain.mail_for("AccountRegistered", {}) is None
    assert domain.mail_for("AccountDeleted", {}) is None


def test_subjects_are_french_and_hold_no_name_nor_link() -> None:
    assert domain.mail_for("ActivationLinkIssued", {}).subject == "Activez votre Espace Citoyen Premium"  # type: ignore[union-attr]
    for mail in domain.MAILS:
        assert "{" not in mail.subject and "http" not in mail.subject


def test_dates_read_in_french_in_paris_time() -> None:
    # 08:30 UTC is 10:30 in Paris in summer, 09:30 in winter; the 1st is "1er".
    assert domain.french_datetime(datetime(2026, 9, 3, 8, 30, tzinfo=UTC)) == "jeudi 3 septembre 2026 à 10 h 30"
    assert domain.french_datetime(datetime(2026, 12, 1, 8, 5, tzinfo=UTC)) == "mardi 1er décembre 2026 à 9 h 05"


def test_link_validity_reads_as_a_duration() -> None:
    assert domain.french_duration(timedelta(hours=1)) == "1 heure"
    assert domain.french_duration(timedelta(hours=48)) == "48 heures"
    assert domain.french_duration(timedelta(minutes=30)) == "30 minutes"


def test_template_context_adds_french_dates_and_the_validity() -> None:
    now = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)
    context = domain.template_context({"expires_at": now + timedelta(hours=1), "display_name": "Léa"}, now, "Europe/Paris")
    assert context["expires_at_fr"] == "mardi 1er septembre 2026 à 11 h 30"
    assert context["valid_for"] == "1 heure"
    assert context["display_name"] == "Léa"


def test_addresses_that_could_inject_headers_are_invalid() -> None:
    assert domain.valid_address("marie.dupont@example.org")
    for bad in ("marie", "a@b", "x@example.org\nBcc: y@example.org", "Marie <m@example.org>", "a,b@example.org"):
        assert not domain.valid_address(bad)


def test_the_log_shows_a_masked_address_and_errors_without_address_or_link() -> None:
    assert domain.mask_address("marie.dupont@example.org") == "ma••••••••••@example.org"
    assert domain.mask_address(None) is None
    assert domain.redact("550 <m@x.org> unknown, see https://x.org/a?jeton=S", "m@x.org") == "550 <…> unknown, see …"


def test_old_events_are_history_not_news() -> None:
    now = datetime(2026, 9, 10, tzinfo=UTC)
    assert domain.too_old(now - timedelta(days=4), now, timedelta(hours=72))
    assert not domain.too_old(now - timedelta(hours=1), now, timedelta(hours=72))
