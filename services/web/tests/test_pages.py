from fastapi.testclient import TestClient

from services.web.main import create_app


def test_the_home_page_is_in_french_with_a_strict_content_security_policy() -> None:
    with TestClient(create_app()) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert '<html lang="fr">' in response.text
    assert "Espace Citoyen" in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp


def test_the_stylesheet_is_served_from_the_site_itself() -> None:
    with TestClient(create_app()) as client:
        page = client.get("/").text
        css = client.get("/static/site.css")
    assert 'href="/static/site.css"' in page
    assert css.status_code == 200
    assert "http" not in css.text  # no third-party asset


def test_an_unexpected_error_is_answered_in_french_without_a_stack_trace() -> None:
    app = create_app()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "inattendue" in response.json()["detail"]
    assert "secret internal detail" not in response.text
