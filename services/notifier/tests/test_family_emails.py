"""The household, documents and enrolment emails: built from the real event models, rendered in
French (text and HTML), sent to the projected address once per event."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest

from schemas.contracts.documents import DocumentScanned
from schemas.contracts.enrolment import DerogationDecided, EnrolmentConfirmed, EnrolmentRefused
from schemas.contracts.household import (
    Address,
    Child,
    Correction,
    CorrectionRequested,
    DossierRejected,
    DossierValidated,
    HouseholdSubmitted,
)
from schemas.contracts.identity import AccountDeleted
from services.kernel.envelope import EventData, new_event
from services.notifier import domain
from services.notifier.consumers import Notifier, handlers_summary
from services.notifier.render import Renderer, build_message
from services.notifier.settings import NotifierSettings
from services.notifier.tests.test_delivery import MemoryStore, ScriptedMailer, no_sleep

NOW = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)
ACC = "acc-1"
SETTINGS = NotifierSettings(public_base_url="https://portail.example.fr", town_name="Ville de Testville", town_contact_email="contact@testville.fr")
HOSTILE = 'Pièce illisible <script>alert("x")</script> & floue'
ENROLMENT = {"enrolment_id": "enr-1", "account_id": ACC, "child_id": "child-1"}

EVENTS: dict[str, EventData] = {
    "dossier_submitted": HouseholdSubmitted(dossier_id="dos-1", account_id=ACC, submitted_at=NOW, document_ids=["doc-1"]),
    "corrections_requested": CorrectionRequested(
        dossier_id="dos-1", account_id=ACC, requested_at=NOW,
        corrections=[
            Correction(item="address.postcode", reason="Le code postal ne correspond pas à la commune."),
            Correction(item="3f1c2d4e-5d0a-4a8e-9a52-3f1c2d4e5a6b", reason=HOSTILE),
        ],
    ),
    "dossier_validated": DossierValidated(
        dossier_id="dos-1", account_id=ACC, validated_at=NOW, document_ids=["doc-1"],
        address=Address(number="12 bis", street="rue des Lilas", postcode="45190", town="Montclair-sur-Loire"),
        children=[Child(child_id="child-1", first_name="Léo", last_name="Durand", birth_date=date(2021, 3, 14))],
    ),
    "dossier_rejected": DossierRejected(dossier_id="dos-1", account_id=ACC, reason=HOSTILE, rejected_at=NOW),
    "document_infected": DocumentScanned(document_id="doc-1", account_id=ACC, kind="proof_of_address", result="infected", reason=HOSTILE, scanned_at=NOW),
    "enrolment_confirmed": EnrolmentConfirmed(
        **ENROLMENT, school_id="ecole-1", school_name="École élémentaire Les Tilleuls", level="CP",
        school_year="2027-2028", reference="INS-2027-3F2B8C1D", confirmed_at=NOW,
    ),
    "enrolment_refused": EnrolmentRefused(**ENROLMENT, school_year="2027-2028", reason=HOSTILE, refused_at=NOW),
    "derogation_accepted": DerogationDecided(**ENROLMENT, requested_school_id="ecole-2", decision="accepted", decided_at=NOW),
    "derogation_refused": DerogationDecided(**ENROLMENT, requested_school_id="ecole-2", decision="refused", reason=HOSTILE, decided_at=NOW),
}
SUBJECTS = {
    "dossier_submitted": "Votre dossier a bien été transmis au Service Scolaire et Périscolaire",
    "corrections_requested": "Votre dossier est à corriger",
    "dossier_validated": "Votre dossier est validé : vous pouvez inscrire votre enfant",
    "dossier_rejected": "Votre dossier a été refusé",
    "document_infected": "Un document envoyé n'a pas pu être accepté",
    "enrolment_confirmed": "Votre inscription scolaire est confirmée",
    "enrolment_refused": "Votre demande d'inscription scolaire a été refusée",
    "derogation_accepted": "Votre demande de dérogation scolaire est acceptée",
    "derogation_refused": "Votre demande de dérogation scolaire est refusée",
}
# With several children, the subjects that speak of them (the bodies too).
PLURAL_SUBJECTS = {"dossier_validated": "Votre dossier est validé : vous pouvez inscrire vos enfants"}


def render(data: EventData, settings: NotifierSettings = SETTINGS) -> tuple[domain.MailSpec, Any]:
    fields = {**data.model_dump(), "display_name": "Marie Dupont"}
    mail = domain.mail_for(data.event_type, fields)
    assert mail is not None
    return mail, Renderer(settings).render(mail, fields, NOW)


@pytest.mark.parametrize("template", sorted(EVENTS))
def test_each_family_event_asks_for_its_french_email_with_both_parts(template: str) -> None:
    mail, rendered = render(EVENTS[template])
    assert (mail.template, mail.subject) == (template, SUBJECTS[template])
    for part in (rendered.text, rendered.html):
        assert "Bonjour Marie Dupont" in part and "Ville de Testville" in part and "contact@testville.fr" in part
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    built = build_message(rendered, sender=SETTINGS.sender, recipient="m@example.org", display_name="Marie", event_id="e", date=NOW)
    message = message_from_bytes(built.as_bytes(), policy=policy.default)
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == SUBJECTS[template]


@pytest.mark.parametrize("template", ["corrections_requested", "dossier_rejected", "document_infected", "enrolment_refused", "derogation_refused"])
def test_the_reason_is_in_both_parts_verbatim_in_text_and_escaped_in_html(template: str) -> None:
    _, rendered = render(EVENTS[template])
    assert HOSTILE in rendered.text
    assert "<script>" not in rendered.html
    assert "Pièce illisible &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; floue" in rendered.html


def test_corrections_list_each_item_with_its_reason() -> None:
    _, rendered = render(EVENTS["corrections_requested"])
    assert "- Adresse du domicile (code postal) : Le code postal ne correspond pas à la commune." in rendered.text
    assert f"- Pièce justificative : {HOSTILE}" in rendered.text
    assert rendered.html.count("<li>") == 2
    assert "https://portail.example.fr/entourage" in rendered.text


def test_correction_items_read_in_french() -> None:
    assert domain.correction_label("address") == "Adresse du domicile"
    assert domain.correction_label("children.c1.birth_date") == "Enfant (date de naissance)"
    assert domain.correction_label("guardians.g1") == "Responsable légal·e"
    assert domain.correction_label("3f1c2d4e-5d0a-4a8e-9a52-3f1c2d4e5a6b") == "Pièce justificative"


def test_submitted_says_what_happens_next() -> None:
    _, rendered = render(EVENTS["dossier_submitted"])
    assert "Votre dossier a bien été transmis au Service Scolaire et Périscolaire le mardi 1er septembre 2026 à 10 h 30" in rendered.text
    assert "vous serez averti·e par email" in rendered.text and "vous serez averti·e par email" in rendered.html


def test_validated_links_to_the_enrolment_page_from_settings() -> None:
    _, rendered = render(EVENTS["dossier_validated"])
    assert "vous pouvez maintenant inscrire votre enfant" in rendered.text.lower()
    assert "https://portail.example.fr/inscription-scolaire" in rendered.text
    assert 'href="https://portail.example.fr/inscription-scolaire"' in rendered.html
    moved = SETTINGS.model_copy(update={"enrolment_path": "/ecole/inscrire"})
    assert "https://portail.example.fr/ecole/inscrire" in render(EVENTS["dossier_validated"], moved)[1].text


def test_enrolment_confirmed_names_school_level_year_reference_and_the_certificate_page() -> None:
    _, rendered = render(EVENTS["enrolment_confirmed"])
    for part in (rendered.text, rendered.html):
        for value in ("École élémentaire Les Tilleuls", "CP", "2027-2028", "INS-2027-3F2B8C1D"):
            assert value in part
    assert "https://portail.example.fr/inscription-scolaire/enr-1/certificat" in rendered.text
    moved = SETTINGS.model_copy(update={"certificate_path": "/certificats/{enrolment_id}"})
    assert 'href="https://portail.example.fr/certificats/enr-1"' in render(EVENTS["enrolment_confirmed"], moved)[1].html


def test_infected_document_says_to_upload_another_file() -> None:
    _, rendered = render(EVENTS["document_infected"])
    assert "justificatif de domicile" in rendered.text and "Envoyez un autre fichier" in rendered.text


def test_a_clean_scan_asks_for_no_email() -> None:
    clean = DocumentScanned(document_id="d", account_id=ACC, kind="other", result="clean", scanned_at=NOW)
    assert domain.mail_for("DocumentScanned", clean.model_dump()) is None


def test_the_new_groups_read_their_topics() -> None:
    n = Notifier(NotifierSettings(), MemoryStore(), ScriptedMailer())
    specs = {s.group_id: list(s.topics) for s in n.consumer_specs()}
    assert specs["notifier-dossiers"] == ["household.dossier.v1"]
    assert specs["notifier-documents"] == ["documents.document.v1"]
    assert specs["notifier-enrolments"] == ["enrolment.enrolment.v1"]
    summary = handlers_summary(n.consumer_specs())
    assert summary["notifier-dossiers"] == ["CorrectionRequested", "DossierRejected", "DossierValidated", "HouseholdSubmitted"]
    assert summary["notifier-enrolments"] == ["DerogationDecided", "EnrolmentConfirmed", "EnrolmentRefused"]


def notifier(store: MemoryStore, mailer: ScriptedMailer) -> Notifier:
    return Notifier(NotifierSettings(), store, mailer, clock=lambda: NOW, sleep=no_sleep, owner="me")


def envelope(data: EventData, event_id: str = "evt-1") -> Any:
    return new_event(data, source="/tests", subject="x", event_id=event_id, time=NOW)


async def test_family_events_go_once_to_the_projected_address() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    await store.remember_recipient(ACC, "marie@example.org", "Marie")
    n = notifier(store, mailer)
    for i, data in enumerate(EVENTS.values()):
        await n.on_family_event(envelope(data, f"evt-{i}"))
        await n.on_family_event(envelope(data, f"evt-{i}"))  # redelivered
    assert [(r, m["X-ECP-Template"]) for r, m in mailer.sent] == [("marie@example.org", t) for t in EVENTS]
    assert {d["status"] for d in store.deliveries.values()} == {"sent"} and len(store.deliveries) == len(EVENTS)


async def test_unknown_account_is_logged_failed_erased_account_dropped_clean_scan_ignored() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    n = notifier(store, mailer)
    await n.on_family_event(envelope(EVENTS["dossier_rejected"], "evt-unknown"))
    (failed,) = store.deliveries.values()
    assert failed["status"] == "failed" and failed["reason"] == "unknown_recipient" and failed["template"] == "dossier_rejected"
    await store.forget(ACC, NOW)
    await n.on_family_event(envelope(EVENTS["dossier_validated"], "evt-erased"))
    clean = DocumentScanned(document_id="d", account_id=ACC, kind="other", result="clean", scanned_at=NOW)
    await n.on_family_event(envelope(clean, "evt-clean"))
    assert mailer.sent == [] and len(store.deliveries) == 1


def plain_text(mail: Any) -> str:
    message = message_from_bytes(mail.as_bytes(), policy=policy.default)
    return message.get_body(("plain",)).get_content()


async def test_each_enrolment_email_names_its_child_level_and_school_and_links_to_its_own_certificate() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    await store.remember_recipient(ACC, "marie@example.org", "Marie")
    n = notifier(store, mailer)
    twins = DossierValidated(
        dossier_id="dos-1", account_id=ACC, validated_at=NOW, document_ids=["doc-1"],
        address=Address(number="12 bis", street="rue des Lilas", postcode="45190", town="Montclair-sur-Loire"),
        children=[Child(child_id="c-leo", first_name="Léo", last_name="Durand", birth_date=date(2020, 3, 14)),
                  Child(child_id="c-jade", first_name="Jade", last_name="Durand", birth_date=date(2021, 5, 2))],
    )
    await n.on_dossier_validated(envelope(twins, "evt-validated"))
    for child_id, enrolment_id, level in (("c-leo", "enr-leo", "CP"), ("c-jade", "enr-jade", "GS")):
        confirmed = EnrolmentConfirmed(enrolment_id=enrolment_id, account_id=ACC, child_id=child_id, school_id="ecole-1",
                                       school_name="École Les Tilleuls", level=level, school_year="2027-2028",
                                       reference=f"INS-2027-{enrolment_id[-3:].upper()}", confirmed_at=NOW)
        await n.on_family_event(envelope(confirmed, f"evt-{enrolment_id}"))
    mails = [m for _, m in mailer.sent if m["X-ECP-Template"] == "enrolment_confirmed"]
    assert len(mails) == 2
    texts = [plain_text(m) for m in mails]
    for text, name, level, enrolment_id in zip(texts, ("Léo", "Jade"), ("CP", "grande section"), ("enr-leo", "enr-jade"), strict=True):
        assert f"L'inscription scolaire de {name} est confirmée" in text
        assert f"- Niveau : {level}" in text and "- École : École Les Tilleuls" in text
        assert f"/inscription-scolaire/{enrolment_id}/certificat" in text
    await n.on_deleted(envelope(AccountDeleted(account_id=ACC, deleted_at=NOW), "evt-deleted"))
    assert "children" not in store.recipients[ACC]


async def test_an_enrolment_email_says_your_child_when_the_file_was_not_seen() -> None:
    store, mailer = MemoryStore(), ScriptedMailer()
    await store.remember_recipient(ACC, "marie@example.org", "Marie")
    await notifier(store, mailer).on_family_event(envelope(EVENTS["enrolment_confirmed"]))
    ((_, mail),) = mailer.sent
    assert "L'inscription scolaire de votre enfant est confirmée" in plain_text(mail)


def test_validated_says_vos_enfants_for_two_children_and_votre_enfant_for_one() -> None:
    two = EVENTS["dossier_validated"].model_copy(update={"children": [
        Child(child_id="c-1", first_name="Léo", last_name="Durand", birth_date=date(2021, 3, 14)),
        Child(child_id="c-2", first_name="Zoé", last_name="Durand", birth_date=date(2023, 6, 2)),
    ]})
    _, rendered = render(two)
    assert "inscrire vos enfants à l'école (Léo, Zoé)" in rendered.text
    assert "inscrire vos enfants à l" in rendered.html
    assert "inscrire votre enfant à l'école (Léo)" in render(EVENTS["dossier_validated"])[1].text


def test_the_validation_subject_says_vos_enfants_for_two_children_and_votre_enfant_for_one() -> None:
    two = EVENTS["dossier_validated"].model_copy(update={"children": [
        Child(child_id="c-1", first_name="Léo", last_name="Durand", birth_date=date(2021, 3, 14)),
        Child(child_id="c-2", first_name="Zoé", last_name="Durand", birth_date=date(2023, 6, 2)),
    ]})
    mail, rendered = render(two)
    assert (mail.template, mail.subject) == ("dossier_validated", PLURAL_SUBJECTS["dossier_validated"])
    assert rendered.subject == PLURAL_SUBJECTS["dossier_validated"] and "Léo" not in rendered.subject
    assert render(EVENTS["dossier_validated"])[0].subject == SUBJECTS["dossier_validated"]
    assert ">Inscrire mes enfants<" in rendered.html and ">Inscrire mon enfant<" in render(EVENTS["dossier_validated"])[1].html


@pytest.mark.parametrize("template", ["enrolment_confirmed", "enrolment_refused", "derogation_accepted", "derogation_refused"])
def test_every_enrolment_email_names_the_child_the_projection_knows(template: str) -> None:
    data = EVENTS[template]
    fields = {**data.model_dump(), "display_name": "Marie Dupont", "child_first_name": "Léo"}
    mail = domain.mail_for(data.event_type, fields)
    assert mail is not None
    rendered = Renderer(SETTINGS).render(mail, fields, NOW)
    assert "Léo" in rendered.text and "Léo" in rendered.html
    assert "Léo" not in mail.subject  # subjects stay in the delivery log: never a name
