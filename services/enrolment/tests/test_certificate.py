"""The certificat d'inscription as printed: one page, its signature block, unbroken dates, its
metadata and its verification code (rendered in this process: no service, no I/O)."""

import asyncio
import io
import re
from datetime import date

from pypdf import PdfReader

from services.enrolment import domain
from services.enrolment.certificate import Certificate, render_html, render_pdf

# The longest content the sample town and the household forms allow, to make a second page likely.
LONGEST = Certificate(
    town="Montclair-sur-Loire", town_postcode="45190", signatory_name="Claire Vasseur",
    signatory_title="L'adjointe au Maire chargée de l'éducation", child_first_name="Marie-Charlotte Éléonore",
    child_last_name="de La Rochefoucauld-Montmorency", child_birth_date=domain.french_date(date(2016, 12, 31)),
    level_label="toute petite section",
    school_name="École maternelle et élémentaire publique Jean-Baptiste Poquelin dit Molière",
    school_address="128 avenue du Maréchal de Lattre de Tassigny, 45190 Montclair-sur-Loire",
    school_year="2026-2027", reference="INS-2026-3F2B8C1D", issued_on=domain.french_date(date(2026, 12, 17)),
    derogation=True, verification_code="7KQD-M2XF-9PHA",
    verification_url="https://portail.montclair-sur-loire.fr/verifier/7KQD-M2XF-9PHA",
)


def _pdf(certificate: Certificate) -> PdfReader:
    return PdfReader(io.BytesIO(asyncio.run(render_pdf(certificate, in_process=True))))


def test_the_certificate_is_one_page_with_its_signature_block_dates_and_verification_code_on_it() -> None:
    pdf = _pdf(LONGEST)
    assert len(pdf.pages) == 1
    lines = [re.sub(r"\s+", " ", line).strip() for line in pdf.pages[0].extract_text().splitlines()]
    assert "Fait à Montclair-sur-Loire, le 17 décembre 2026" in lines  # the date on one line
    assert "Né(e) le 31 décembre 2016" in lines
    signature = lines.index("Pour le Maire et par délégation,")
    assert lines[signature + 1:signature + 3] == ["L'adjointe au Maire chargée de l'éducation,", "Claire Vasseur"]
    assert not any("Le Maire," in line for line in lines)  # the mayor does not sign « par délégation » of herself
    text = " ".join(lines)
    assert "7KQD-M2XF-9PHA" in text and "https://portail.montclair-sur-loire.fr/verifier/7KQD-M2XF-9PHA" in text


def test_the_certificate_pdf_says_its_title_author_and_language() -> None:
    pdf = _pdf(LONGEST)
    assert pdf.metadata is not None
    assert pdf.metadata.title == "Certificat d'inscription scolaire — INS-2026-3F2B8C1D"
    assert pdf.metadata.author == "Ville de Montclair-sur-Loire — Service Scolaire et Périscolaire"
    assert pdf.trailer["/Root"]["/Lang"] == "fr"


def test_the_certificate_holds_no_empty_signature_box() -> None:
    assert 'class="box"' not in render_html(LONGEST)
