"""The shared app factory's error shape, as the API fuzzing found it (tests/fuzz)."""

from __future__ import annotations

from collections.abc import Sequence

import jsonschema
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.kernel.app import create_service_app
from services.kernel.health import ReadinessCheck
from services.kernel.settings import CommonSettings


class Body(BaseModel):
    name: str


router = APIRouter()


@router.post("/things")
async def create(body: Body) -> dict[str, str]:
    return {"name": body.name}


async def startup(app: FastAPI) -> Sequence[ReadinessCheck]:
    return []


async def shutdown(app: FastAPI) -> None:
    return None


def client() -> TestClient:
    app = create_service_app(CommonSettings(), title="t", description="d", routers=[router], startup=startup,
                             shutdown=shutdown)
    return TestClient(app)


def documented_422(test_client: TestClient) -> dict:
    document = test_client.get("/openapi.json").json()
    schema = document["paths"]["/things"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def test_a_validation_error_matches_the_documented_422_schema() -> None:
    with client() as test_client:
        response = test_client.post("/things", json={"name": 3})
        assert response.status_code == 422
        assert response.json()["detail"] == "Les données envoyées ne sont pas valides."
        jsonschema.validate(response.json(), documented_422(test_client))


def test_a_body_that_is_not_utf8_is_a_french_422_not_an_english_400() -> None:
    with client() as test_client:
        response = test_client.post("/things", content=b"\xff\xfe#", headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == "Les données envoyées ne sont pas valides."
        assert response.json()["errors"][0]["loc"] == ["body"]
        jsonschema.validate(response.json(), documented_422(test_client))


def test_other_http_errors_keep_their_status_and_detail() -> None:
    with client() as test_client:
        assert test_client.get("/nowhere").status_code == 404
        assert test_client.get("/things").status_code == 405


def test_a_services_own_422_with_only_a_reason_matches_the_documented_schema() -> None:
    with client() as test_client:
        jsonschema.validate({"detail": "Année scolaire invalide."}, documented_422(test_client))
