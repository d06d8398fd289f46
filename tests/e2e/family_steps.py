"""What a family does in the portal, click by click, with or without JavaScript: the same steps
serve both journeys. Each action that lands on a page ends with `journey.step(...)` (axe-core and
a screenshot), and each step checks what the person should see there."""

from __future__ import annotations

import io
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import FilePayload, Locator, Page, expect
from pypdf import PdfReader

from tests.e2e.journey import Journey
from tests.e2e.mailbox import link_in, wait_for_mail
from tests.integration.test_documents import image_bytes, pdf_bytes

GATEWAY = "http://127.0.0.1:8080"
PASSWORD = "tartine au miel de mai"
SECTOR_SCHOOLS = ("mat-tilleuls", "elem-jaures")  # those of rue des Tilleuls on the sample map
ENROL_BUTTON = "Inscription Scolaire Maternelle ou Élémentaire"  # the manual's words


def _surname() -> str:
    """A family name no other file in the agents' queue has, so the agent finds this one."""
    return "Lefèvre-" + "".join(random.choices(string.ascii_lowercase, k=6)).capitalize()


@dataclass(frozen=True)
class Child:
    first_name: str
    birth_date: str  # ISO, as a date field takes it


@dataclass(frozen=True)
class Family:
    email: str = field(default_factory=lambda: f"famille.{uuid.uuid4().hex[:10]}@example.org")
    first_name: str = "Dominique"
    last_name: str = field(default_factory=_surname)
    password: str = PASSWORD
    # On the sample sector map: both schools of rue des Tilleuls (maternelle and élémentaire).
    number: str = "12"
    street: str = "rue des Tilleuls"
    postcode: str = "45190"
    town: str = "Montclair-sur-Loire"
    children: tuple[Child, ...] = (Child("Léa", "2021-05-14"), Child("Noé", "2023-09-02"))

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def child_name(self, child: Child) -> str:
        return f"{child.first_name} {self.last_name}"


def create_account(journey: Journey, family: Family) -> None:
    page = journey.page
    page.goto(f"{GATEWAY}/")
    journey.step("accueil")
    page.get_by_role("link", name="Créer mon espace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Créer mon espace")
    journey.step("creer mon espace")
    page.get_by_label("Adresse email").fill(family.email)
    page.get_by_label("Prénom et nom").fill(family.name)
    page.get_by_label("Mot de passe", exact=True).fill(family.password)
    page.get_by_label("Confirmer le mot de passe").fill(family.password)
    page.get_by_role("button", name="Créer mon espace").click()
    expect(page).to_have_url(re.compile(r"/verifiez-vos-emails\?email="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Consultez vos emails")
    expect(page.get_by_text(family.email).first).to_be_visible()
    journey.step("verifiez vos emails")
    journey.back_and_refresh()


def activate_from_email(journey: Journey, family: Family) -> None:
    mail = wait_for_mail(family.email, "Activez votre Espace Citoyen Premium")
    page = journey.page
    page.goto(link_in(mail, "/activation?jeton="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Activer mon espace")
    journey.step("lien d'activation")
    page.get_by_role("button", name="Activer mon espace").click()
    # As the manual says: back to the home page, to log in from there.
    expect(page).to_have_url(f"{GATEWAY}/")
    activated = "Votre espace est activé"
    expect(page.get_by_role("status")).to_contain_text(activated)
    journey.step("espace active")
    journey.back_and_refresh(gone=activated)
    page.get_by_role("link", name="Se connecter").click()


def log_in(journey: Journey, email: str, password: str, *, landing: str = "/mon-espace", typo: bool = False) -> None:
    """Fills the login form of the page the tab shows (a login page, or one that links to it);
    with ``typo``, a wrong password first: one message for the form, on the page the post led to."""
    page = journey.page
    if not page.url.split("?")[0].endswith("/connexion"):
        page.goto(f"{GATEWAY}/connexion")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    journey.step("se connecter")
    if typo:
        page.get_by_label("Adresse email").fill(email)
        page.get_by_label("Mot de passe").fill(password + " faux")
        page.get_by_role("button", name="Se connecter").click()
        refused = page.get_by_role("alert")
        expect(refused).to_contain_text("Adresse email ou mot de passe incorrect.")
        expect(page.get_by_text("Adresse email ou mot de passe incorrect.")).to_have_count(1)
        journey.step("connexion refusee")
        journey.back_and_refresh(gone="Adresse email ou mot de passe incorrect.")
    page.get_by_label("Adresse email").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{GATEWAY}{landing}")
    journey.back_and_refresh()


def my_space(journey: Journey, family: Family) -> None:
    page = journey.page
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {family.name}")
    journey.step("mon espace")


def declare_household(journey: Journey, family: Family) -> None:
    """Déclarer mon entourage: the address, the parent, and the children, one « Créer une fiche
    enfant » at a time (a round trip to the server, so it works without JavaScript too)."""
    page = journey.page
    go_to(journey, "Mon entourage")
    expect(page.get_by_role("heading", level=1)).to_have_text("Déclarer mon entourage")
    journey.step("declarer mon entourage")
    address = page.get_by_role("group", name="Adresse du domicile")
    address.get_by_label("Numéro").fill(family.number)
    address.get_by_label("Voie").fill(family.street)
    address.get_by_label("Code postal").fill(family.postcode)
    address.get_by_label("Commune").fill(family.town)
    parent = page.get_by_role("group", name="Vous, représentant·e légal·e")
    parent.get_by_label("Prénom").fill(family.first_name)
    parent.get_by_label("Nom", exact=True).fill(family.last_name)
    parent.get_by_label("Lien avec l'enfant").select_option("mère")
    for number, child in enumerate(family.children, start=1):
        block = page.get_by_role("group", name=f"Enfant {number}", exact=True)
        if block.count() == 0:
            page.get_by_role("button", name="Créer une fiche enfant").click()
            created = f"La fiche « Enfant {number} » est créée"
            expect(page.get_by_role("status")).to_contain_text(created)
            journey.step(f"enfant {number} ajoute")
            # What was typed before is still there after a refresh; the notice is not.
            journey.back_and_refresh(gone=created)
            expect(address.get_by_label("Voie")).to_have_value(family.street)
        block.get_by_label("Prénom").fill(child.first_name)
        block.get_by_label("Nom", exact=True).fill(family.last_name)
        block.get_by_label("Date de naissance").fill(child.birth_date)
    # A postcode short of a digit: refused, the form comes back (through a redirect) as typed.
    address.get_by_label("Code postal").fill(family.postcode[:4])
    page.get_by_role("button", name="Enregistrer et continuer").click()
    expect(page.get_by_role("alert")).to_contain_text("Le code postal doit comporter 5 chiffres")
    journey.step("entourage a corriger")
    journey.back_and_refresh()
    expect(page.get_by_role("group", name="Enfant 2", exact=True).get_by_label("Prénom")).to_have_value(
        family.children[1].first_name)
    address.get_by_label("Code postal").fill(family.postcode)
    page.get_by_role("button", name="Enregistrer et continuer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes pièces justificatives")
    journey.step("pieces justificatives")
    journey.back_and_refresh(gone="Votre entourage est enregistré")


def proof(page: Page, title: str) -> Locator:
    """The block of one required proof, found by its heading."""
    return page.get_by_role("region", name=title, exact=True)


def send_proofs(journey: Journey, files: dict[str, FilePayload], *, replacing: bool = False) -> None:
    """Several proofs in one go: a file chosen in each proof's block, then one button."""
    page = journey.page
    for title, file in files.items():
        proof(page, title).get_by_label("Nouveau fichier" if replacing else "Fichier", exact=True).set_input_files(file)
    page.get_by_role("button", name="Envoyer les documents choisis").click()
    sent = page.get_by_role("status").filter(has_text="a été envoyé")
    for title in files:
        expect(sent).to_contain_text(f"Votre document « {title} » a été envoyé")
    for title, file in files.items():
        if file["name"].lower().endswith(".heic"):  # a phone photo: documents keeps it as a JPEG
            expect(sent).to_contain_text(f"le fichier {file['name']} a été converti en JPEG")
    journey.step(f"{len(files)} document(s) envoye(s)")
    journey.back_and_refresh(gone="a été envoyé")


def wait_for_virus_scans(journey: Journey) -> None:
    page = journey.page
    journey.reload_until(lambda: page.get_by_role("link", name="Actualiser la page").count() == 0,
                         "the documents' virus scans")
    journey.step("pieces analysees")


def submit_file(journey: Journey) -> None:
    page = journey.page
    page.get_by_role("button", name="Transmettre mon dossier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon dossier")
    expect(page.get_by_role("status")).to_contain_text("Votre dossier a été transmis")
    journey.step("dossier transmis")
    journey.back_and_refresh(gone="Votre dossier a été transmis")


def submits_a_complete_file(parent: Journey, family: Family) -> None:
    """From the home page to a file sent to the service: the account, its activation from the
    email, the household with two children and the four proofs (one of them a phone photo)."""
    create_account(parent, family)
    activate_from_email(parent, family)
    log_in(parent, family.email, family.password, typo=True)
    my_space(parent, family)
    expect(parent.page.get_by_text("Vous n'avez pas encore déclaré votre entourage.")).to_be_visible()
    expect(parent.page.get_by_role("link", name="Inscription scolaire")).to_have_count(0)
    declare_household(parent, family)
    lea, noe = family.children
    # Four files in one go, one of them a phone photo (documents converts HEIC to JPEG).
    send_proofs(parent, {
        "Justificatif de domicile": pdf_file("facture-electricite.pdf"),
        f"Pièce d'identité de {family.name}": image_file("IMG_0042.HEIC", "HEIF", "image/heic"),
        f"Pièce d'identité de l'enfant {family.child_name(lea)}": pdf_file("livret-de-famille.pdf"),
        f"Pièce d'identité de l'enfant {family.child_name(noe)}": image_file("acte-naissance-noe.png", "PNG", "image/png"),
    })
    wait_for_virus_scans(parent)
    submit_file(parent)
    wait_for_mail(family.email, "Votre dossier a bien été transmis")


def go_to(journey: Journey, menu_entry: str) -> None:
    journey.page.get_by_role("navigation", name="Menu principal").get_by_role("link", name=menu_entry).click()


def enrols_both_children(parent: Journey, family: Family, artifacts: Path) -> None:
    """Once the file is validated: « Inscription scolaire » on Mon espace, each child enrolled in
    the sector school, and each certificate downloaded (a real PDF naming the child)."""
    wait_for_mail(family.email, "Votre dossier est validé")
    page = parent.page
    go_to(parent, "Mon espace")
    enrol = page.get_by_role("link", name=ENROL_BUTTON)
    parent.reload_until(lambda: enrol.count() > 0, f"the « {ENROL_BUTTON} » button after the validation")
    parent.step("mon espace dossier valide")
    enrol.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Inscription scolaire")
    parent.step("inscription scolaire")
    # The dérogation request is folded behind its summary line until asked for.
    expect(page.get_by_role("combobox", name="Motif de la demande")).to_have_count(0)
    for child in family.children:
        page.get_by_role("button", name=f"Inscrire {child.first_name}").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Confirmer l'inscription de {child.first_name}")
        expect(page.get_by_role("region", name="Récapitulatif")).to_contain_text(family.child_name(child))
        parent.step(f"recapitulatif {child.first_name}")
        page.get_by_role("button", name=f"Confirmer l'inscription de {child.first_name}").click()
        expect(page.get_by_role("region", name=family.child_name(child))).to_contain_text("Inscription de")
        parent.step(f"{child.first_name} inscrit")
        parent.back_and_refresh(gone="La demande d'inscription de")
    wait_for_mail(family.email, "Votre inscription scolaire est confirmée")
    # Each certificate is written just after its confirmation.
    parent.reload_until(lambda: page.get_by_text("Le certificat est en cours de préparation").count() == 0,
                        "the certificates")
    parent.step("certificats prets")
    # Printed, the page keeps the enrolments and drops the header's menu and the buttons.
    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Menu principal")).to_be_hidden()
    expect(page.get_by_role("region", name=family.child_name(family.children[0]))).to_be_visible()
    page.screenshot(path=artifacts / "impression-inscription-scolaire.png", full_page=True)
    page.emulate_media(media="screen")
    for child in family.children:
        certificate = downloaded_certificate(parent, child.first_name, artifacts)
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(certificate)).pages)
        assert "Certificat d'inscription scolaire" in text, text
        assert f"{family.last_name.upper()} {child.first_name}" in text, text
    mistakes_on_the_rarer_forms(parent, family)


def mistakes_on_the_rarer_forms(parent: Journey, family: Family) -> None:
    """A dérogation request sent without its school, reason or details, then a password change
    whose confirmation differs: each refusal comes back through a redirect, so refresh, Back and
    Forward are plain GETs (never « Confirmer le renvoi du formulaire ») and its errors are said once."""
    page = parent.page
    first = family.children[0].first_name
    page.goto(f"{GATEWAY}/inscription-scolaire")
    page.get_by_text(f"Demander une autre école (dérogation) pour {first}").click()
    page.get_by_role("button", name=f"Demander une dérogation pour {first}").click()
    expect(page.get_by_role("alert")).to_contain_text("Choisissez le motif de votre demande.")
    expect(page.get_by_role("combobox", name="Motif de la demande")).to_be_visible()  # the fold open again
    parent.step("derogation a completer")
    parent.back_and_refresh(gone="Choisissez le motif de votre demande.")

    go_to(parent, "Mon compte")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon compte")
    page.get_by_label("Mot de passe actuel").fill(family.password)
    page.get_by_label("Nouveau mot de passe", exact=True).fill("une autre phrase de passe bien longue")
    page.get_by_label("Confirmer le nouveau mot de passe").fill("une autre phrase de passe")
    page.get_by_role("button", name="Changer mon mot de passe").click()
    mismatch = "Les deux mots de passe ne sont pas identiques"
    expect(page.get_by_role("alert")).to_contain_text(mismatch)
    parent.step("mot de passe a corriger")
    parent.back_and_refresh(gone=mismatch)


def downloaded_certificate(parent: Journey, first_name: str, artifacts: Path) -> bytes:
    page = parent.page
    with page.expect_download() as download:
        page.get_by_role("link", name=f"Télécharger le certificat d'inscription de {first_name} (PDF)").click()
    saved = artifacts / (download.value.suggested_filename or f"certificat-{first_name}.pdf")
    download.value.save_as(saved)
    print(f"[e2e] certificate of {first_name}: {saved}")
    body = saved.read_bytes()
    assert body.startswith(b"%PDF"), body[:40]
    return body


def pdf_file(name: str) -> FilePayload:
    return {"name": name, "mimeType": "application/pdf", "buffer": pdf_bytes(name)}


def image_file(name: str, image_format: str, mime: str) -> FilePayload:
    return {"name": name, "mimeType": mime, "buffer": image_bytes(image_format, (640, 480))}
