"""POST /v1/consents and the ledger rules, through HTTP."""

from __future__ import annotations

import pytest


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write")


def test_a_grant_creates_the_subject_and_is_returned_with_its_evidence(api):
    response = api.record(
        expect=None,
        email="  Ann.Smith@Example.COM ",
        source="signup",
        occurred_at="2026-03-01T10:00:00+01:00",
        evidence={"ip": "203.0.113.77", "user_agent": "Mozilla/5.0", "note": "footer form"},
    )
    assert response.status_code == 201
    event = response.json
    assert event["status"] == "granted" and event["source"] == "signup" and event["applied"] is True
    assert event["occurred_at"].startswith("2026-03-01T09:00:00")
    assert event["evidence"] == {"ip": "203.0.113.0/24", "user_agent": "Mozilla/5.0", "note": "footer form"}
    assert api.check(email="ann.smith@example.com").json == {
        "allowed": True,
        "reason": "granted",
        "since": "2026-03-01T09:00:00+00:00",
    }


def test_ipv6_evidence_is_truncated_to_48_bits(api):
    event = api.record(expect=None, email="v6@example.com", evidence={"ip": "2001:db8:abcd:12:3456::1"}).json
    assert event["evidence"]["ip"] == "2001:db8:abcd::/48"


def test_marketing_without_a_grant_is_not_allowed(api):
    assert api.check(email="nobody@example.com").json == {"allowed": False, "reason": "no_consent", "since": None}


def test_a_later_withdrawal_wins_and_a_late_old_grant_does_not_undo_it(api):
    api.record(expect=None, email="b@example.com", occurred_at="2026-01-01T00:00:00Z")
    withdrawn = api.record(expect=None, email="b@example.com", status="withdrawn", occurred_at="2026-02-01T00:00:00Z")
    assert withdrawn.json["applied"] is True
    late_import = api.record(expect=None, email="b@example.com", source="import", occurred_at="2026-01-15T00:00:00Z")
    assert late_import.status_code == 201 and late_import.json["applied"] is False
    assert api.check(email="b@example.com").json == {
        "allowed": False,
        "reason": "withdrawn",
        "since": "2026-02-01T00:00:00+00:00",
    }


def test_a_newer_grant_after_a_withdrawal_allows_again(api):
    api.record(expect=None, email="c@example.com", status="withdrawn", occurred_at="2026-01-01T00:00:00Z")
    api.record(expect=None, email="c@example.com", occurred_at="2026-03-01T00:00:00Z")
    assert api.check(email="c@example.com").json["reason"] == "granted"


@pytest.mark.parametrize(("first", "second"), [("granted", "withdrawn"), ("withdrawn", "granted")])
def test_on_a_tie_withdrawal_wins_whatever_the_arrival_order(first, second, api):
    moment = "2026-05-05T12:00:00Z"
    api.record(expect=None, email="tie@example.com", status=first, occurred_at=moment)
    api.record(expect=None, email="tie@example.com", status=second, occurred_at=moment)
    assert api.check(email="tie@example.com").json["reason"] == "withdrawn"


def test_consent_is_per_purpose(api):
    api.record(expect=None, email="d@example.com")
    assert api.check(email="d@example.com", purpose="offers").json["reason"] == "no_consent"


def test_the_person_can_be_named_by_phone_fax_external_ref_or_subject_id(api_key, api):
    phone = api.record(expect=None, phone="020 7946 0001", channel="phone", purpose="marketing").json
    assert api.check(phone="+442079460001", channel="phone", purpose="marketing").json["allowed"] is True
    fax = api.record(expect=None, fax="+44 20 7946 0002", channel="fax", purpose="marketing").json
    assert fax["subject_id"] != phone["subject_id"]
    by_ref = api.record(expect=None, external_ref="CRM-77", channel="mail", purpose="marketing").json
    again = api.record(expect=None, subject_id=by_ref["subject_id"], channel="mail", purpose="marketing", status="withdrawn").json
    assert again["subject_id"] == by_ref["subject_id"]
    assert api.check(external_ref="CRM-77", channel="mail", purpose="marketing").json["reason"] == "withdrawn"


def test_unknown_channel_or_purpose_is_422_listing_the_valid_ones(api):
    response = api.record(expect=None, email="e@example.com", channel="sms", purpose="marketing")
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert "email, phone, fax, mail, partner" in response.json["errors"]["channel"][0]

    response = api.record(expect=None, email="e@example.com", channel="phone", purpose="newsletter")
    assert response.status_code == 422
    assert response.json["errors"]["purpose"] == ["unknown purpose 'newsletter' for channel phone; valid purposes: marketing"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "maybe"}, "status"),
        ({"source": "one_click"}, "source"),  # reserved for the signed-link flows
        ({"source": "preference_center"}, "source"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),  # no zone
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"policy_version": "v9"}, "policy_version"),
        ({"evidence": {"ip": "not-an-ip"}}, "evidence.ip"),
        ({"evidence": {"colour": "blue"}}, "evidence"),
        ({"email": "not an email"}, "email"),
        ({"email": 42}, "email"),
        ({"unexpected": True}, "unexpected"),
    ],
)
def test_bad_fields_are_422_naming_the_field_and_nothing_is_written(fields, field, api):
    payload = {"email": "f@example.com", **fields}
    response = api.record(expect=None, **payload)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"], response.json
    assert api.changes()["events"] == []


def test_the_person_must_be_named_exactly_once(api):
    for payload in ({}, {"email": "g@example.com", "phone": "+442079460003"}):
        response = api.record(expect=None, **payload)
        assert response.status_code == 422
        assert "subject" in response.json["errors"]


def test_an_unknown_subject_id_is_404(api):
    response = api.record(expect=None, subject_id="6f1d8a34-0000-4000-8000-000000000000")
    assert response.status_code == 404 and response.content_type == "application/problem+json"


def test_malformed_json_and_wrong_types_are_client_errors(client, headers):
    response = client.post("/v1/consents", data="{not json", headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["detail"] == "The request body is not valid JSON."
    response = client.post("/v1/consents", json=["a", "list"], headers=headers)
    assert response.status_code == 422


def test_an_oversize_body_is_413(make_app, headers):
    small = make_app(max_body_bytes=2048).test_client()
    body = '{"note": "' + "x" * 5000 + '"}'
    response = small.post("/v1/consents", data=body, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"


def test_the_current_policy_version_is_stamped_on_every_event(client, headers, admin, api):
    response = client.post("/v1/policy-versions", json={"version": "2015-07", "last_updated": "2015-07-01"}, headers=admin)
    assert response.status_code == 201
    event = api.record(expect=None, email="h@example.com").json
    assert event["policy_version"] == "2015-07"
    explicit = api.record(expect=None, email="h@example.com", policy_version="2015-07", status="withdrawn").json
    assert explicit["policy_version"] == "2015-07"
    duplicate = client.post("/v1/policy-versions", json={"version": "2015-07", "last_updated": "2015-07-01"}, headers=admin)
    assert duplicate.status_code == 409


def test_an_event_before_any_policy_took_effect_carries_none(client, headers, admin, api):
    client.post(
        "/v1/policy-versions",
        json={"version": "2026-01", "last_updated": "2026-01-01", "effective_at": "2026-01-01T00:00:00Z"},
        headers=admin,
    )
    old = api.record(expect=None, email="i@example.com", occurred_at="2025-06-01T00:00:00Z").json
    assert old["policy_version"] is None
