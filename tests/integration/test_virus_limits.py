"""Virus-scan limits (issue #18, item 9): a scan that reached one of clamd's limits, or could not
finish, is never « clean ». The test file is built here: a small PDF whose compressed content
stream inflates past clamd's limits, with the EICAR test signature after the padding."""

from __future__ import annotations

import re
import zlib
from typing import Any

import pytest

from services.documents.settings import DocumentsSettings
from tests.integration.conftest import ROOT
from tests.integration.identity_client import wait_for_event
from tests.integration.test_documents import TOPIC, Family, eicar, family  # noqa: F401 (fixture)

CLAMD_CONF = ROOT / ".local/data/clamav/clamd.conf"


def inflating_pdf(padding_bytes: int, tail: bytes) -> bytes:
    """A one-page PDF whose Flate content stream holds ``padding_bytes`` spaces, then ``tail``:
    about a thousandth of the padding once compressed."""
    squeezer = zlib.compressobj(9)
    block = b" " * (1 << 20)
    stream = b"".join(squeezer.compress(block) for _ in range(padding_bytes >> 20)) + squeezer.compress(tail) + squeezer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return pdf + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def clamd_limit(name: str) -> int:
    value = re.search(rf"^{name} (\d+)([KM]?)$", CLAMD_CONF.read_text(), re.M)
    assert value is not None, f"{name} not set in {CLAMD_CONF}"
    return int(value[1]) * {"": 1, "K": 1024, "M": 1024 * 1024}[value[2]]


def test_clamd_takes_a_whole_upload_and_says_when_it_stops_at_a_limit() -> None:
    assert clamd_limit("StreamMaxLength") >= DocumentsSettings().max_upload_bytes
    assert re.search(r"^AlertExceedsMax yes$", CLAMD_CONF.read_text(), re.M)


async def test_the_signature_after_a_short_padding_is_found(family: Family) -> None:
    document = await family.uploaded(inflating_pdf(1 << 20, eicar()), "court.pdf")
    assert (await family.wait_status(document["id"], "infected", timeout_s=60))["status"] == "infected"


async def test_a_pdf_inflating_past_clamds_limits_with_a_signature_after_the_padding_is_quarantined_not_clean(family: Family) -> None:
    padding = max(clamd_limit("MaxFileSize"), clamd_limit("MaxScanSize")) + (8 << 20)
    data = inflating_pdf(padding, eicar())
    assert len(data) < DocumentsSettings().max_upload_bytes // 10  # a small upload
    document = await family.uploaded(data, "bombe.pdf")
    quarantined = await family.wait_status(document["id"], "quarantined", timeout_s=90)
    assert quarantined["reason"].startswith("À vérifier")
    refused = await family.http.get(f"/documents/{document['id']}/download")
    assert refused.status_code == 410 and "à vérifier" in refused.json()["detail"]
    event = await wait_for_event(TOPIC, lambda e: e["subject"] == document["id"] and e["type"].endswith("DocumentScanned"))
    assert event["data"]["result"] == "quarantined"
