"""What a family does in the portal, click by click, with or without JavaScript: the same steps
serve both journeys. Each action that lands on a page ends with `journey.step(...)` (axe-core and
a screenshot), and each step checks what the person should see there."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from playwright.sync_api import expect

from tests.e2e.journey import Journey
from tests.e2e.mailbox import link_in, wait_for_mail

GATEWAY = "http://127.0.0.1:8080"
PASSWORD = "tartine au miel de mai"


@dataclass(frozen=True)
class Family:
    email: str = field(default_factory=lambda: f"famille.{uuid.uuid4().hex[:10]}@example.org")
    name: str = "Dominique Lefèvre"
    password: str = PASSWORD


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


def activate_from_email(journey: Journey, family: Family) -> None:
    mail = wait_for_mail(family.email, "Activez votre Espace Citoyen")
    page = journey.page
    page.goto(link_in(mail, "/activation?jeton="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Activer mon espace")
    journey.step("lien d'activation")
    page.get_by_role("button", name="Activer mon espace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre espace est activé")
    journey.step("espace active")
    page.get_by_role("link", name="Se connecter").click()


def log_in(journey: Journey, email: str, password: str, *, landing: str = "/mon-espace") -> None:
    """Fills the login form of the page the tab shows (a login page, or one that links to it)."""
    page = journey.page
    if not page.url.split("?")[0].endswith("/connexion"):
        page.goto(f"{GATEWAY}/connexion")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    journey.step("se connecter")
    page.get_by_label("Adresse email").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(f"{GATEWAY}{landing}")


def my_space(journey: Journey, family: Family) -> None:
    page = journey.page
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {family.name}")
    journey.step("mon espace")
