"""Every service builds its app and OpenAPI document without connecting to anything."""

import importlib

import pytest

SERVICES = ["identity", "household", "documents", "notifier", "enrolment", "insights", "web"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_documents_its_health_routes_without_opening_a_connection(service: str) -> None:
    app = importlib.import_module(f"services.{service}.main").create_app()
    document = app.openapi()
    assert {"/healthz", "/readyz"} <= set(document["paths"])
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "web"])
def test_each_backend_service_declares_its_public_prefix_for_the_gateway(service: str) -> None:
    app = importlib.import_module(f"services.{service}.main").create_app()
    assert app.openapi()["servers"] == [{"url": f"/api/{service}"}]
