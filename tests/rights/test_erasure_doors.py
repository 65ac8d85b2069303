"""After an erasure, every door that names the person by any key answers the
same: checks say `erased`, writes record nothing and re-create nobody, and no
plain text of their identifiers is left in the database."""

from __future__ import annotations

import csv
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from prefs_service import channels
from prefs_service.cli import main
from prefs_service.consent.models import ConsentEvent
from prefs_service.extensions import db
from prefs_service.subjects.models import Subject
from tests.helpers import plaintext_holders

EMAIL, PHONE, FAX, POSTAL, REF = "erin@example.com", "+442079460123", "+442079460124", "1 Erased Row, London, SW1A 1AA", "CRM-ERIN-7"


@pytest.fixture
def erased(client, headers, worker):
    """Erin, with every kind of key and some consent, erased at her request."""
    erin = client.post(
        "/v1/subjects",
        json={"email": EMAIL, "phone": PHONE, "fax": FAX, "postal_address": POSTAL, "external_ref": REF, "name": "Erin Erased"},
        headers=headers,
    ).json
    for channel, purpose in channels.all_purposes():
        client.post(
            "/v1/consents", json={"subject_id": erin["id"], "channel": channel, "purpose": purpose, "status": "granted"}, headers=headers
        )
    made = client.post("/v1/requests", json={"type": "erasure", "subject_id": erin["id"], "verified": True}, headers=headers)
    assert made.status_code == 201
    worker.wait()
    assert client.get(f"/v1/requests/{made.json['id']}", headers=headers).json["status"] == "completed"
    return erin


def keys_of(erin) -> dict[str, str]:
    return {"subject_id": erin["id"], "external_ref": REF, "email": EMAIL, "phone": PHONE, "fax": FAX, "postal_address": POSTAL}


def ledger_size(app) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent))
        db.session.rollback()
        return count


def people(app) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Subject))
        db.session.rollback()
        return count


def test_every_check_by_every_key_answers_erased_for_every_purpose(client, headers, erased):
    for key, value in keys_of(erased).items():
        for channel, purpose in channels.all_purposes():
            answer = client.get(
                "/v1/consent/check", query_string={"channel": channel, "purpose": purpose, key: value}, headers=headers
            ).json
            assert (answer["allowed"], answer["reason"]) == (False, "erased"), (key, channel, purpose, answer)
            bulk = client.post(
                "/v1/consent/check",
                json={"channel": channel, "purpose": purpose, "identifier_type": key, "recipients": [value]},
                headers=headers,
            ).json["results"]
            assert [(r["allowed"], r["reason"]) for r in bulk] == [(False, "erased")], (key, channel, purpose)
    view = client.get(f"/v1/subjects/{erased['id']}/consents", headers=headers).json["consents"]
    assert {(row["allowed"], row["reason"]) for row in view} == {(False, "erased")}


def test_no_single_write_by_any_key_records_or_re_creates_the_person(app, client, headers, erased):
    before, subjects_before = ledger_size(app), people(app)
    for key in ("subject_id", "external_ref", "email", "phone", "fax"):
        for source in ("api", "import", "signup"):
            answer = client.post(
                "/v1/consents",
                json={key: keys_of(erased)[key], "channel": "email", "purpose": "offers", "status": "granted", "source": source,
                      "evidence": {"ip": "203.0.113.5", "note": "re-synced"}},
                headers=headers,
            )  # fmt: skip
            assert answer.status_code == 409, (key, source, answer.json)
            assert answer.content_type == "application/problem+json" and answer.json["type"].endswith("/problems/erased")
            assert key in answer.json["errors"]
    for body in ({"email": EMAIL}, {"external_ref": REF}, {"phone": PHONE}, {"postal_address": POSTAL}, {"fax": FAX, "name": "Someone"}):
        answer = client.post("/v1/subjects", json=body, headers=headers)
        assert answer.status_code == 409 and answer.json["type"].endswith("/problems/erased"), body
    assert client.patch(f"/v1/subjects/{erased['id']}", json={"name": "Back"}, headers=headers).status_code == 409
    other = client.post("/v1/subjects", json={"email": "other@example.com"}, headers=headers).json
    for body in ({"email": EMAIL}, {"phone": PHONE}, {"external_ref": REF}):
        answer = client.patch(f"/v1/subjects/{other['id']}", json=body, headers=headers)
        assert answer.status_code == 409 and answer.json["type"].endswith("/problems/erased"), body
    client.post("/v1/partners", json={"code": "acme", "name": "Acme", "contact_email": "privacy@acme.example.com"}, headers=headers)
    disclosure = client.post(
        "/v1/disclosures",
        json={"subject_id": erased["id"], "partner": "acme", "data_categories": ["email"], "purpose": "share_for_fulfilment"},
        headers=headers,
    )
    assert disclosure.status_code == 409 and disclosure.json["type"].endswith("/problems/erased")
    correction = client.post(
        "/v1/requests",
        json={"type": "correction", "subject_id": erased["id"], "changes": {"name": "Erin"}, "verified": True},
        headers=headers,
    )
    assert correction.status_code == 409
    assert ledger_size(app) == before and people(app) == subjects_before + 1  # only `other`
    assert plaintext_holders(app, [EMAIL, PHONE, FAX, POSTAL, REF, "Erin Erased"]) == []


def test_batches_and_imports_by_any_key_skip_the_person(app, client, headers, erased, tmp_path):
    before, subjects_before = ledger_size(app), people(app)
    events = [
        {key: value, "channel": "email", "purpose": "offers", "status": "granted", "source": "import", "evidence": {"note": "sync"}}
        for key, value in keys_of(erased).items()
        if key != "postal_address"
    ]
    events.append({"email": "fresh@example.com", "channel": "email", "purpose": "offers", "status": "granted"})
    answer = client.post("/v1/consents/batch", json={"events": events}, headers=headers)
    assert answer.status_code == 201 and answer.json == {"recorded": 1, "skipped_erased": [0, 1, 2, 3, 4]}

    path = tmp_path / "crm.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_ref", "email", "channel", "purpose", "status"])
        writer.writerows([[REF, "", "email", "newsletter", "granted"], ["", EMAIL.upper(), "email", "newsletter", "granted"]])
    result = app.test_cli_runner().invoke(main, ["import", "consents", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 0 consent events" in result.output and "Skipped 2 rows" in result.output and "lines 2, 3" in result.output
    assert ledger_size(app) == before + 1 and people(app) == subjects_before + 1  # only fresh@
    assert plaintext_holders(app, [EMAIL, PHONE, FAX, POSTAL, REF]) == []
    check = {"channel": "email", "purpose": "offers", "external_ref": REF}
    assert client.get("/v1/consent/check", query_string=check, headers=headers).json["reason"] == "erased"


def test_erasure_removes_every_file_of_the_person(make_app, api_key, tmp_path):
    from tests.conftest import InProcessWorker

    outbox = tmp_path / "outbox"
    app = make_app(mail_url=f"file://{outbox}")
    client, headers = app.test_client(), api_key("admin")
    app.extensions["prefs.jobs"].start(threads=2)
    frank = client.post("/v1/subjects", json={"email": "frank@example.com", "name": "Frank"}, headers=headers).json
    access = client.post("/v1/requests", json={"type": "access", "subject_id": frank["id"], "verified": True}, headers=headers).json
    InProcessWorker(app).wait()
    exports = app.config["PREFS"].export_dir
    assert (exports / f"{access['reference']}.zip").exists()
    leftover = exports / f"{access['reference']}.zip.part{'0' * 32}"  # what a worker killed mid-export leaves
    leftover.write_bytes(b"frank@example.com")
    assert any("frank@example.com" in p.read_text() for p in outbox.glob("*.eml"))

    client.post("/v1/requests", json={"type": "erasure", "subject_id": frank["id"], "verified": True}, headers=headers)
    InProcessWorker(app).wait()
    assert list(exports.glob(f"{access['reference']}*")) == []
    # Only the confirmation of the erasure, sent after it, is left in the mail folder.
    left = [p.read_text() for p in outbox.glob("*.eml") if "frank@example.com" in p.read_text()]
    assert len(left) == 1 and "erased" in left[0]


def test_the_erased_problem_type_explains_itself(client, headers, erased):
    refused = client.post(
        "/v1/consents", json={"subject_id": erased["id"], "channel": "email", "purpose": "offers", "status": "granted"}, headers=headers
    )
    page = client.get(urlsplit(refused.json["type"]).path)
    assert page.status_code == 200 and page.mimetype == "text/html" and b"erased at their request" in page.data
    assert client.get("/problems/no-such-type").status_code == 404
