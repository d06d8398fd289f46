"""Documents against the real gateway, S3 (SeaweedFS), clamd, Kafka and database.

The EICAR test string is assembled at run time (never stored in the repository)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from services.documents.scanner import ClamdScanner
from services.documents.settings import DocumentsSettings
from services.kernel.objectstore import ObjectStore
from services.documents.store import DocumentsStore
from services.documents.upload import ReceivedFile
from services.documents.usecases import DocumentsService, Unavailable
from services.kernel import mongo
from services.kernel.settings import S3Settings
from tests.integration.conftest import ROOT
from tests.integration.identity_client import (
    GATEWAY,
    GOOD_PASSWORD,
    logged_in,
    person,
    registered_and_activated,
    staff_token,
    wait_for_event,
)

API = f"{GATEWAY}/api/documents"
TOPIC = "documents.document.v1"
ECP = str(ROOT / "deploy/local/ecp")


def eicar() -> bytes:
    parts = ["X5O!P%@AP[4\\PZX54(P^)7CC)7}", "$EICAR-STANDARD-", "ANTIVIRUS-TEST-FILE!$H+H*"]
    return "".join(parts).encode()


def pdf_bytes(text: str = "Justificatif") -> bytes:
    body = f"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% {text} {uuid.uuid4()}\n%%EOF\n".encode()
    return body


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, format=fmt)
    return out.getvalue()


def objects() -> ObjectStore:
    return ObjectStore(S3Settings(), public_endpoint="127.0.0.1:9000", public_secure=False, sse=True)


class Family:
    def __init__(self, account_id: str, token: str, client: httpx.AsyncClient, email: str) -> None:
        self.account_id = account_id
        self.headers = {"Authorization": f"Bearer {token}"}
        self.identity = client
        self.email = email
        self.http = httpx.AsyncClient(base_url=API, timeout=60, headers=self.headers)

    async def upload(self, data: bytes, name: str = "piece.pdf", kind: str = "proof_of_address", mime: str = "application/pdf") -> httpx.Response:
        return await self.http.post("/documents", files={"file": (name, data, mime)}, data={"kind": kind})

    async def uploaded(self, data: bytes, name: str = "piece.pdf", kind: str = "proof_of_address") -> dict[str, Any]:
        response = await self.upload(data, name, kind)
        assert response.status_code == 201, response.text
        return response.json()

    async def wait_status(self, document_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            doc = (await self.http.get(f"/documents/{document_id}")).json()
            if doc.get("status") == status:
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"document {document_id} is {doc.get('status')!r}, not {status!r}, after {timeout_s}s")
            await asyncio.sleep(0.3)

    async def close(self) -> None:
        await self.http.aclose()
        await self.identity.aclose()


async def new_family() -> Family:
    client, email = person()
    account_id = await registered_and_activated(client, email)
    tokens = await logged_in(client, email)
    return Family(account_id, tokens["access_token"], client, email)


@pytest.fixture
async def family() -> Any:
    f = await new_family()
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
async def other_family() -> Any:
    f = await new_family()
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
async def documents_db(settings: Any) -> Any:
    client = mongo.connect(settings.mongo_url)
    try:
        yield client["ecp_documents"]
    finally:
        client.close()


async def agent_token() -> str:
    return await staff_token("agent")


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.get(url)


# ---- uploads and types ----------------------------------------------------------------------


async def test_pdf_png_jpeg_and_heic_are_stored_by_content_and_heic_comes_back_as_jpeg(family: Family, documents_db: Any) -> None:
    pdf = pdf_bytes()
    cases = [
        (pdf, "Attestation CAF.pdf", "application/pdf", "Attestation CAF.pdf"),
        (image_bytes("PNG"), "capture.png.pdf", "image/png", "capture.png.png"),  # a PNG renamed .pdf stays a PNG
        (image_bytes("JPEG"), "photo.jpeg", "image/jpeg", "photo.jpeg"),
        (image_bytes("HEIF"), "IMG_1234.HEIC", "image/jpeg", "IMG_1234.jpg"),
    ]
    stored = []
    for data, name, content_type, shown in cases:
        doc = await family.uploaded(data, name, "child_identity")
        assert (doc["content_type"], doc["name"], doc["status"]) == (content_type, shown, "pending")
        stored.append((doc, data))
    for doc, data in stored:
        await family.wait_status(doc["id"], "clean")
        record = await documents_db.documents.find_one({"_id": doc["id"]})
        assert record["object_key"] == f"documents/{family.account_id}/{doc['id']}"  # never the file name
        assert record["received_sha256"] == hashlib.sha256(data).hexdigest()
        link = (await family.http.get(f"/documents/{doc['id']}/download")).json()
        body = (await fetch(link["url"])).content
        assert hashlib.sha256(body).hexdigest() == doc["sha256"] == record["sha256"]
        if doc["name"].endswith(".jpg"):
            assert body.startswith(b"\xff\xd8\xff")  # HEIC converted server-side
        else:
            assert body == data
    listed = (await family.http.get("/documents")).json()["documents"]
    assert {d["id"] for d in listed} == {d["id"] for d, _ in stored}


async def test_other_types_empty_and_oversized_files_are_refused_in_french_and_nothing_is_stored(family: Family) -> None:
    zip_named_pdf = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + os.urandom(2000)
    exe_named_pdf = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + os.urandom(2000)
    for data in (zip_named_pdf, exe_named_pdf, b"Bonjour, voici mon justificatif."):
        refused = await family.upload(data, "justificatif.pdf")
        assert refused.status_code == 415
        assert refused.json()["detail"].startswith("Ce fichier n'est ni un PDF ni une photo (JPEG, PNG, HEIC)")
    empty = await family.upload(b"", "vide.pdf")
    assert empty.status_code == 400 and "vide" in empty.json()["detail"]
    big = await family.upload(b"%PDF-1.4\n" + os.urandom(11 * 1024 * 1024), "gros.pdf")
    assert big.status_code == 413
    assert "trop volumineux" in big.json()["detail"]
    no_kind = await family.http.post("/documents", files={"file": ("a.pdf", pdf_bytes(), "application/pdf")}, data={"kind": "passport"})
    assert no_kind.status_code == 400 and "Précisez" in no_kind.json()["detail"]
    not_multipart = await family.http.post("/documents", json={"kind": "other"})
    assert not_multipart.status_code == 400
    no_file = await family.http.post("/documents", data={"kind": "other"}, files={"other": ("x", b"y")})
    assert no_file.status_code == 400 and "Aucun fichier" in no_file.json()["detail"]
    assert (await family.http.get("/documents")).json()["documents"] == []
    assert await objects().list(f"documents/{family.account_id}/") == []


async def test_ten_concurrent_uploads_are_all_stored_and_scanned(family: Family) -> None:
    results = await asyncio.gather(*(family.upload(pdf_bytes(str(i)), f"page-{i}.pdf") for i in range(10)))
    assert [r.status_code for r in results] == [201] * 10
    for r in results:
        await family.wait_status(r.json()["id"], "clean", timeout_s=60)


# ---- virus scan -----------------------------------------------------------------------------


async def test_eicar_is_detected_deleted_from_storage_never_downloadable_and_announced(family: Family, documents_db: Any) -> None:
    doc = await family.uploaded(b"%PDF-1.4\n" + eicar() + b"\n%%EOF\n", "facture.pdf")
    infected = await family.wait_status(doc["id"], "infected")
    assert "virus" in infected["reason"] and "supprimé" in infected["reason"]
    record = await documents_db.documents.find_one({"_id": doc["id"]})
    assert not await objects().exists(record["object_key"])
    download = await family.http.get(f"/documents/{doc['id']}/download")
    assert download.status_code == 410 and "virus" in download.json()["detail"]
    event = await wait_for_event(TOPIC, lambda e: e["subject"] == doc["id"] and e["type"] == "fr.montclair-sur-loire.ecp.DocumentScanned")
    assert event["data"]["result"] == "infected" and event["data"]["account_id"] == family.account_id
    assert event["data"]["kind"] == "proof_of_address" and "virus" in event["data"]["reason"]


async def test_a_clean_file_is_marked_clean_with_its_events(family: Family) -> None:
    doc = await family.uploaded(pdf_bytes(), "avis.pdf", "guardian_identity")
    await family.wait_status(doc["id"], "clean")
    uploaded = await wait_for_event(TOPIC, lambda e: e["subject"] == doc["id"] and e["type"] == "fr.montclair-sur-loire.ecp.DocumentUploaded")
    assert uploaded["data"]["sha256"] == doc["sha256"] and uploaded["data"]["kind"] == "guardian_identity"
    scanned = await wait_for_event(TOPIC, lambda e: e["subject"] == doc["id"] and e["type"] == "fr.montclair-sur-loire.ecp.DocumentScanned")
    assert scanned["data"]["result"] == "clean" and scanned["data"]["reason"] is None


async def test_with_clamd_stopped_a_document_stays_pending_then_is_scanned_after_the_restart(family: Family, documents_db: Any) -> None:
    subprocess.run([ECP, "stop", "clamd"], check=True, capture_output=True, timeout=60)
    try:
        doc = await family.uploaded(pdf_bytes(), "quittance.pdf")
        deadline = time.monotonic() + 30
        while (record := await documents_db.documents.find_one({"_id": doc["id"]})).get("scan_attempts", 0) < 2:
            assert time.monotonic() < deadline, "the scan was not retried"
            await asyncio.sleep(0.5)
        assert record["status"] == "pending"
        assert (await family.http.get(f"/documents/{doc['id']}")).json()["status"] == "pending"
    finally:
        subprocess.run([ECP, "start", "clamd"], check=True, capture_output=True, timeout=180)
    await family.wait_status(doc["id"], "clean", timeout_s=90)


async def test_with_s3_stopped_an_upload_through_the_gateway_is_a_503_and_nothing_is_kept(
    family: Family, documents_db: Any
) -> None:
    before = await documents_db.documents.count_documents({"account_id": family.account_id})
    subprocess.run([ECP, "stop", "s3"], check=True, capture_output=True, timeout=60)
    try:
        refused = await family.upload(pdf_bytes(), "bail.pdf")
        assert refused.status_code == 503
        assert "n'a pas été enregistré" in refused.json()["detail"]
        assert await documents_db.documents.count_documents({"account_id": family.account_id}) == before
    finally:
        subprocess.run([ECP, "start", "s3"], check=True, capture_output=True, timeout=180)
    stored = {o.key for o in await objects().list(f"documents/{family.account_id}/")}
    keys = {d["object_key"] async for d in documents_db.documents.find({"account_id": family.account_id, "object_key": {"$exists": True}})}
    assert stored <= keys, "an object without a record was left behind"
    assert (await family.upload(pdf_bytes(), "bail.pdf")).status_code == 201  # and it works again


# ---- access ---------------------------------------------------------------------------------


async def test_another_family_an_agent_and_anonymous_get_nothing(family: Family, other_family: Family) -> None:
    doc = await family.uploaded(pdf_bytes(), "livret.pdf", "child_identity")
    await family.wait_status(doc["id"], "clean")
    path = f"/documents/{doc['id']}"
    for who in (other_family.http,):
        assert (await who.get(path)).status_code == 404
        assert (await who.get(f"{path}/download")).status_code == 404
        assert (await who.delete(path)).status_code == 404
    assert (await other_family.http.get(f"/documents/{uuid.uuid4()}")).json() == (await other_family.http.get(path)).json()
    assert (await other_family.http.get("/documents/pas-un-identifiant")).status_code == 404
    assert doc["id"] not in {d["id"] for d in (await other_family.http.get("/documents")).json()["documents"]}
    async with httpx.AsyncClient(base_url=API, timeout=10) as anonymous:
        for method, url in (("GET", path), ("GET", f"{path}/download"), ("DELETE", path), ("GET", "/documents")):
            assert (await anonymous.request(method, url)).status_code == 401
        assert (await anonymous.post("/documents", files={"file": ("a.pdf", pdf_bytes())}, data={"kind": "other"})).status_code == 401
    agent = {"Authorization": f"Bearer {await agent_token()}"}
    async with httpx.AsyncClient(base_url=API, timeout=10, headers=agent) as staff:
        # Not attached to a submitted file (household's HouseholdSubmitted projection): 404.
        assert (await staff.get(path)).status_code == 404
        assert (await staff.get(f"{path}/download")).status_code == 404
        assert (await staff.post("/documents", files={"file": ("a.pdf", pdf_bytes())}, data={"kind": "other"})).status_code == 403


async def test_a_document_of_a_submitted_file_is_readable_by_agents_and_cannot_be_deleted(family: Family, documents_db: Any) -> None:
    doc = await family.uploaded(pdf_bytes(), "edf.pdf")
    await family.wait_status(doc["id"], "clean")
    # What household's HouseholdSubmitted consumer will write (the projection hook).
    await documents_db.submitted_documents.insert_one({"_id": doc["id"], "dossier_id": str(uuid.uuid4()), "submitted_at": datetime.now(UTC)})
    try:
        agent = {"Authorization": f"Bearer {await agent_token()}"}
        async with httpx.AsyncClient(base_url=API, timeout=10, headers=agent) as staff:
            assert (await staff.get(f"/documents/{doc['id']}")).json()["status"] == "clean"
            link = (await staff.get(f"/documents/{doc['id']}/download")).json()
            assert (await fetch(link["url"])).status_code == 200
        refused = await family.http.delete(f"/documents/{doc['id']}")
        assert refused.status_code == 409 and "dossier transmis" in refused.json()["detail"]
    finally:
        await documents_db.submitted_documents.delete_one({"_id": doc["id"]})


async def test_the_presigned_link_is_short_lived_and_an_attachment(family: Family) -> None:
    doc = await family.uploaded(pdf_bytes(), "Quittance de loyer été.pdf")
    link = (await family.http.get(f"/documents/{doc['id']}/download")).json()
    assert link["expires_in"] <= 300
    url = urlparse(link["url"])
    query = parse_qs(url.query)
    assert url.netloc == "127.0.0.1:9000"
    assert int(query["X-Amz-Expires"][0]) <= 300
    response = await fetch(link["url"])
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "Quittance de loyer ete.pdf" in disposition
    tampered = link["url"].replace(f"X-Amz-Expires={query['X-Amz-Expires'][0]}", "X-Amz-Expires=604800")
    assert (await fetch(tampered)).status_code == 403
    # An expired link is refused: sign one that expired (same signer, a date in the past).
    record_key = f"documents/{family.account_id}/{doc['id']}"
    expired = objects()._public.presigned_get_object(
        "ecp-documents", record_key, expires=timedelta(seconds=1), request_date=datetime.now(UTC) - timedelta(minutes=10)
    )
    assert (await fetch(expired)).status_code == 403


async def test_delete_removes_the_object_and_keeps_a_tombstone_with_its_event(family: Family, documents_db: Any) -> None:
    doc = await family.uploaded(pdf_bytes(), "ancien.pdf")
    await family.wait_status(doc["id"], "clean")
    key = f"documents/{family.account_id}/{doc['id']}"
    assert await objects().exists(key)
    assert (await family.http.delete(f"/documents/{doc['id']}")).status_code == 204
    assert not await objects().exists(key)
    assert (await family.http.get(f"/documents/{doc['id']}")).status_code == 404
    assert (await family.http.delete(f"/documents/{doc['id']}")).status_code == 404
    tombstone = await documents_db.documents.find_one({"_id": doc["id"]})
    assert tombstone["status"] == "deleted" and "original_name" not in tombstone
    event = await wait_for_event(TOPIC, lambda e: e["subject"] == doc["id"] and e["type"] == "fr.montclair-sur-loire.ecp.DocumentDeleted")
    assert event["data"]["reason"] == "owner" and event["data"]["account_id"] == family.account_id


# ---- sworn statement ------------------------------------------------------------------------


async def test_the_sworn_statement_is_a_prefilled_pdf_to_sign_and_upload(family: Family) -> None:
    from pypdf import PdfReader

    response = await family.http.get(
        "/sworn-statement", params={"subject": "child_identity", "declarant": "Camille Martin", "child": "Lou Martin-Öztürk"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages).split())
    assert "Camille Martin" in text and "Lou Martin-Öztürk" in text and "D131-3-1" in text
    assert "Montclair-sur-Loire" in text
    missing = await family.http.get("/sworn-statement", params={"subject": "proof_of_address", "declarant": "Camille Martin"})
    assert missing.status_code == 422 and "adresse" in missing.json()["detail"]
    signed = await family.uploaded(response.content, "attestation.pdf", "sworn_statement")
    assert signed["kind"] == "sworn_statement"


# ---- consistency ----------------------------------------------------------------------------


def _service(db: Any, objects_: Any, *, later_s: float = 0, **overrides: Any) -> DocumentsService:
    settings = DocumentsSettings(**overrides)
    return DocumentsService(
        DocumentsStore(db), objects_, ClamdScanner(settings.clamd_host, settings.clamd_port), settings,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=later_s),
    )


def _received(tmp_path: Any, data: bytes) -> ReceivedFile:
    path = tmp_path / f"{uuid.uuid4()}.upload"
    path.write_bytes(data)
    return ReceivedFile(str(path), len(data), hashlib.sha256(data).hexdigest(), data[:8192], "test.pdf")


async def test_s3_down_during_an_upload_is_a_503_and_leaves_no_record(tmp_path: Any, documents_db: Any) -> None:
    account = f"test-{uuid.uuid4()}"
    down = ObjectStore(S3Settings(endpoint="127.0.0.1:9"), public_endpoint="127.0.0.1:9", public_secure=False, sse=True)
    with pytest.raises(Unavailable) as refused:
        await _service(documents_db, down).upload(account, "other", _received(tmp_path, pdf_bytes()))
    assert "n'a pas été enregistré" in refused.value.message
    assert await documents_db.documents.count_documents({"account_id": account}) == 0


async def test_a_database_failure_after_the_put_removes_the_object_and_the_intent(tmp_path: Any, documents_db: Any) -> None:
    account = f"test-{uuid.uuid4()}"
    service = _service(documents_db, objects())

    async def fails(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("database went away")

    service.store.mark_uploaded = fails  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await service.upload(account, "other", _received(tmp_path, pdf_bytes()))
    assert await documents_db.documents.count_documents({"account_id": account}) == 0
    assert await objects().list(f"documents/{account}/") == []


async def test_the_sweeper_removes_what_a_crash_left(tmp_path: Any, documents_db: Any) -> None:
    store = objects()
    account = f"test-{uuid.uuid4()}"
    # A crash after the put, before the record became pending: an old intent with its object.
    stale_id = str(uuid.uuid4())
    stale_key = f"documents/{account}/{stale_id}"
    await documents_db.documents.insert_one({
        "_id": stale_id, "account_id": account, "kind": "other", "object_key": stale_key, "status": "uploading",
        "created_at": datetime.now(UTC) - timedelta(minutes=10), "outbox": [],
    })
    data = tmp_path / "object"
    data.write_bytes(pdf_bytes())
    await store.put_file(stale_key, str(data), data.stat().st_size, "application/pdf", {})
    # An object without any record (a crash between put and a failed clean-up).
    orphan_key = f"documents/{account}/{uuid.uuid4()}"
    await store.put_file(orphan_key, str(data), data.stat().st_size, "application/pdf", {})
    # A fresh intent (an upload in progress) is left alone.
    fresh_id = str(uuid.uuid4())
    await documents_db.documents.insert_one({
        "_id": fresh_id, "account_id": account, "kind": "other", "object_key": f"documents/{account}/{fresh_id}",
        "status": "uploading", "created_at": datetime.now(UTC), "outbox": [],
    })
    try:
        # Run as if a few seconds later, with no grace for orphans (S3 dates are whole seconds).
        counts = await _service(documents_db, store, later_s=5, sweep_orphan_grace_s=0).sweep()
        assert counts["intents"] >= 1 and counts["orphans"] >= 1
        assert not await store.exists(stale_key) and not await store.exists(orphan_key)
        assert await documents_db.documents.find_one({"_id": stale_id}) is None
        assert await documents_db.documents.find_one({"_id": fresh_id}) is not None
    finally:
        await documents_db.documents.delete_many({"account_id": account})


# ---- erasure --------------------------------------------------------------------------------


async def test_account_deleted_erases_every_object_and_anonymises_the_records(documents_db: Any) -> None:
    family = await new_family()
    try:
        first = await family.uploaded(pdf_bytes(), "domicile.pdf")
        second = await family.uploaded(image_bytes("PNG"), "identite.png", "child_identity")
        await family.wait_status(second["id"], "clean")
        deleted = await family.identity.post("/me/delete", json={"password": GOOD_PASSWORD}, headers=family.headers)
        assert deleted.status_code == 204
    finally:
        await family.close()
    for doc in (first, second):
        event = await wait_for_event(TOPIC, lambda e, d=doc: e["subject"] == d["id"] and e["type"] == "fr.montclair-sur-loire.ecp.DocumentDeleted", timeout_s=30)
        assert event["data"]["reason"] == "account_erased"
    deadline = time.monotonic() + 20
    while await documents_db.documents.count_documents({"account_id": family.account_id}):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.3)
    assert await objects().list(f"documents/{family.account_id}/") == []
    for doc in (first, second):
        record = await documents_db.documents.find_one({"_id": doc["id"]})
        assert record["status"] == "deleted" and record["account_id"] is None
        assert not {"original_name", "name", "sha256", "size"} & set(record)
