"""Every template renders in French, with a text part and an HTML part, escaped where it must be."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from services.notifier import domain
from services.notifier.render import TEMPLATES_DIR, Renderer, build_message
from services.notifier.render_samples import SAMPLE_TIME, render_all, sample_data
from services.notifier.settings import NotifierSettings

def as_received(message: Message) -> EmailMessage:
    """The message as a mail client reads it: its bytes parsed with the modern policy."""
    return message_from_bytes(message.as_bytes(), policy=policy.default)  # type: ignore[return-value]


SETTINGS = NotifierSettings(town_name="Ville de Testville", town_contact_email="contact@testville.fr")


@pytest.mark.parametrize("mail", domain.MAILS, ids=lambda m: m.template)
def test_each_email_has_a_french_text_part_and_html_part_with_the_shared_layout(mail: domain.MailSpec) -> None:
    rendered = Renderer(SETTINGS).render(mail, sample_data(mail), SAMPLE_TIME)
    for part in (rendered.text, rendered.html):
        assert "Bonjour" in part
        assert "Ville de Testville" in part and "contact@testville.fr" in part  # the layout
    assert "<" not in rendered.text.replace("<…>", "")  # plain text, no markup
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and '<html lang="fr">' in rendered.html
    if mail.carries_link:
        assert "jeton=EXEMPLE_de_jeton&x=1" in rendered.text  # text keeps the URL as is
        assert "jeton=EXEMPLE_de_jeton&amp;x=1" in rendered.html  # HTML escapes it in attributes
        assert "2026" in rendered.text  # the expiry date, in words


def test_every_registry_entry_has_both_template_files() -> None:
    for mail in domain.MAILS:
        assert (TEMPLATES_DIR / f"{mail.template}.txt").is_file()
        assert (TEMPLATES_DIR / f"{mail.template}.html").is_file()


def test_activation_email_says_when_the_link_expires_in_paris_time() -> None:
    mail = domain.mail_for("ActivationLinkIssued", {})
    assert mail is not None
    data = {"display_name": "Léa", "link": "http://x/activation?jeton=T", "expires_at": SAMPLE_TIME + timedelta(hours=48)}
    rendered = Renderer(SETTINGS).render(mail, data, SAMPLE_TIME)
    assert "valable 48 heures, jusqu'au jeudi 3 septembre 2026 à 10 h 30" in rendered.text


def test_reset_email_says_one_hour() -> None:
    mail = domain.mail_for("PasswordResetLinkIssued", {"purpose": "reset"})
    assert mail is not None
    data = {"display_name": "Léa", "link": "http://x/?jeton=T", "expires_at": SAMPLE_TIME + timedelta(hours=1), "purpose": "reset"}
    assert "valable 1 heure" in Renderer(SETTINGS).render(mail, data, SAMPLE_TIME).text


def test_welcome_email_says_what_to_do_next_in_inclusive_french() -> None:
    mail = domain.mail_for("AccountActivated", {})
    assert mail is not None
    rendered = Renderer(SETTINGS).render(mail, {"display_name": "Léa"}, SAMPLE_TIME)
    assert "Déclarer mon entourage" in rendered.text and "Déclarer mon entourage" in rendered.html
    assert "averti·e" in rendered.text


def test_html_autoescapes_a_hostile_name_and_the_text_part_keeps_it_verbatim() -> None:
    mail = domain.mail_for("PasswordChanged", {})
    assert mail is not None
    data = {"display_name": '<script>alert("x")</script>', "changed_at": SAMPLE_TIME, "via": "change"}
    rendered = Renderer(SETTINGS).render(mail, data, SAMPLE_TIME)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert '<script>alert("x")</script>' in rendered.text


def test_message_has_both_parts_a_stable_message_id_and_the_event_date() -> None:
    mail = domain.MAILS[0]
    rendered = Renderer(SETTINGS).render(mail, sample_data(mail), SAMPLE_TIME)
    args = dict(sender=SETTINGS.sender, recipient="marie@example.org", display_name="Marie, \"la\" Dupont", event_id="evt-1", date=SAMPLE_TIME)
    built, built_again = build_message(rendered, **args), build_message(rendered, **args)  # type: ignore[arg-type]
    assert built.as_bytes() == built_again.as_bytes()  # a retry is the very same email
    first = as_received(built)
    assert first["Message-ID"] == domain.message_id("evt-1", "marie@example.org")
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]
    assert first["Subject"] == "Activez votre Espace Citoyen Premium"
    assert first["To"].addresses[0].addr_spec == "marie@example.org"
    assert first["To"].addresses[0].display_name == 'Marie, "la" Dupont'
    assert first["Date"].datetime == SAMPLE_TIME
    assert first["Auto-Submitted"] == "auto-generated"


def test_render_samples_writes_every_template(tmp_path: Path) -> None:
    written = render_all(tmp_path, SETTINGS)
    assert {p.name for p in written} >= {f"{m.template}.{ext}" for m in domain.MAILS for ext in ("txt", "html", "eml")}


def test_a_name_cannot_inject_a_header_or_another_recipient() -> None:
    mail = domain.MAILS[0]
    rendered = Renderer(SETTINGS).render(mail, sample_data(mail), SAMPLE_TIME)
    hostile = "Marie\r\nBcc: pirate@example.org, <pirate@example.org>"
    received = as_received(build_message(rendered, sender=SETTINGS.sender, recipient="marie@example.org", display_name=hostile,
                                         event_id="evt-1", date=SAMPLE_TIME))
    assert received["Bcc"] is None
    assert [a.addr_spec for a in received["To"].addresses] == ["marie@example.org"]
    assert received["Subject"] == "Activez votre Espace Citoyen Premium"
