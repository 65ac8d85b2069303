"""POST/GET/PATCH /v1/subjects."""

from __future__ import annotations

import pytest

from prefs_service import channels


@pytest.fixture
def headers(api_key):
    return api_key("subjects:read", "subjects:write", "consent:read", "consent:write")


def test_create_then_find_by_email_or_external_ref(client, headers):
    created = client.post(
        "/v1/subjects",
        json={"email": "Jo@Example.com", "external_ref": "CRM-1", "name": "Jo Bloggs", "phone": "07911 123456"},
        headers=headers,
    )
    assert created.status_code == 201
    body = created.json
    assert body["email"] == "jo@example.com" and body["phone"] == "+447911123456" and body["name"] == "Jo Bloggs"
    assert created.headers["Location"].endswith(f"/v1/subjects/{body['id']}")

    by_email = client.post("/v1/subjects", json={"email": "JO@example.com"}, headers=headers)
    assert by_email.status_code == 200 and by_email.json["id"] == body["id"]
    by_ref = client.post("/v1/subjects", json={"external_ref": "CRM-1"}, headers=headers)
    assert by_ref.status_code == 200 and by_ref.json["id"] == body["id"]
    assert client.get(f"/v1/subjects/{body['id']}", headers=headers).json == body


def test_email_and_external_ref_of_two_people_is_a_conflict(client, headers):
    client.post("/v1/subjects", json={"email": "one@example.com"}, headers=headers)
    client.post("/v1/subjects", json={"external_ref": "CRM-2"}, headers=headers)
    response = client.post("/v1/subjects", json={"email": "one@example.com", "external_ref": "CRM-2"}, headers=headers)
    assert response.status_code == 409


def test_a_phone_owned_by_someone_else_is_a_conflict_naming_it(client, headers):
    client.post("/v1/subjects", json={"email": "p1@example.com", "phone": "+447911000001"}, headers=headers)
    response = client.post("/v1/subjects", json={"email": "p2@example.com", "phone": "07911 000001"}, headers=headers)
    assert response.status_code == 409
    assert response.json["errors"] == {"phone": ["already belongs to another subject"]}
    # nothing half-created
    assert client.post("/v1/subjects", json={"email": "p2@example.com"}, headers=headers).status_code == 201


def test_patch_changes_and_clears_fields_and_consent_follows_the_person(client, headers):
    subject = client.post("/v1/subjects", json={"email": "old@example.com", "fax": "+442079460009"}, headers=headers).json
    client.post(
        "/v1/consents",
        json={"subject_id": subject["id"], "channel": "email", "purpose": "offers", "status": "granted"},
        headers=headers,
    )
    response = client.patch(f"/v1/subjects/{subject['id']}", json={"email": "New@Example.com", "fax": None, "name": "N"}, headers=headers)
    assert response.status_code == 200
    assert response.json["email"] == "new@example.com" and response.json["fax"] is None and response.json["name"] == "N"
    check = {"channel": "email", "purpose": "offers"}
    assert client.get("/v1/consent/check", query_string={**check, "email": "new@example.com"}, headers=headers).json["allowed"]
    assert (
        client.get("/v1/consent/check", query_string={**check, "email": "old@example.com"}, headers=headers).json["reason"] == "no_consent"
    )


def test_patch_to_an_address_someone_else_has_is_409(client, headers):
    client.post("/v1/subjects", json={"email": "taken@example.com"}, headers=headers)
    other = client.post("/v1/subjects", json={"email": "mine@example.com"}, headers=headers).json
    response = client.patch(f"/v1/subjects/{other['id']}", json={"email": "taken@example.com"}, headers=headers)
    assert response.status_code == 409
    assert client.get(f"/v1/subjects/{other['id']}", headers=headers).json["email"] == "mine@example.com"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"postal_address": "x"}, "postal_address"),
        ({"name": ""}, "name"),
        ({"shoe_size": 9}, "shoe_size"),
    ],
)
def test_bad_fields_are_422(client, headers, payload, field):
    response = client.post("/v1/subjects", json=payload, headers=headers)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_unknown_or_malformed_subject_id_is_404(client, headers):
    assert client.get("/v1/subjects/not-a-uuid", headers=headers).status_code == 404
    assert client.get("/v1/subjects/6f1d8a34-0000-4000-8000-000000000000", headers=headers).status_code == 404
    assert client.patch("/v1/subjects/6f1d8a34-0000-4000-8000-000000000000", json={}, headers=headers).status_code == 404


def test_consents_of_a_subject_with_history(client, headers):
    subject = client.post("/v1/subjects", json={"email": "hist@example.com"}, headers=headers).json
    for status, when in (("granted", "2026-01-01T00:00:00Z"), ("withdrawn", "2026-02-01T00:00:00Z")):
        client.post(
            "/v1/consents",
            json={
                "subject_id": subject["id"],
                "channel": "email",
                "purpose": "newsletter",
                "status": status,
                "occurred_at": when,
                "evidence": {"ip": "198.51.100.23", "user_agent": "UA"},
            },
            headers=headers,
        )
    body = client.get(f"/v1/subjects/{subject['id']}/consents", headers=headers).json
    states = {(c["channel"], c["purpose"]): c for c in body["consents"]}
    assert set(states) == set(channels.all_purposes())  # every purpose, held or not
    assert body["ask_again_after"] is None  # set only by a US-CA opt-out of sale/sharing
    assert states[("email", "newsletter")]["status"] == "withdrawn" and states[("email", "newsletter")]["allowed"] is False
    assert states[("email", "transactional")] == {
        "channel": "email",
        "purpose": "transactional",
        "status": None,
        "occurred_at": None,
        "source": None,
        "allowed": True,
        "reason": "transactional",
        "since": None,
    }
    assert states[("phone", "marketing")]["reason"] == "no_consent"
    assert "history" not in body

    page = client.get(f"/v1/subjects/{subject['id']}/consents?history=1&limit=1", headers=headers).json
    assert [e["status"] for e in page["history"]] == ["withdrawn"]
    assert page["history"][0]["evidence"]["ip"] == "198.51.100.0/24"
    older = client.get(f"/v1/subjects/{subject['id']}/consents?history=1&limit=1&before={page['history_before']}", headers=headers).json
    assert [e["status"] for e in older["history"]] == ["granted"] and older["history_before"] is None
