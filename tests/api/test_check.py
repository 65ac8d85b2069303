"""GET and POST /v1/consent/check: every reason, bulk order, limits."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Api


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write")


def test_transactional_is_allowed_without_consent_unless_suppressed(client, headers, api):
    assert api.check(email="t@example.com", purpose="transactional").json == {
        "allowed": True,
        "reason": "transactional",
        "since": None,
    }
    client.post("/v1/suppressions", json={"email": "T@example.com", "reason": "bounce"}, headers=headers)
    body = api.check(email="t@example.com", purpose="transactional").json
    assert body["allowed"] is False and body["reason"] == "suppressed" and body["since"]


def test_a_suppressed_identifier_is_never_allowed_for_marketing_even_with_a_grant(client, headers, api):
    api.record(email="s@example.com")
    response = client.post("/v1/suppressions", json={"email": "s@example.com", "reason": "complaint"}, headers=headers)
    assert response.status_code == 201 and response.json["kind"] == "email"
    again = client.post("/v1/suppressions", json={"email": "s@example.com", "reason": "complaint"}, headers=headers)
    assert again.status_code == 200
    api.record(email="s@example.com", occurred_at="2026-11-01T00:00:00Z")
    assert api.check(email="s@example.com").json["reason"] == "suppressed"


def test_suppression_of_an_unknown_person_holds_when_they_appear_later(client, headers, api):
    client.post("/v1/suppressions", json={"phone": "020 7946 0100", "reason": "objection"}, headers=headers)
    api.record(phone="+442079460100", channel="phone", purpose="marketing")
    assert api.check(phone="02079460100", channel="phone", purpose="marketing").json["reason"] == "suppressed"


def test_suppression_follows_the_channel_identifier_when_checked_by_subject_id(client, headers, api):
    event = api.record(email="by-id@example.com").json
    client.post("/v1/suppressions", json={"email": "by-id@example.com", "reason": "bounce"}, headers=headers)
    assert api.check(subject_id=event["subject_id"]).json["reason"] == "suppressed"
    # a suppressed email does not silence the phone
    api.record(subject_id=event["subject_id"], channel="phone", purpose="marketing")
    assert api.check(subject_id=event["subject_id"], channel="phone", purpose="marketing").json["reason"] == "granted"


def test_the_answer_does_not_depend_on_the_key_that_names_the_person(client, headers, api_key, api):
    event = api.record(email="keys@example.com", channel="phone", purpose="marketing").json
    patched = client.patch(
        f"/v1/subjects/{event['subject_id']}", json={"phone": "+442079460555"}, headers={**headers, **api_key("subjects:write")}
    )
    assert patched.status_code == 200
    client.post("/v1/suppressions", json={"email": "keys@example.com", "reason": "bounce"}, headers=headers)
    phone = {"channel": "phone", "purpose": "marketing"}
    answers = {
        key: api.check(**phone, **{key: value}).json["reason"]
        for key, value in (("email", "keys@example.com"), ("phone", "+442079460555"), ("subject_id", event["subject_id"]))
    }
    assert answers == {"email": "granted", "phone": "granted", "subject_id": "granted"}
    partner = {"channel": "partner", "purpose": "share_for_fulfilment"}
    assert api.check(**partner, email="keys@example.com").json["reason"] == "transactional"
    assert api.check(**partner, subject_id=event["subject_id"]).json["reason"] == "transactional"


def test_invalid_identifiers_answer_invalid(api):
    assert api.check(email="not-an-address").json == {"allowed": False, "reason": "invalid", "since": None}
    assert api.check(phone="123", channel="phone", purpose="marketing").json["reason"] == "invalid"
    assert api.check(subject_id="nope").json["reason"] == "invalid"


def test_unknown_people_have_no_consent(api):
    assert api.check(subject_id="6f1d8a34-0000-4000-8000-000000000000").json["reason"] == "no_consent"
    assert api.check(external_ref="nobody").json["reason"] == "no_consent"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"email": "a@example.com", "channel": "sms"}, "channel"),
        ({"email": "a@example.com", "purpose": "spam"}, "purpose"),
        ({"email": "a@example.com", "phone": "+442079460001"}, "subject"),
        ({}, "subject"),
        ({"emial": "a@example.com"}, "emial"),
    ],
)
def test_bad_check_queries_are_422(query, field, api):
    response = api.check(**query)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_bulk_answers_in_input_order_with_invalid_items_inline(client, headers, api):
    api.record(email="yes@example.com")
    api.record(email="no@example.com", status="withdrawn")
    client.post("/v1/suppressions", json={"email": "gone@example.com", "reason": "bounce"}, headers=headers)
    recipients = ["no@example.com", "  YES@example.com", "garbage", "unknown@example.com", "gone@example.com", 17, "yes@example.com"]
    response = api.bulk(recipients)
    assert response.status_code == 200
    assert response.json["results"] == [
        {"recipient": "no@example.com", "allowed": False, "reason": "withdrawn"},
        {"recipient": "  YES@example.com", "allowed": True, "reason": "granted"},
        {"recipient": "garbage", "allowed": False, "reason": "invalid"},
        {"recipient": "unknown@example.com", "allowed": False, "reason": "no_consent"},
        {"recipient": "gone@example.com", "allowed": False, "reason": "suppressed"},
        {"recipient": 17, "allowed": False, "reason": "invalid"},
        {"recipient": "yes@example.com", "allowed": True, "reason": "granted"},
    ]


def test_bulk_answers_integers_past_64_bits_as_invalid(client, headers):
    """Found by the fuzz test: such recipients could not be written back (a 500)."""
    body = (
        '{"channel": "email", "purpose": "newsletter", "recipients": [-79157492902855966720, 1180591620717411303424, "nobody@example.com"]}'
    )
    response = client.post("/v1/consent/check", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    results = response.json["results"]
    assert results[0] == {"recipient": -79157492902855966720, "allowed": False, "reason": "invalid"}
    assert results[1]["reason"] == "invalid" and results[1]["allowed"] is False  # too long to read: not echoed as a number
    assert results[2] == {"recipient": "nobody@example.com", "allowed": False, "reason": "no_consent"}


def test_bulk_answers_every_slice_in_order_with_its_length(client, headers, api):
    """Recipients are checked, and answers written, a slice at a time: slices
    meet without a gap or a repeat, one slice's unwritable recipient leaves the
    others as they are, and the whole still carries its Content-Length."""
    granted = [999, 1000, 2047, 2048, 4095, 4096, 4499]
    for i in granted:
        api.record(email=f"user{i}@example.com")
    recipients: list[object] = [f"user{i}@example.com" for i in range(4500)]
    recipients[3000] = -79157492902855966720  # past 64 bits: that slice of the answer is written the slow way
    recipients[3001] = "user999@example.com"  # a recipient of an earlier slice, again
    items = b",".join(str(r).encode() if isinstance(r, int) else orjson.dumps(r) for r in recipients)
    body = b'{"channel": "email", "purpose": "newsletter", "recipients": [' + items + b"]}"
    response = client.post("/v1/consent/check", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.data)
    results = response.json["results"]
    assert [r["recipient"] for r in results] == recipients
    assert results[3000]["reason"] == "invalid"
    assert [i for i, r in enumerate(results) if r["allowed"]] == [999, 1000, 2047, 2048, 3001, 4095, 4096, 4499]


def test_bulk_for_phone_and_by_external_ref(api):
    api.record(phone="+442079460200", channel="phone", purpose="marketing")
    api.record(external_ref="R-1", channel="mail", purpose="marketing")
    phone = api.bulk(["020 7946 0200", "+442079460201"], channel="phone", purpose="marketing").json
    assert [r["reason"] for r in phone["results"]] == ["granted", "no_consent"]
    refs = api.bulk(["R-1", "R-2"], channel="mail", purpose="marketing", identifier_type="external_ref").json
    assert [r["reason"] for r in refs["results"]] == ["granted", "no_consent"]


def test_bulk_partner_channel_needs_an_identifier_type(api):
    response = api.bulk(["a@example.com"], channel="partner", purpose="share_for_marketing")
    assert response.status_code == 422 and "identifier_type" in response.json["errors"]
    ok = api.bulk(["a@example.com"], channel="partner", purpose="share_for_marketing", identifier_type="email")
    assert ok.json["results"][0]["reason"] == "no_consent"


def test_bulk_takes_ten_thousand_and_refuses_more_naming_the_limit(api):
    api.record(email="user9999@example.com")
    recipients = [f"user{i}@example.com" for i in range(10_000)]
    response = api.bulk(recipients)
    assert response.status_code == 200
    results = response.json["results"]
    assert len(results) == 10_000 and results[9999]["allowed"] is True and not results[0]["allowed"]
    too_many = api.bulk([*recipients, "one-more@example.com"])
    assert too_many.status_code == 422
    assert "10000" in too_many.json["errors"]["recipients"][0]


@pytest.mark.parametrize("recipients", [[], "a@example.com", None, {"a": 1}])
def test_bulk_needs_a_list_of_recipients(recipients, api):
    response = api.bulk(recipients)
    assert response.status_code == 422 and "recipients" in response.json["errors"]


def test_checks_recover_when_the_database_drops_every_connection(make_app, app, headers, database_url):
    """A database restart: the first check on a dead pooled connection may fail,
    with a 503 problem saying when to retry, and every check after it is answered again."""
    from prefs_service.extensions import db

    serving = make_app(api_key_cache_seconds=60)  # as in production: checks reach the database only for consent
    api = Api(serving.test_client(), headers)
    api.record(email="restart@example.com")
    assert api.check(email="restart@example.com").status_code == 200
    with serving.app_context():  # several pooled connections, as a busy server holds, all to be dropped
        held = [db.engine.raw_connection() for _ in range(4)]
        drivers = [conn.driver_connection for conn in held]
        for conn in held:
            conn.close()
    if database_url.startswith("postgresql"):  # the server ends every session
        import psycopg

        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    else:  # a file has no server: the connections are closed under the pool
        for driver in drivers:
            driver.close()
    first = api.check(email="restart@example.com")
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert first.mimetype == "application/problem+json" and "restart@example.com" not in first.get_data(as_text=True)
        assert first.headers["Retry-After"] == "5"
    answers = [api.check(email="restart@example.com") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[-1].json["reason"] == "granted"
    assert api.record(email="restart@example.com", status="withdrawn").json["status"] == "withdrawn"
    with app.app_context():  # the fixtures' own app lost its connections too
        db.engine.dispose()


QUERY_KEYS = ["channel", "purpose", "email", "phone", "fax", "postal_address", "subject_id", "external_ref", "typo"]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.text(max_size=8)), max_size=5))
def test_the_single_checks_quick_query_reading_agrees_with_its_schema(app, pairs):
    """GET /v1/consent/check reads its common query shape without the schema:
    for any query, it must get what the schema gives, or the same error."""
    from urllib.parse import urlencode

    from flask import request
    from werkzeug.exceptions import HTTPException

    from prefs_service.api import schemas
    from prefs_service.api.consents import blp, check_query

    def outcome(read):
        try:
            return read()
        except HTTPException as error:
            return error.code, error.data["messages"]

    with app.test_request_context("/v1/consent/check?" + urlencode(pairs)):
        quick = outcome(check_query)
        full = outcome(lambda: blp.ARGUMENTS_PARSER.parse(schemas.CheckQuery(), request, location="query"))
    assert quick == full
