"""Rights requests under each jurisdiction's law, end to end: through the API
and the public form, with the real worker, ledger and mail server."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from prefs_service.extensions import db
from prefs_service.rights import clocks
from prefs_service.rights.calendar import add_business_days, add_months
from prefs_service.rights.models import RightsRequest
from prefs_service.subjects.models import Subject
from tests.rights.conftest import link_in, mails_to
from tests.rights.test_lifecycle import make_request


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _request(client, headers, expect=201, **body):
    made = client.post("/v1/requests", json=body, headers=headers)
    assert made.status_code == expect, made.json
    return made.json


def _received_earlier(app, request_id: int, by: timedelta) -> None:
    """The request came in `by` ago (and was confirmed then, if it was)."""
    with app.app_context():
        request = db.session.get_one(RightsRequest, request_id)
        request.created_at -= by
        if request.verified_at is not None:
            request.verified_at -= by
        db.session.commit()


def test_a_us_ca_request_is_acknowledged_once_on_receipt_and_answered_within_45_days(app, client, person, headers, smtp, worker):
    made = _request(client, headers, type="access", email="ann@example.com", jurisdiction="US-CA")
    received = moment(made["created_at"])
    assert made["jurisdiction"] == "US-CA" and made["status"] == "awaiting_verification"
    assert moment(made["acknowledge_by"]) == add_business_days(received, 10, "US-CA")
    assert made["acknowledged_at"] is None and made["due_at"] is None
    worker.wait()
    [acknowledgement] = mails_to(smtp, "ann@example.com")
    text = acknowledgement.get_body(("plain",)).get_content()
    assert "within 45 days of today" in text and made["reference"] in text
    item = client.get(f"/v1/requests/{made['id']}", headers=headers).json
    sent_at = moment(item["acknowledged_at"])
    assert received <= sent_at <= moment(item["acknowledge_by"])
    assert "request.acknowledged" in [e["action"] for e in item["timeline"]]
    # The person confirms; the answer is due 45 days after receipt, not after confirming.
    _received_earlier(app, made["id"], timedelta(days=3))
    assert client.post(link_in(acknowledgement, "/privacy-requests/verify/")).status_code == 200
    worker.wait()
    item = client.get(f"/v1/requests/{made['id']}", headers=headers).json
    assert item["status"] == "completed"
    assert moment(item["due_at"]) == received - timedelta(days=3) + timedelta(days=45)
    assert moment(item["acknowledged_at"]) == sent_at  # recorded once
    assert len([m for m in mails_to(smtp, "ann@example.com") if "We received your request" in m["Subject"]]) == 1
    # The request set Ann's jurisdiction once she confirmed it.
    with app.app_context():
        assert db.session.get_one(Subject, uuid.UUID(person["id"])).jurisdiction == "US-CA"


def test_a_gb_request_owes_no_acknowledgement_and_follows_the_month(client, headers):
    made = _request(client, headers, type="erasure", email="bob@example.com", jurisdiction="GB", verified=True)
    assert made["jurisdiction"] == "GB" and made["acknowledge_by"] is None
    expected = clocks.answer_due(
        jurisdiction="GB", type="erasure", received=moment(made["created_at"]), verified=moment(made["verified_at"])
    )
    assert moment(made["due_at"]) == expected
    assert add_months(moment(made["verified_at"]), 1) <= expected <= add_months(moment(made["verified_at"]), 1) + timedelta(days=5)


def test_without_a_jurisdiction_the_request_follows_the_persons_or_the_default(app, make_app, client, person, headers):
    assert _request(client, headers, type="access", email="nobody@example.com")["jurisdiction"] == "GB"  # the default
    with app.app_context():
        db.session.get_one(Subject, uuid.UUID(person["id"])).jurisdiction = "EU"
        db.session.commit()
    assert _request(client, headers, type="access", subject_id=person["id"])["jurisdiction"] == "EU"
    refused = client.post("/v1/requests", json={"type": "access", "email": "a@example.com", "jurisdiction": "Mars"}, headers=headers)
    assert refused.status_code == 422 and "jurisdiction" in str(refused.json)


def test_gdpr_extends_only_within_the_first_month(app, client, headers):
    made = _request(client, headers, type="correction", email="cy@example.com", changes={"name": "Cy"}, verified=True, jurisdiction="EU")
    _received_earlier(app, made["id"], timedelta(days=40))
    late = client.post(f"/v1/requests/{made['id']}/extend", json={"months": 1, "reason": "Busy."}, headers=headers)
    assert late.status_code == 409 and "too late to extend" in late.json["detail"]
    missing = client.post(f"/v1/requests/{made['id']}/extend", json={"reason": "Busy."}, headers=headers)
    assert missing.status_code == 422 and missing.json["errors"] == {"months": ["extend by 1 or 2 months"]}


def test_ccpa_extends_once_by_45_days_with_notice(app, client, headers, smtp, worker):
    made = _request(
        client, headers, type="correction", email="dee@example.com", changes={"name": "Dee"}, verified=True, jurisdiction="US-CA"
    )
    assert moment(made["due_at"]) == moment(made["created_at"]) + timedelta(days=45)
    by_months = client.post(f"/v1/requests/{made['id']}/extend", json={"months": 1, "reason": "Busy."}, headers=headers)
    assert by_months.status_code == 422 and "45 days" in str(by_months.json["errors"])
    extended = client.post(f"/v1/requests/{made['id']}/extend", json={"reason": "Archived records."}, headers=headers)
    assert extended.status_code == 200, extended.json
    assert extended.json["extension_days"] == 45 and extended.json["extension_months"] is None
    assert moment(extended.json["due_at"]) == moment(made["created_at"]) + timedelta(days=90)
    again = client.post(f"/v1/requests/{made['id']}/extend", json={"reason": "More."}, headers=headers)
    assert again.status_code == 409 and "once" in again.json["detail"]
    worker.wait()
    [notice] = [m for m in mails_to(smtp, "dee@example.com") if "more time" in m["Subject"]]
    assert "Archived records." in notice.get_body(("plain",)).get_content()


def test_ccpa_refuses_an_extension_after_the_first_45_days(app, client, headers):
    made = _request(client, headers, type="access", email="eve@example.com", verified=True, jurisdiction="US-CA")
    _received_earlier(app, made["id"], timedelta(days=46))
    late = client.post(f"/v1/requests/{made['id']}/extend", json={"reason": "Busy."}, headers=headers)
    assert late.status_code == 409 and "within the first 45 days" in late.json["detail"]


def _share_states(api, subject_id):
    states = api.states(subject_id)
    return states[("partner", "share_for_marketing")], states[("profile", "use_sensitive_data")]


def test_an_opt_out_of_sale_and_sharing_needs_no_verification_and_withdraws_through_the_ledger(
    app, api, client, person, headers, smtp, worker
):
    api.record(subject_id=person["id"], channel="partner", purpose="share_for_marketing")
    api.record(subject_id=person["id"], channel="profile", purpose="use_sensitive_data")
    assert _share_states(api, person["id"]) == ("granted", "granted")
    made = _request(client, headers, type="opt_out_sale_sharing", email="ann@example.com", jurisdiction="US-CA")
    assert made["status"] == "processing" and made["verified_at"] is None and made["acknowledge_by"] is None
    assert moment(made["due_at"]) == add_business_days(moment(made["created_at"]), 15, "US-CA")
    worker.wait()
    item = client.get(f"/v1/requests/{made['id']}", headers=headers).json
    assert item["status"] == "completed" and moment(item["finished_at"]) <= moment(item["due_at"])
    assert [e["action"] for e in item["timeline"]] == ["request.submitted", "request.processing", "request.completed"]
    assert _share_states(api, person["id"]) == ("withdrawn", "granted")
    [event] = [
        e
        for e in api.get(f"/v1/subjects/{person['id']}/consents", history="true").json["history"]
        if e["channel"] == "partner" and e["status"] == "withdrawn"
    ]
    assert event["source"] == "rights_request" and made["reference"] in event["evidence"]["note"]
    # The 12-month wait, where callers read the person's state.
    state = api.get(f"/v1/subjects/{person['id']}/consents").json
    wait_until = moment(state["ask_again_after"])
    assert clocks.ask_again_after(moment(item["created_at"])) <= wait_until <= clocks.ask_again_after(moment(item["finished_at"]))
    # No link to confirm: a mail that it is received, and one that it is done.
    texts = [m.get_body(("plain",)).get_content() for m in mails_to(smtp, "ann@example.com")]
    assert len(texts) == 2 and not any("/privacy-requests/verify/" in t for t in texts)
    assert any("We no longer sell or share your personal information" in t and "We will not ask you" in t for t in texts)


def test_an_opt_out_outside_california_sets_no_wait(api, client, person, headers, worker):
    api.record(subject_id=person["id"], channel="partner", purpose="share_for_marketing")
    _request(client, headers, type="opt_out_sale_sharing", subject_id=person["id"], jurisdiction="GB")
    worker.wait()
    assert _share_states(api, person["id"])[0] == "withdrawn"
    assert api.get(f"/v1/subjects/{person['id']}/consents").json["ask_again_after"] is None


def test_limit_sensitive_from_the_public_form_needs_no_verification(app, api, client, person, smtp, worker):
    api.record(subject_id=person["id"], channel="partner", purpose="share_for_marketing")
    api.record(subject_id=person["id"], channel="profile", purpose="use_sensitive_data")
    page = make_request(client, type="limit_sensitive", email="ann@example.com", jurisdiction="US-CA")
    assert page.status_code == 200 and b"You need do nothing more" in page.data
    worker.wait()
    assert _share_states(api, person["id"]) == ("granted", "withdrawn")
    assert api.check(channel="profile", purpose="use_sensitive_data", subject_id=person["id"]).json["allowed"] is False
    with app.app_context():
        subject = db.session.get_one(Subject, uuid.UUID(person["id"]))
        # An opt-out needs no confirming, so it leaves the person's own jurisdiction as it was.
        assert subject.jurisdiction is None and subject.ask_again_after is None  # the wait follows sale/sharing only
    assert not any("/privacy-requests/verify/" in m.get_body(("plain",)).get_content() for m in mails_to(smtp, "ann@example.com"))


def test_an_opt_out_from_someone_unknown_is_kept_for_when_they_arrive(app, api, client, headers, worker):
    page = make_request(client, type="opt_out_sale_sharing", email="new@example.com", jurisdiction="US-CA")
    assert page.status_code == 200
    worker.wait()
    subject = api.post("/v1/subjects", {"email": "new@example.com"}).json
    # A grant collected before the opt-out, imported late, does not undo it.
    api.record(
        subject_id=subject["id"], channel="partner", purpose="share_for_marketing", occurred_at="2026-01-01T00:00:00Z", source="import"
    )
    assert _share_states(api, subject["id"])[0] == "withdrawn"


def test_the_form_refuses_an_unknown_place(client):
    page = make_request(client, type="access", email="ann@example.com", jurisdiction="Mars")
    assert page.status_code == 400 and b"Choose one of the places listed." in page.data


def test_staff_see_the_clock_and_extend_a_us_ca_request_by_45_days(app, client, headers):
    from tests.web.test_staff import csrf_of, sign_in

    made = _request(client, headers, type="access", email="fay@example.com", jurisdiction="US-CA", verified=True)
    _officer(app)
    sign_in(client, "officer@example.com", "a long enough password")
    page = client.get(f"/staff/requests/{made['id']}")
    assert b"California (CCPA/CPRA)" in page.data and b"By 45 days" in page.data and b"Not yet: due by" in page.data
    assert b"By how many months" not in page.data
    extended = client.post(
        f"/staff/requests/{made['id']}/extend", data={"csrf_token": csrf_of(page), "reason": "busy"}, follow_redirects=True
    )
    assert b"Extended" in extended.data and b"extended by 45 days" in extended.data


def _officer(app):
    from prefs_service.access import service as access

    with app.app_context():
        access.create_staff(email="officer@example.com", password="a long enough password", actor="test")
        db.session.commit()
