"""Domain events: wired in create_app, raised in the transaction of the change."""

from __future__ import annotations

import pytest

from prefs_service import hooks


def test_an_unknown_event_cannot_be_subscribed_to(app):
    with pytest.raises(ValueError, match=r"consent\.granted"):
        hooks.subscribe(app, "consent.granted", lambda **details: None)


def test_consent_withdrawn_is_raised_each_time_a_withdrawal_becomes_what_decides(app, client, api_key):
    heard = []
    hooks.subscribe(app, hooks.CONSENT_WITHDRAWN, lambda **details: heard.append(details))
    headers = api_key("consent:write")
    base = {"email": "heard@example.com", "channel": "email", "purpose": "offers"}
    events = [
        ("granted", "2026-01-01T00:00:00Z", False),
        ("withdrawn", "2026-01-02T00:00:00Z", True),
        ("withdrawn", "2025-12-31T00:00:00Z", False),  # older than what decides: changes nothing
        ("granted", "2026-01-01T12:00:00Z", False),
        ("withdrawn", "2026-01-03T00:00:00Z", True),  # newer: it decides now
    ]
    for status, occurred_at, raised in events:
        before = len(heard)
        response = client.post("/v1/consents", json={**base, "status": status, "occurred_at": occurred_at}, headers=headers)
        assert response.status_code == 201
        assert len(heard) == before + raised, (status, occurred_at)

    assert {(h["channel"], h["purpose"]) for h in heard} == {("email", "offers")}
    assert len({h["subject_id"] for h in heard}) == 1


def test_a_failing_reaction_rolls_back_the_change_that_raised_it(app, client, api_key):
    def refuse(**details):
        raise RuntimeError("the reaction failed")

    hooks.subscribe(app, hooks.CONSENT_WITHDRAWN, refuse)
    headers = api_key("consent:write", "consent:read")
    answer = client.post(
        "/v1/consents",
        json={"email": "rolled@example.com", "channel": "email", "purpose": "offers", "status": "withdrawn"},
        headers=headers,
    )
    assert answer.status_code == 500
    check = client.get(
        "/v1/consent/check", query_string={"email": "rolled@example.com", "channel": "email", "purpose": "offers"}, headers=headers
    )
    assert check.json["reason"] == "no_consent"
