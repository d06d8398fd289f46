"""The nginx gateway on 127.0.0.1:8080: routing, request ids, limits, security headers."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.conftest import ROOT

GATEWAY = "http://127.0.0.1:8080"
BACKENDS = ["identity", "household", "documents", "notifier", "enrolment", "insights"]


@pytest.mark.parametrize("service", BACKENDS)
def test_each_service_publishes_its_openapi_document_under_its_public_prefix(service: str) -> None:
    response = httpx.get(f"{GATEWAY}/api/{service}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": f"/api/{service}"}]
    assert {"/healthz", "/readyz"} <= set(document["paths"])


def test_the_gateway_gives_every_request_an_id_and_logs_it() -> None:
    response = httpx.get(f"{GATEWAY}/api/identity/healthz")
    request_id = response.headers["x-request-id"]
    assert len(request_id) >= 16
    log_lines = (ROOT / ".local/logs/gateway-access.log").read_text().splitlines()
    assert any(json.loads(line)["request_id"] == request_id for line in log_lines[-200:])


def test_a_caller_supplied_request_id_is_forwarded_to_the_service_and_returned() -> None:
    response = httpx.get(f"{GATEWAY}/api/household/healthz", headers={"X-Request-ID": "trace-0123456789abcdef"})
    assert response.headers["x-request-id"] == "trace-0123456789abcdef"


def test_a_malformed_request_id_is_replaced() -> None:
    response = httpx.get(f"{GATEWAY}/api/household/healthz", headers={"X-Request-ID": "<script>"})
    assert response.headers["x-request-id"] != "<script>"


def test_security_headers_are_on_every_response() -> None:
    for path in ["/", "/api/identity/healthz", "/api/nope/"]:
        headers = httpx.get(f"{GATEWAY}{path}").headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "referrer-policy" in headers
    assert "default-src 'none'" in httpx.get(f"{GATEWAY}/api/identity/healthz").headers["content-security-policy"]
    assert "unsafe-inline" not in httpx.get(f"{GATEWAY}/").headers["content-security-policy"]


def test_only_the_back_office_document_preview_may_be_framed_and_only_by_the_site_itself() -> None:
    preview = httpx.get(f"{GATEWAY}/agents/documents/0123456789abcdef/apercu")
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    for path in ["/agents/documents/0123456789abcdef", "/agents/documents/x/apercu/extra", "/agents/dossiers"]:
        assert httpx.get(f"{GATEWAY}{path}").headers["x-frame-options"] == "DENY"


def test_an_oversized_body_is_refused_with_a_french_413_before_reaching_a_service() -> None:
    response = httpx.post(f"{GATEWAY}/api/identity/anything", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["detail"]


def test_an_upload_over_the_documents_limit_is_refused_with_the_limit_in_the_message() -> None:
    response = httpx.post(f"{GATEWAY}/api/documents/anything", content=b"x" * (13 * 1024 * 1024), timeout=30)
    assert response.status_code == 413
    assert "10 Mo" in response.json()["detail"]


def test_auth_routes_are_rate_limited_with_a_clear_429() -> None:
    with httpx.Client() as client:
        responses = [client.post(f"{GATEWAY}/api/identity/auth/login", json={}) for _ in range(60)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "60 attempts in a burst must hit the limit"
    assert "réessayez" in limited[0].json()["detail"]
    assert limited[0].headers["retry-after"]


def test_an_unknown_api_prefix_answers_a_json_404() -> None:
    response = httpx.get(f"{GATEWAY}/api/nope/")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
