"""Renders every email with sample data to files, for review by people who write French.

    python -m services.notifier.render_samples OUTDIR

writes ``OUTDIR/<template>.txt``, ``<template>.html`` and ``<template>.eml`` (the whole MIME
message, openable in a mail client) for each entry of the registry.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.notifier import domain
from services.notifier.render import Renderer, build_message
from services.notifier.settings import NotifierSettings

SAMPLE_TIME = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)


def sample_data(mail: domain.MailSpec) -> dict[str, Any]:
    """Data as the event would carry it; a name with an apostrophe and accents, to see escaping."""
    data: dict[str, Any] = {
        "account_id": "0b7f3c1e-5d0a-4a8e-9a52-3f1c2d4e5a6b",
        "email": "marie.dupont@example.org",
        "display_name": "Marie-Hélène D'Arcy",
        "registered_at": SAMPLE_TIME,
        "activated_at": SAMPLE_TIME,
        "attempted_at": SAMPLE_TIME,
        "changed_at": SAMPLE_TIME,
        "via": "reset",
    }
    if mail.carries_link:
        ttl = timedelta(hours=48) if mail.template == "activation" else timedelta(hours=1)
        if mail.template == "staff_invitation":
            ttl = timedelta(hours=72)
        data["link"] = "http://127.0.0.1:8080/activation?jeton=EXEMPLE_de_jeton&x=1"
        data["expires_at"] = SAMPLE_TIME + ttl
        data["purpose"] = "staff_invitation" if mail.template == "staff_invitation" else "reset"
    data.update(FAMILY_SAMPLES.get(mail.template, {}))
    return data


# The household, documents and enrolment events' own fields (reasons with "&" and quotes in them,
# to see the HTML part escape them).
_DOSSIER = "5d0a4a8e-0b7f-4c1e-9a52-3f1c2d4e5a6b"
# child_first_name: what the notifier's projection of the validated file adds (events carry no name).
_ENROLMENT = {"enrolment_id": "9a523f1c-2d4e-4a6b-8b7f-3c1e5d0a4a8e", "child_id": "c0ffee00-5d0a-4a8e-9a52-3f1c2d4e5a6b",
              "child_first_name": "Léo"}
FAMILY_SAMPLES: dict[str, dict[str, Any]] = {
    "dossier_submitted": {"dossier_id": _DOSSIER, "submitted_at": SAMPLE_TIME, "resubmission": False, "document_ids": ["d1", "d2"]},
    "corrections_requested": {
        "dossier_id": _DOSSIER, "requested_at": SAMPLE_TIME,
        "corrections": [
            {"item": "address.postcode", "reason": "Le code postal ne correspond pas à la commune (45190 & non 45100)."},
            {"item": "3f1c2d4e-5d0a-4a8e-9a52-3f1c2d4e5a6b", "reason": "Le justificatif de domicile doit dater de moins de 3 mois & être à votre nom."},
        ],
    },
    "dossier_validated": {
        "dossier_id": _DOSSIER, "validated_at": SAMPLE_TIME, "document_ids": ["d1"],
        "address": {"number": "12 bis", "street": "rue des Lilas", "postcode": "45190", "town": "Montclair-sur-Loire"},
        "children": [{"child_id": "c1", "first_name": "Léo", "last_name": "D'Arcy", "birth_date": "2021-03-14"},
                     {"child_id": "c2", "first_name": "Inès", "last_name": "D'Arcy", "birth_date": "2019-11-02"}],
    },
    "dossier_rejected": {"dossier_id": _DOSSIER, "rejected_at": SAMPLE_TIME, "reason": "Votre domicile n'est pas situé sur la commune (Orléans & environs)."},
    "document_infected": {
        "document_id": "3f1c2d4e-5d0a-4a8e-9a52-3f1c2d4e5a6b", "kind": "proof_of_address", "result": "infected",
        "reason": "Le fichier contient un programme malveillant « Win.Test.EICAR_HDB-1 ».", "scanned_at": SAMPLE_TIME,
    },
    "enrolment_confirmed": {
        **_ENROLMENT, "school_id": "ecole-les-tilleuls", "school_name": "École élémentaire Les Tilleuls", "level": "CP",
        "school_year": "2027-2028", "reference": "INS-2027-3F2B8C1D", "certificate_available": True, "confirmed_at": SAMPLE_TIME,
    },
    "enrolment_refused": {**_ENROLMENT, "school_year": "2027-2028", "reason": "L'enfant est déjà inscrit dans une autre commune & scolarisé."},
    "derogation_accepted": {**_ENROLMENT, "requested_school_id": "ecole-jean-moulin", "decision": "accepted", "reason": None, "decided_at": SAMPLE_TIME},
    "derogation_refused": {
        **_ENROLMENT, "requested_school_id": "ecole-jean-moulin", "decision": "refused",
        "reason": "Plus de place en CP à l'école Jean Moulin & la liste d'attente est close.", "decided_at": SAMPLE_TIME,
    },
}


def render_all(outdir: Path, settings: NotifierSettings | None = None) -> list[Path]:
    settings = settings or NotifierSettings()
    renderer = Renderer(settings)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for mail in domain.MAILS:
        data = sample_data(mail)
        rendered = renderer.render(mail, data, SAMPLE_TIME)
        message = build_message(
            rendered, sender=settings.sender, recipient=data["email"], display_name=data["display_name"],
            event_id=f"sample-{mail.template}", date=SAMPLE_TIME,
        )
        for suffix, content in ((".txt", f"Objet : {rendered.subject}\n\n{rendered.text}"), (".html", rendered.html), (".eml", message.as_string())):
            path = outdir / f"{mail.template}{suffix}"
            path.write_text(content, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m services.notifier.render_samples OUTDIR", file=sys.stderr)
        return 2
    for path in render_all(Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
