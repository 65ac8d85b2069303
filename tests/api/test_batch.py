"""POST /v1/consents/batch: all or nothing."""

from __future__ import annotations

import pytest


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "subjects:read")


def event(**fields):
    return {"channel": "email", "purpose": "newsletter", "status": "granted", **fields}


def test_a_valid_batch_is_written_and_applies_the_ledger_rules(client, headers):
    events = [
        event(email="b1@example.com", occurred_at="2026-01-01T00:00:00Z"),
        event(email="B1@example.com", status="withdrawn", occurred_at="2026-02-01T00:00:00Z"),
        event(email="b1@example.com", occurred_at="2026-01-15T00:00:00Z"),  # older grant, later in the file
        event(email="b2@example.com"),
        event(external_ref="CRM-9", channel="mail", purpose="marketing"),
        event(phone="+442079460300", channel="phone", purpose="marketing", status="withdrawn"),
    ]
    response = client.post("/v1/consents/batch", json={"events": events}, headers=headers)
    assert response.status_code == 201 and response.json == {"recorded": 6, "skipped_erased": []}
    result = client.post(
        "/v1/consent/check",
        json={"channel": "email", "purpose": "newsletter", "recipients": ["b1@example.com", "b2@example.com"]},
        headers=headers,
    ).json["results"]
    assert [r["reason"] for r in result] == ["withdrawn", "granted"]
    feed = client.get("/v1/consent/changes?limit=1000", headers=headers).json["events"]
    assert len(feed) == 6 and {e["source"] for e in feed} == {"api"}
    assert len({e["subject_id"] for e in feed}) == 4


def test_one_bad_item_rejects_the_batch_listing_bad_items_by_index(client, headers):
    events = [event(email="ok@example.com"), event(email="bad"), event(email="ok2@example.com", channel="sms")]
    response = client.post("/v1/consents/batch", json={"events": events}, headers=headers)
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"1", "2"}
    assert "email" in response.json["errors"]["1"] and "channel" in response.json["errors"]["2"]
    assert client.get("/v1/consent/changes", headers=headers).json["events"] == []
    assert (
        client.post(
            "/v1/consent/check", json={"channel": "email", "purpose": "newsletter", "recipients": ["ok@example.com"]}, headers=headers
        ).json["results"][0]["reason"]
        == "no_consent"
    )


def test_schema_errors_are_listed_by_index_too(client, headers):
    events = [event(email="ok@example.com"), event(email="x@example.com", status="perhaps"), {"email": "y@example.com"}]
    response = client.post("/v1/consents/batch", json={"events": events}, headers=headers)
    assert response.status_code == 422
    assert set(response.json["errors"]["events"]) == {"1", "2"}


def test_an_unknown_subject_id_rejects_the_batch(client, headers):
    events = [event(email="fine@example.com"), event(subject_id="6f1d8a34-0000-4000-8000-000000000000")]
    response = client.post("/v1/consents/batch", json={"events": events}, headers=headers)
    assert response.status_code == 422 and list(response.json["errors"]) == ["1"]
    assert client.get("/v1/consent/changes", headers=headers).json["events"] == []


def test_more_than_ten_thousand_is_refused_naming_the_limit(client, headers):
    response = client.post("/v1/consents/batch", json={"events": [event(email="a@example.com")] * 10_001}, headers=headers)
    assert response.status_code == 422
    assert "10000" in str(response.json["errors"])


def test_ten_thousand_events_in_one_call(client, headers):
    events = [event(email=f"many{i}@example.com") for i in range(10_000)]
    response = client.post("/v1/consents/batch", json={"events": events}, headers=headers)
    assert response.status_code == 201 and response.json == {"recorded": 10_000, "skipped_erased": []}
    sample = client.post(
        "/v1/consent/check",
        json={"channel": "email", "purpose": "newsletter", "recipients": ["many0@example.com", "many9999@example.com"]},
        headers=headers,
    ).json["results"]
    assert all(r["allowed"] for r in sample)


def test_reserved_sources_cannot_be_claimed_in_a_batch(client, headers):
    response = client.post("/v1/consents/batch", json={"events": [event(email="a@example.com", source="gpc")]}, headers=headers)
    assert response.status_code == 422
