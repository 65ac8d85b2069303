"""API keys: bearer auth, scopes, the CLI that makes them."""

from __future__ import annotations

from prefs_service.cli import main


def test_no_key_wrong_key_and_revoked_key_are_401(app, client, api_key):
    assert client.get("/v1/consent/changes").status_code == 401
    response = client.get("/v1/consent/changes", headers={"Authorization": "Bearer pk_0000_nope"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.content_type == "application/problem+json"
    headers = api_key("consent:read")
    assert client.get("/v1/consent/changes", headers=headers).status_code == 200
    tampered = {"Authorization": headers["Authorization"][:-2] + "xx"}
    assert client.get("/v1/consent/changes", headers=tampered).status_code == 401

    prefix = headers["Authorization"].split("_")[1]
    result = app.test_cli_runner().invoke(main, ["api-key", "revoke", prefix])
    assert result.exit_code == 0, result.output
    assert client.get("/v1/consent/changes", headers=headers).status_code == 401


def test_a_missing_scope_is_403_naming_it(client, api_key):
    response = client.post("/v1/consents", json={}, headers=api_key("consent:read"))
    assert response.status_code == 403
    assert "consent:write" in response.json["detail"]


def test_admin_holds_every_scope(client, admin):
    assert client.get("/v1/consent/changes", headers=admin).status_code == 200
    assert client.post("/v1/subjects", json={"email": "a@example.com"}, headers=admin).status_code == 201


def test_auth_comes_before_body_validation(client):
    assert client.post("/v1/consents", data="{broken", headers={"Content-Type": "application/json"}).status_code == 401


def test_cli_prints_the_key_alone_on_the_last_line_and_it_works(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["api-key", "create", "--name", "mailer", "--scope", "consent:read", "--scope", "subjects:read"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("pk_") and " " not in key
    assert client.get("/v1/consent/changes", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listing = runner.invoke(main, ["api-key", "list"]).output
    assert "mailer" in listing and "consent:read subjects:read" in listing
    assert key.split("_", 2)[2] not in listing


def test_cli_refuses_an_unknown_scope(app):
    result = app.test_cli_runner().invoke(main, ["api-key", "create", "--name", "x", "--scope", "everything"])
    assert result.exit_code != 0
    assert "everything" in result.output
