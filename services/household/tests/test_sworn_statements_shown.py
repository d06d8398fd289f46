"""A sworn statement (attestation sur l'honneur) is shown to agents as such, with the piece it
stands in for, never as the piece itself."""

from services.household import domain
from services.household.api import _document_view

CONTENT = {
    "address": {"number": "12", "street": "rue des Lilas", "postcode": "45190", "town": "Montclair-sur-Loire",
                "proof_document_id": "d-addr"},
    "guardians": [{"first_name": "Camille", "last_name": "Martin", "relationship": "mère", "identity_document_id": "d-g1"}],
    "children": [],
    "recommended": [],
}


def test_a_sworn_statement_is_titled_as_such_with_the_piece_it_replaces() -> None:
    proof, identity = domain.attachments(CONTENT)
    sworn = _document_view(proof, {"url": "https://s3/x", "sworn": True})
    assert sworn["title"] == "Attestation sur l'honneur, à la place du justificatif de domicile"
    assert sworn["sworn"] is True and sworn["replaces"] == "le justificatif de domicile"
    assert sworn["requirement"] == "proof_of_address" and sworn["url"] == "https://s3/x"


def test_a_piece_is_titled_by_what_it_is() -> None:
    _, identity = domain.attachments(CONTENT)
    assert _document_view(identity, {"url": None, "sworn": True})["title"] == (
        "Attestation sur l'honneur, à la place de la pièce d'identité de Camille Martin")
    piece = _document_view(identity, {"url": None, "sworn": False})
    assert piece["title"] == "La pièce d'identité de Camille Martin"
    assert piece["sworn"] is False and piece["replaces"] is None
