"""GET /v1/consent/events/{id}/receipt: both standard formats, every required
item, and clear answers for bad formats, unknown ids and erased people."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from prefs_service.consent.models import ConsentEvent
from prefs_service.extensions import db

from .receipt_support import schema_errors


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "admin")


def _record(api, **kw) -> dict:
    defaults = {"email": "rita@example.com", "source": "signup", "occurred_at": "2026-03-01T10:00:00Z"}
    return api.record(expect=None, **{**defaults, **kw}).json


@pytest.mark.parametrize("fmt", ["iso27560", "kantara"])
def test_a_receipt_validates_against_its_standard_schema(api, client, headers, fmt):
    event = _record(api)
    response = client.get(f"/v1/consent/events/{event['id']}/receipt?format={fmt}", headers=headers)
    assert response.status_code in (200, 202)
    assert schema_errors(fmt, response.json) == []


def test_the_kantara_receipt_carries_every_required_item(make_app, api, headers):
    app = make_app(org_phone="+44 20 7946 0999", org_postal_address="1 Quay Street, Leeds")
    client = app.test_client()
    event = _record(api, status="withdrawn", source="paper_form")
    receipt = client.get(f"/v1/consent/events/{event['id']}/receipt?format=kantara", headers=headers).json
    controller = receipt["piiControllers"][0]
    settings = app.config["PREFS"]
    assert (controller["piiController"], controller["email"], controller["phone"]) == (
        settings.org_name,
        settings.support_email,
        "+44 20 7946 0999",
    )
    assert receipt["policyUrl"].startswith("http") and "policyVersion" in receipt
    purpose = receipt["services"][0]["purposes"][0]
    assert (purpose["channel"], purpose["purposeId"]) == ("email", event["purpose"])
    assert receipt["legalBasis"] == "consent"
    assert receipt["collectionMethod"] == "Paper form"
    assert controller["address"] == {"streetAddress": "1 Quay Street, Leeds"}
    assert receipt["consentTimestamp"] == int(datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp())
    assert receipt["consentStatus"] == "withdrawn"
    assert receipt["withdrawal"]["url"] == f"{settings.base_url}/preferences"
    assert receipt["ledgerProof"]["status"] in ("pending", "included")


def test_the_iso_record_carries_every_required_item(app, api, client, headers):
    published = {
        "version": "2026-02",
        "last_updated": "2026-02-01",
        "url": "https://example.com/privacy/2026-02",
        "effective_at": "2026-02-01T00:00:00Z",
    }
    assert client.post("/v1/policy-versions", json=published, headers=headers).status_code == 201
    event = _record(api)
    record = client.get(f"/v1/consent/events/{event['id']}/receipt?format=iso27560", headers=headers).json
    settings = app.config["PREFS"]
    assert record["dpv:hasDataController"]["schema:name"] == settings.org_name
    assert record["dpv:hasDataController"]["dpv:hasContact"]["schema:email"] == settings.support_email
    assert record["dpv:hasNotice"] == {
        "@id": "https://example.com/privacy/2026-02",
        "@type": "dpv:PrivacyNotice",
        "dct:hasVersion": "2026-02",
    }
    process = record["dpv:hasProcess"]
    assert (process["prefs:channel"], process["dpv:hasPurpose"]["dct:identifier"]) == ("email", event["purpose"])
    assert process["dpv:hasLegalBasis"] == "eu-gdpr:A6-1-a"  # the default jurisdiction is GB
    status = record["dpv:hasConsentStatus"]
    assert status["@type"] == "dpv:ConsentGiven"
    assert status["dpv:isIndicatedAtTime"] == "2026-03-01T10:00:00Z"
    assert status["dpv:hasIndicationMethod"] == "Sign-up form"
    assert record["dpv:hasRight"]["dpv:isExercisedAt"]["schema:url"] == f"{settings.base_url}/preferences"
    assert record["dpv:hasDataSubject"]["@id"] == f"urn:uuid:{event['subject_id']}"


def test_the_default_format_is_iso27560(api, client, headers):
    event = _record(api)
    assert client.get(f"/v1/consent/events/{event['id']}/receipt", headers=headers).json["@type"] == "dpv:ConsentRecord"


def test_bad_format_and_unknown_ids_are_clear_4xx(api, client, headers):
    event = _record(api)
    bad = client.get(f"/v1/consent/events/{event['id']}/receipt?format=pdf", headers=headers)
    assert bad.status_code == 422 and bad.content_type == "application/problem+json"
    assert client.get("/v1/consent/events/999999/receipt", headers=headers).status_code == 404
    assert client.get("/v1/consent/events/99999999999999/receipt", headers=headers).status_code == 422
    assert client.get(f"/v1/consent/events/{event['id']}/receipt").status_code == 401


def test_the_scope_is_consent_read(api, client, api_key):
    event = _record(api)
    assert client.get(f"/v1/consent/events/{event['id']}/receipt", headers=api_key("requests:read")).status_code == 403


def test_an_erased_persons_events_have_no_receipt(app, api, client, headers):
    event = _record(api)
    with app.app_context():
        from prefs_service.subjects.models import Subject

        db.session.execute(
            sa.update(Subject).where(Subject.id == db.session.get(ConsentEvent, event["id"]).subject_id).values(erased_at=datetime.now(UTC))
        )
        db.session.commit()
    assert client.get(f"/v1/consent/events/{event['id']}/receipt", headers=headers).status_code == 404
