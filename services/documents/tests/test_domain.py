"""Rules of the documents service, without I/O."""

from datetime import timedelta

import pytest

from services.documents import domain
from services.documents.domain import HEIC, JPEG, PDF, PNG, Kind, Status


def _heif(brand: bytes, compatible: bytes = b"mif1heic") -> bytes:
    return b"\x00\x00\x00\x1cftyp" + brand + b"\x00\x00\x00\x00" + compatible + b"\x00" * 32


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20, JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20, PNG),
        (_heif(b"heic"), HEIC),
        (_heif(b"mif1"), HEIC),
        (_heif(b"heix"), HEIC),
    ],
)
def test_the_type_is_decided_by_the_first_bytes(head: bytes, expected: domain.FileType) -> None:
    assert domain.detect_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 30,  # a ZIP (or .docx) named .pdf
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 60,  # a Windows executable
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 60,
        b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20,
        _heif(b"avif", b"avifmif1"),
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
        b"Bonjour, ceci est un texte",
        b"",
        b" %PDF-1.4",  # the signature must come first
    ],
)
def test_anything_else_is_refused(head: bytes) -> None:
    assert domain.detect_type(head) is None


def test_a_heic_photo_is_converted_and_the_rest_is_stored_as_is() -> None:
    assert HEIC.needs_conversion
    assert not any(t.needs_conversion for t in (PDF, JPEG, PNG))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Carte d'identité.pdf", "Carte d'identité.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\Léa\\Documents\\facture EDF.pdf", "facture EDF.pdf"),
        ("<img src=x onerror=alert(1)>.png", "img src_x onerror_alert(1)_.png"),
        ("  .cache  ", "cache"),
        ("nom\x00avec\ncontrôle\t.pdf", "nomaveccontrôle.pdf"),
        ('guillemets"et;points-virgules.pdf', "guillemets_et_points-virgules.pdf"),
        ("", "document"),
        (None, "document"),
        ("...", "document"),
        ("e\u0301cole.pdf", "\u00e9cole.pdf"),  # NFC
    ],
)
def test_file_names_are_sanitised(raw: str | None, clean: str) -> None:
    assert domain.sanitise_filename(raw) == clean


def test_a_long_name_is_cut_and_keeps_its_extension() -> None:
    name = domain.sanitise_filename("a" * 300 + ".pdf")
    assert len(name) == domain.MAX_NAME_LENGTH
    assert name.endswith(".pdf")


@pytest.mark.parametrize(
    ("original", "detected", "shown"),
    [
        ("scan.pdf", PDF, "scan.pdf"),
        ("photo.png.pdf", PNG, "photo.png.png"),
        ("IMG_0042.HEIC", HEIC, "IMG_0042.jpg"),
        ("photo.JPEG", JPEG, "photo.JPEG"),
        ("sans extension", PDF, "sans extension.pdf"),
    ],
)
def test_the_shown_name_carries_the_stored_types_extension(original: str, detected: domain.FileType, shown: str) -> None:
    assert domain.stored_name(original, detected) == shown


def test_ascii_filename_folds_accents_for_the_header_fallback() -> None:
    assert domain.ascii_filename('Pièce d"identité.pdf') == "Piece d_identite.pdf"


def test_object_keys_are_random_and_never_the_file_name() -> None:
    a, b = domain.new_document_id(), domain.new_document_id()
    assert a != b and domain.is_document_id(a)
    assert domain.object_key("acc", a) == f"documents/acc/{a}"
    assert not domain.is_document_id("../etc") and not domain.is_document_id("A" * 36)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.UPLOADING, Status.PENDING),
        (Status.PENDING, Status.CLEAN),
        (Status.PENDING, Status.INFECTED),
        (Status.PENDING, Status.DELETED),
        (Status.CLEAN, Status.DELETED),
        (Status.INFECTED, Status.DELETED),
    ],
)
def test_allowed_transitions(current: Status, target: Status) -> None:
    assert domain.transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.UPLOADING, Status.CLEAN),  # never clean without a scan
        (Status.INFECTED, Status.CLEAN),
        (Status.CLEAN, Status.INFECTED),
        (Status.CLEAN, Status.PENDING),
        (Status.DELETED, Status.PENDING),
        (Status.DELETED, Status.CLEAN),
    ],
)
def test_forbidden_transitions(current: Status, target: Status) -> None:
    with pytest.raises(domain.InvalidTransition):
        domain.transition(current, target)


def _doc(status: Status, owner: str = "me") -> dict:
    return {"status": status, "account_id": owner}


@pytest.mark.parametrize("status", [Status.PENDING, Status.CLEAN, Status.INFECTED])
def test_the_owner_sees_their_document_in_every_status_but_the_tombstone(status: Status) -> None:
    assert domain.visible_to(_doc(status), account_id="me", role="family", submitted=False)
    assert not domain.visible_to(_doc(status), account_id="other", role="family", submitted=False)


def test_nobody_sees_a_tombstone_or_an_unfinished_upload() -> None:
    for status in (Status.DELETED, Status.UPLOADING):
        assert not domain.visible_to(_doc(status), account_id="me", role="family", submitted=True)


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_staff_see_only_clean_documents_of_submitted_files(role: str) -> None:
    assert domain.visible_to(_doc(Status.CLEAN), account_id="staff", role=role, submitted=True)
    assert not domain.visible_to(_doc(Status.CLEAN), account_id="staff", role=role, submitted=False)
    assert not domain.visible_to(_doc(Status.PENDING), account_id="staff", role=role, submitted=True)
    assert not domain.visible_to(_doc(Status.INFECTED), account_id="staff", role=role, submitted=True)


def test_downloads_need_a_stored_object() -> None:
    assert domain.downloadable_by(_doc(Status.PENDING), account_id="me", role="family", submitted=False)
    assert domain.downloadable_by(_doc(Status.CLEAN), account_id="me", role="family", submitted=False)
    assert not domain.downloadable_by(_doc(Status.INFECTED), account_id="me", role="family", submitted=False)


def test_scan_retries_back_off_up_to_a_ceiling() -> None:
    delays = [domain.scan_retry_delay(n, 2, 30) for n in range(1, 7)]
    assert delays == [timedelta(seconds=s) for s in (2, 4, 8, 16, 30, 30)]


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("stream: OK\0", (True, None)),
        ("stream: Eicar-Test-Signature FOUND\0", (False, "Eicar-Test-Signature")),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", (False, "Win.Test.EICAR_HDB-1")),
    ],
)
def test_clamd_answers_are_read(answer: str, verdict: tuple) -> None:
    assert domain.clamd_signature(answer) == verdict


@pytest.mark.parametrize("answer", ["stream: Can't allocate memory ERROR", ""])
def test_a_clamd_error_is_never_a_verdict(answer: str) -> None:
    with pytest.raises(ValueError):
        domain.clamd_signature(answer)


@pytest.mark.parametrize("answer", [
    "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0",
    "stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND\0",
    "stream: Heuristics.Limits.Exceeded.MaxScanTime FOUND\0",
    "INSTREAM size limit exceeded. ERROR\0",
])
def test_a_scan_that_reached_a_limit_is_never_clean_nor_a_virus_but_to_be_checked(answer: str) -> None:
    clean, signature = domain.clamd_signature(answer)
    assert not clean and domain.is_limit(signature)
    assert not domain.is_limit(domain.clamd_signature("stream: Eicar-Test-Signature FOUND\0")[1])


def test_a_quarantined_document_is_shown_to_agents_but_opened_by_no_one() -> None:
    document = {"status": Status.QUARANTINED, "account_id": "acc"}
    assert domain.visible_to(document, account_id="x", role="agent", submitted=True)
    for role, account in (("agent", "x"), ("family", "acc")):
        assert not domain.downloadable_by(document, account_id=account, role=role, submitted=True)
    assert domain.transition(Status.PENDING, Status.QUARANTINED) is Status.QUARANTINED
    assert not domain.can_transition(Status.QUARANTINED, Status.CLEAN)


def test_only_a_scan_clamd_took_and_could_not_finish_is_given_up_after_the_attempts() -> None:
    assert domain.scan_never_finishes(True, 3, 3)
    assert not domain.scan_never_finishes(True, 2, 3)
    assert not domain.scan_never_finishes(False, 30, 3)  # clamd down: the document waits for it


def test_the_infected_reason_tells_the_family_what_happened_in_french() -> None:
    reason = domain.infected_reason("Eicar-Test-Signature")
    assert "virus" in reason and "supprimé" in reason and "Eicar-Test-Signature" in reason


def test_the_sworn_statement_for_a_childs_identity_names_both_people() -> None:
    statement = domain.sworn_statement("child_identity", " Camille  Martin ", "Lou Martin", None, "Ville de Montclair")
    assert statement.declarant == "Camille Martin"
    assert "Je soussigné·e Camille Martin" in statement.paragraphs[0]
    assert "Lou Martin" in statement.paragraphs[0]
    assert any("D131-3-1" in p for p in statement.paragraphs)
    assert statement.town == "Ville de Montclair"


def test_the_sworn_statement_for_an_address_carries_the_address() -> None:
    statement = domain.sworn_statement("proof_of_address", "Camille Martin", None, "12 rue des Lilas", "X")
    assert "12 rue des Lilas" in statement.paragraphs[0]


@pytest.mark.parametrize(
    ("subject", "declarant", "child", "address", "count"),
    [
        ("child_identity", "Camille", "Lou", None, 0),
        ("guardian_identity", "Camille", None, None, 0),
        ("proof_of_address", "Camille", None, "1 rue", 0),
        ("child_identity", "Camille", None, None, 1),
        ("proof_of_address", "Camille", None, "  ", 1),
        ("other", "Camille", None, None, 1),
        ("guardian_identity", " \x00 ", None, None, 1),
    ],
)
def test_sworn_statement_inputs_are_checked(subject: str, declarant: str, child: str | None, address: str | None, count: int) -> None:
    assert len(domain.sworn_statement_problems(subject, declarant, child, address)) == count


def test_every_kind_has_a_french_label() -> None:
    assert set(domain.KIND_LABELS) == set(Kind)
