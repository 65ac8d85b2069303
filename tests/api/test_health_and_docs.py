"""Health checks and the OpenAPI document."""

from __future__ import annotations

import re


def test_healthz_needs_no_key(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_reports_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = dict(response.json)
    registers = body.pop("registers")  # tests/registers/test_register_status.py looks at them
    assert body == {"status": "ready", "database": "ok", "broker": "ok"}
    assert {r["register"] for r in registers} == {"tps", "ctps", "fps", "mps", "dnc"}


def test_readyz_is_503_naming_an_unreachable_broker(make_app):
    client = make_app(broker_url="redis://127.0.0.1:1/0").test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["database"] == "ok" and response.json["broker"] != "ok"
    assert response.json["status"] == "unavailable"


def test_openapi_describes_every_endpoint_with_bearer_auth(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/v1/subjects", "post"),
        ("/v1/subjects/{subject_id}", "patch"),
        ("/v1/subjects/{subject_id}/consents", "get"),
        ("/v1/consents", "post"),
        ("/v1/consents/batch", "post"),
        ("/v1/consent/check", "get"),
        ("/v1/consent/check", "post"),
        ("/v1/consent/changes", "get"),
        ("/v1/suppressions", "post"),
        ("/v1/policy-versions", "post"),
    ]:
        operation = paths[path][method]
        assert operation["security"] == [{"bearerAuth": []}], path
        assert "scope" in operation["description"], path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    consent_in = spec["components"]["schemas"]["ConsentIn"]
    assert set(consent_in["required"]) == {"channel", "purpose", "status"}


def test_the_docs_page_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and b"swagger" in response.data.lower()


def test_unknown_api_paths_are_problem_json_and_pages_are_html(client):
    api = client.get("/v1/nothing-here")
    assert api.status_code == 404 and api.content_type == "application/problem+json"
    page = client.get("/nothing-here")
    assert page.status_code == 404 and page.content_type.startswith("text/html")
    assert b"There is nothing at this address." in page.data


def test_wrong_method_is_405_with_allow(client, admin):
    response = client.delete("/v1/consents", headers=admin)
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_every_file_the_docs_page_loads_is_served_here(client):
    page = client.get("/docs").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', page)
    stylesheets = re.findall(r'<link href="([^"]+)" rel="stylesheet"', page)
    [document] = re.findall(r'url: "([^"]+)"', page)
    assert len(scripts) == 2 and len(stylesheets) == 1
    expected = {**dict.fromkeys(scripts, "text/javascript"), **dict.fromkeys(stylesheets, "text/css"), document: "application/json"}
    for url, content_type in expected.items():
        assert url.startswith("/"), f"{url} is not on this service"
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == content_type, (url, response.mimetype)
        assert len(response.data) > 1000, url
    assert b"SwaggerUIBundle" in client.get(scripts[-1]).data
    assert client.get(document).json["info"]["title"] == "prefs_service"
    assert not re.findall(r"https?://", page), "the page names no other site"


def test_a_missing_docs_file_is_a_404(client):
    assert client.get("/docs/assets/no-such-file.js").status_code == 404
    assert client.get("/docs/assets/../../pyproject.toml").status_code == 404
