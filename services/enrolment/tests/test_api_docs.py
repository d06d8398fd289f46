"""The enrolment API documents the answers it gives (found by the API fuzzing, tests/fuzz)."""

from fastapi import FastAPI

from services.enrolment.api import router


def test_sector_map_uploads_document_their_422_for_an_empty_or_unreadable_file() -> None:
    app = FastAPI()
    app.include_router(router)
    paths = app.openapi()["paths"]
    for path in ("/sector-map/validate", "/sector-map/imports"):
        assert "422" in paths[path]["post"]["responses"], path
