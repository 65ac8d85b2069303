"""Input the fuzzer found answered with 500s or wrong successes: each class is
now a 4xx problem naming what to fix, and nothing is written."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from tests.conftest import TEST_WEBHOOK_SECRET

PROBLEM = "application/problem+json"
JSON_ENDPOINTS = [
    ("post", "/v1/subjects"),
    ("patch", "/v1/subjects/6f1d8a34-0000-4000-8000-000000000000"),
    ("post", "/v1/consents"),
    ("post", "/v1/consents/batch"),
    ("post", "/v1/consent/check"),
    ("post", "/v1/suppressions"),
    ("post", "/v1/policy-versions"),
    ("post", "/v1/unsubscribe-links"),
    ("post", "/v1/requests"),
    ("post", "/v1/requests/1/reject"),
    ("post", "/v1/requests/1/extend"),
    ("post", "/v1/partners"),
    ("post", "/v1/disclosures"),
]
EDGE_MOMENTS = ["0001-01-01T00:00:00+02:00", "9999-12-31T23:59:59-02:00"]


def send(client, method, path, headers, body: bytes | None = None, content_type: str | None = "application/json"):
    extra = {"Content-Type": content_type} if content_type else {}
    return getattr(client, method)(path, data=body, headers={**headers, **extra})


def assert_problem(response, status, field=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    if field is not None:
        assert field in response.json["errors"], response.json


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_missing_body_is_refused_on_every_json_endpoint(client, admin, method, path):
    assert_problem(send(client, method, path, admin, b""), 422, "body")
    assert_problem(send(client, method, path, admin, None, content_type=None), 415)


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_body_that_is_not_json_by_its_content_type_is_415(client, admin, method, path):
    assert_problem(send(client, method, path, admin, b'{"name": "x"}', content_type="text/plain"), 415)


def test_an_empty_body_no_longer_creates_an_empty_person(client, admin):
    assert_problem(send(client, "post", "/v1/subjects", admin, b""), 422, "body")
    assert_problem(send(client, "post", "/v1/subjects", admin, b"{}", content_type="application/x-www-form-urlencoded"), 415)
    created = client.post("/v1/subjects", json={"external_ref": "first"}, headers=admin)
    assert created.status_code == 201
    assert_problem(send(client, "patch", f"/v1/subjects/{created.json['id']}", admin, b""), 422, "body")
    assert client.get(f"/v1/subjects/{created.json['id']}", headers=admin).json["external_ref"] == "first"


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_json_nested_a_thousand_deep_is_400_on_every_json_endpoint(client, admin, method, path):
    deep = b"[" * 1000 + b"]" * 1000
    assert_problem(send(client, method, path, admin, b'{"name": ' + deep + b"}"), 400, "body")
    assert_problem(send(client, method, path, admin, deep), 400, "body")


def stripe_post(client, body: bytes):
    timestamp = int(time.time())
    digest = hmac.new(TEST_WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}
    return client.post("/webhooks/stripe", data=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "evt_1", "type": "x", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"id": "evt_1", "type": "customer.created", "data": [1]}',
        b'{"id": "evt_\\u0000", "type": "customer.created"}',
        b'{"id": "evt_\\ud800", "type": "customer.created"}',
    ],
    ids=["nested-1000-deep", "data-not-an-object", "nul-in-id", "surrogate-in-id"],
)
def test_a_correctly_signed_stripe_event_that_cannot_be_stored_is_400(client, body):
    assert_problem(stripe_post(client, body), 400)


def test_out_of_range_ids_in_paths_name_the_parameter(client, admin):
    assert_problem(client.get("/v1/requests/99999999999", headers=admin), 422, "request_id")
    assert_problem(client.post("/v1/requests/2147483648/approve", headers=admin), 422, "request_id")
    assert_problem(client.get("/v1/requests/2147483647", headers=admin), 404)


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/v1/subjects/6f1d8a34-0000-4000-8000-000000000000/consents", {"history": "1", "before": str(2**63)}, "before"),
        ("/v1/subjects/6f1d8a34-0000-4000-8000-000000000000/consents", {"limit": "9" * 5000}, "limit"),
        ("/v1/consent/changes", {"limit": "9" * 5000}, "limit"),
        ("/v1/consent/changes", {"after": f"{2**63}.1"}, "after"),
        ("/v1/consent/changes", {"after": f"1.{2**63}"}, "after"),
        ("/v1/consent/changes", {"after": "1_0.1"}, "after"),
        ("/v1/requests", {"limit": "1e3"}, "limit"),
    ],
)
def test_out_of_range_integers_in_queries_and_cursors_name_the_field(client, admin, path, query, field):
    assert_problem(client.get(path, query_string=query, headers=admin), 422, field)


@pytest.mark.parametrize("moment", EDGE_MOMENTS)
def test_calendar_edge_times_with_offsets_are_refused_in_every_datetime_field(client, admin, moment):
    consent = {"email": "edge@example.com", "channel": "email", "purpose": "newsletter", "status": "granted", "occurred_at": moment}
    assert_problem(client.post("/v1/consents", json=consent, headers=admin), 422, "occurred_at")
    batch = client.post("/v1/consents/batch", json={"events": [consent]}, headers=admin)
    assert_problem(batch, 422, "events")
    policy = {"version": "edge", "last_updated": "2026-01-01", "effective_at": moment}
    assert_problem(client.post("/v1/policy-versions", json=policy, headers=admin), 422, "effective_at")
    disclosure = {
        "subject_id": "6f1d8a34-0000-4000-8000-000000000000",
        "partner": "p",
        "data_categories": ["email"],
        "purpose": "share_for_fulfilment",
        "occurred_at": moment,
    }
    assert_problem(client.post("/v1/disclosures", json=disclosure, headers=admin), 422, "occurred_at")
    sales = client.get("/v1/partners/p/sales", query_string={"from": moment, "to": "2026-01-01"}, headers=admin)
    assert_problem(sales, 422, "from")
    assert (
        client.get(
            "/v1/consent/check", query_string={"channel": "email", "purpose": "newsletter", "email": "edge@example.com"}, headers=admin
        ).json["reason"]
        == "no_consent"
    )


def test_lone_surrogates_in_json_strings_name_the_field(client, admin):
    body = b'{"external_ref": "a\\ud800b"}'
    assert_problem(send(client, "post", "/v1/subjects", admin, body), 422, "external_ref")
    unknown_key = b'{"\\udfff": 1}'
    assert_problem(send(client, "post", "/v1/subjects", admin, unknown_key), 422)
    bulk = b'{"channel": "email", "purpose": "newsletter", "recipients": ["ok@example.com", "\\ud800@example.com"]}'
    response = send(client, "post", "/v1/consent/check", admin, bulk)
    assert_problem(response, 422, "recipients")
    assert list(response.json["errors"]["recipients"]) == ["1"]


def test_five_thousand_digit_integers_name_the_field(client, admin):
    digits = b"9" * 5000
    assert_problem(send(client, "post", "/v1/requests/1/extend", admin, b'{"months": ' + digits + b', "reason": "r"}'), 422, "months")
    assert_problem(send(client, "post", "/v1/subjects", admin, b'{"name": ' + digits + b"}"), 422, "name")


def test_nul_characters_are_refused_naming_the_field(client, admin):
    check = client.get("/v1/consent/check?channel=email&purpose=newsletter&external_ref=a%00b", headers=admin)
    assert_problem(check, 422, "external_ref")
    assert_problem(client.post("/v1/subjects", json={"external_ref": "a\x00b"}, headers=admin), 422, "external_ref")
    event = {"external_ref": "ref\x00", "channel": "email", "purpose": "newsletter", "status": "granted"}
    assert_problem(client.post("/v1/consents", json=event, headers=admin), 422, "external_ref")
    bulk = {"channel": "mail", "purpose": "marketing", "identifier_type": "external_ref", "recipients": ["a", "b\x00"]}
    response = client.post("/v1/consent/check", json=bulk, headers=admin)
    assert_problem(response, 422, "recipients")
    assert response.json["errors"]["recipients"] == {"1": ["must not contain NUL (\\u0000) characters"]}


@pytest.mark.parametrize(("channel", "purpose"), [("email", "transactional"), ("partner", "share_for_fulfilment"), (None, "transactional")])
def test_unsubscribe_links_are_not_minted_for_purposes_that_need_no_consent(client, admin, channel, purpose):
    client.post("/v1/subjects", json={"email": "links@example.com"}, headers=admin)
    payload = {"email": "links@example.com", "purpose": purpose, **({"channel": channel} if channel else {})}
    response = client.post("/v1/unsubscribe-links", json=payload, headers=admin)
    assert_problem(response, 422, "purpose")
    assert "needs no consent" in response.json["errors"]["purpose"][0]
    payload["purpose"] = "newsletter" if channel in (None, "email") else "share_for_marketing"
    assert client.post("/v1/unsubscribe-links", json=payload, headers=admin).status_code == 201


def test_undeclared_methods_on_health_checks_are_405_problems_with_allow(client):
    for path in ("/healthz", "/readyz"):
        response = client.open(path, method="TRACE")
        assert_problem(response, 405)
        assert "GET" in response.headers["Allow"]
