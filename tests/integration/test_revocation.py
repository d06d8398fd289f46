"""A deleted account's access tokens are refused by every service at once (issue #18, item 7):
each service learns deletions from AccountDeleted events (the kernel's revocation feed), identity
from its own records, and an upload racing the erasure undoes itself."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.documents.usecases import AccountErased
from tests.integration.identity_client import GATEWAY, GOOD_PASSWORD
from tests.integration.test_documents import _received, _service, documents_db, new_family, objects, pdf_bytes  # noqa: F401 (fixture)

SERVICES = ("identity", "household", "documents", "enrolment", "notifier", "insights")


async def test_right_after_the_deletion_every_service_refuses_the_token_and_an_upload_leaves_nothing(documents_db: Any) -> None:
    family = await new_family()
    try:
        for name in SERVICES:
            accepted = await family.http.get(f"{GATEWAY}/api/{name}/session")
            assert accepted.status_code == 200, (name, accepted.text)
        deleted = await family.identity.post("/me/delete", json={"password": GOOD_PASSWORD}, headers=family.headers)
        assert deleted.status_code == 204

        upload = await family.upload(pdf_bytes(), "apres-suppression.pdf")
        assert upload.status_code == 401, upload.text
        assert "reconnecter" in upload.json()["detail"]
        for name in SERVICES:
            refused = await family.http.get(f"{GATEWAY}/api/{name}/session")
            assert refused.status_code == 401, (name, refused.text)
        assert (await family.http.get(f"{GATEWAY}/api/identity/me")).status_code == 401
    finally:
        await family.close()
    assert await documents_db.documents.count_documents({"account_id": family.account_id, "status": {"$ne": "deleted"}}) == 0
    assert await objects().list(f"documents/{family.account_id}/") == []


async def test_an_upload_under_way_when_the_erasure_ran_is_undone_and_refused(tmp_path: Any, documents_db: Any) -> None:
    account = f"test-{uuid.uuid4()}"
    service = _service(documents_db, objects())
    await service.erase_account(account, causation_id=str(uuid.uuid4()), correlation_id=None)
    with pytest.raises(AccountErased):
        await service.upload(account, "other", _received(tmp_path, pdf_bytes()))
    assert await documents_db.documents.count_documents({"account_id": account}) == 0
    assert await objects().list(f"documents/{account}/") == []
