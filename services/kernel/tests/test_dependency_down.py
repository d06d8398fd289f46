"""A dependency down in the middle of a request is a French 503, in every back-end service."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from services.kernel.objectstore import StorageUnavailable
from services.kernel.service import DEPENDENCY_DOWN_DETAIL, backend_app
from services.kernel.settings import CommonSettings

FAILURES: dict[str, Exception] = {
    "database": ServerSelectionTimeoutError("127.0.0.1:27017: connection refused"),
    "database-dropped": AutoReconnect("connection closed"),
    "kafka": KafkaConnectionError("no broker"),
    "s3": StorageUnavailable("S3 unreachable"),
    "timeout": TimeoutError(),
    "bug": ValueError("a bug, not an outage"),
}


class OwnOutage(ConnectionError):
    """A service's own, more precise, answer for one kind of outage."""


router = APIRouter()


@router.get("/fail/{what}")
async def fail(what: str) -> None:
    if what == "own":
        raise OwnOutage()
    raise FAILURES[what]


def client() -> TestClient:
    # No lifespan (the client is not entered): nothing connects, only the error mapping is used.
    app = backend_app(
        CommonSettings(), title="t", description="d", routers=[router],
        error_responses={OwnOutage: lambda exc: JSONResponse({"detail": "Le service des essais est indisponible."}, status_code=503)},
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("what", ["database", "database-dropped", "kafka", "s3", "timeout"])
def test_an_unreachable_dependency_is_a_french_503_to_retry_later(what: str) -> None:
    response = client().get(f"/fail/{what}")
    assert response.status_code == 503
    assert response.json() == {"detail": DEPENDENCY_DOWN_DETAIL}
    assert response.headers["retry-after"] == "30"


def test_a_bug_is_still_a_500_and_a_service_may_answer_an_outage_its_own_way() -> None:
    c = client()
    assert c.get("/fail/bug").status_code == 500
    own = c.get("/fail/own")
    assert own.status_code == 503 and own.json() == {"detail": "Le service des essais est indisponible."}
