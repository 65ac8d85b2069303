"""Rights requests end to end: intake, verification, export, erasure, correction,
staff decisions, all through HTTP with real jobs and a real SMTP server."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.rights import deadlines as rights_deadlines
from prefs_service.rights import work as rights_work
from prefs_service.rights.models import RightsRequest
from tests.helpers import eventually
from tests.rights.conftest import link_in, mails_to, unzip


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def make_request(client, **fields):
    page = client.get("/privacy-requests/new")
    return client.post("/privacy-requests/new", data={"csrf_token": csrf_of(page), **fields})


def test_the_intake_page_answers_alike_for_known_and_unknown_addresses(client, person, smtp, worker):
    known = make_request(client, type="access", email="ann@example.com")
    unknown = make_request(client, type="access", email="nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    mask = lambda page: re.sub(rb"PR-[0-9A-Z]{4}-[0-9A-Z]{4}", b"PR-XXXX-XXXX", page.data)  # noqa: E731
    assert mask(known) == mask(unknown)
    worker.wait()
    for address in ("ann@example.com", "nobody@example.com"):
        [mail] = mails_to(smtp, address)
        assert re.search(r"PR-[0-9A-Z]{4}-[0-9A-Z]{4}", mail["Subject"])
        assert "/privacy-requests/verify/" in mail.get_body(("plain",)).get_content()


def test_access_request_verified_exported_downloaded_and_expired(app, client, person, headers, smtp, worker):
    client.post(
        "/v1/partners", json={"code": "acme", "name": "Acme Resellers", "contact_email": "privacy@acme.example.com"}, headers=headers
    )
    client.post(
        "/v1/disclosures",
        json={"subject_id": person["id"], "partner": "acme", "data_categories": ["name", "email"], "purpose": "share_for_fulfilment"},
        headers=headers,
    )
    make_request(client, type="access", email="ANN@example.com")
    worker.wait()
    verify = link_in(mails_to(smtp, "ann@example.com")[0], "/privacy-requests/verify/")
    page = client.get(verify)  # a link scanner: nothing happens
    assert page.status_code == 200 and b"Confirm my request" in page.data
    [item] = client.get("/v1/requests", headers=headers).json
    assert item["status"] == "awaiting_verification" and item["due_at"] is None

    confirmed = client.post(verify)
    assert confirmed.status_code == 200 and b"Request confirmed" in confirmed.data
    worker.wait()
    item = client.get(f"/v1/requests/{item['id']}", headers=headers).json
    assert item["status"] == "completed"
    assert [e["action"] for e in item["timeline"]] == [
        "request.submitted", "request.verified", "request.processing", "request.completed",
    ]  # fmt: skip

    ready = [m for m in mails_to(smtp, "ann@example.com") if "ready to download" in m["Subject"]]
    assert len(ready) == 1
    download = client.get(link_in(ready[0], "/privacy-requests/download/"))
    assert download.status_code == 200 and download.mimetype == "application/zip"
    files = unzip(download.data)
    assert {"data.json", "README.txt", "consent_history.csv", "disclosures.csv", "requests.csv", "identifiers.csv"} <= set(files)
    data = json.loads(files["data.json"])
    assert data["subject"][0]["name"] == "Ann Example"
    assert {i["value"] for i in data["identifiers"]} == {"ann@example.com", "+442079460777"}
    [event] = data["consent_history"]
    assert event["evidence_ip"] == "203.0.113.0/24" and event["evidence_user_agent"] == "SignupForm/2"
    assert data["disclosures"][0]["partner_code"] == "acme"
    assert data["requests"][0]["reference"] == item["reference"]
    rows = list(csv.DictReader(io.StringIO(files["consent_history.csv"].decode())))
    assert rows[0]["purpose"] == "newsletter" and rows[0]["evidence_note"] == "footer"
    assert "evidence_ip:" in files["README.txt"].decode()

    with app.app_context():  # seven days later the purge job deletes the file
        rights_work.purge_expired_exports(now=utcnow() + timedelta(days=8))
        db.session.commit()
    gone = client.get(link_in(ready[0], "/privacy-requests/download/"))
    assert gone.status_code == 404 and b"expired" in gone.data


def test_verification_links_are_posts_and_unknown_or_expired_ones_are_404(app, client, person, smtp, worker):
    assert client.get("/privacy-requests/verify/garbage").status_code == 404
    assert client.post("/privacy-requests/verify/garbage").status_code == 404
    make_request(client, type="erasure", email="ann@example.com")
    worker.wait()
    with app.app_context():  # never verified: after 14 days the request expires
        assert rights_deadlines.expire_unverified(now=utcnow() + timedelta(days=15)) == 1
        db.session.commit()
    verify = link_in(mails_to(smtp, "ann@example.com")[0], "/privacy-requests/verify/")
    late = client.post(verify)
    assert late.status_code == 409 and b"expired" in late.data


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_a_correction_needs_changes_and_bad_values_are_named_in_words(client, person):
    page = make_request(client, type="correction", email="ann@example.com")
    assert page.status_code == 400 and "fill in at least one correct value" in page.get_data(as_text=True)
    assert "changes" not in visible_text(page.get_data(as_text=True))
    bad = make_request(client, type="correction", email="ann@example.com", phone="12", postal_address="x")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "<title>Error: Your data: make a request" in html
    assert '<a href="#phone">Correct telephone number</a>: Not a valid telephone number' in html and 'value="12"' in html
    assert '<a href="#postal_address">Correct postal address</a>: Not a postal address' in html
    assert "postal_address" not in visible_text(html) and "changes" not in visible_text(html)
    nothing = make_request(client, email="not an email")
    assert '<a href="#type-access">What would you like?</a>: Choose what you would like us to do.' in nothing.get_data(as_text=True)
    assert "That is not an email address" in nothing.get_data(as_text=True) and 'value="not an email"' in nothing.get_data(as_text=True)


def test_a_verified_api_erasure_removes_everything_but_keeps_suppression(app, client, person, headers, smtp, worker):
    client.post("/v1/partners", json={"code": "acme", "name": "Acme", "contact_email": "privacy@acme.example.com"}, headers=headers)
    client.post(
        "/v1/consents",
        json={"subject_id": person["id"], "channel": "partner", "purpose": "share_for_marketing", "status": "granted"},
        headers=headers,
    )
    client.post(
        "/v1/disclosures",
        json={"subject_id": person["id"], "partner": "acme", "data_categories": ["email"], "purpose": "share_for_marketing"},
        headers=headers,
    )
    response = client.post("/v1/requests", json={"type": "erasure", "subject_id": person["id"], "verified": True}, headers=headers)
    assert response.status_code == 201
    worker.wait()
    item = client.get(f"/v1/requests/{response.json['id']}", headers=headers).json
    assert item["status"] == "completed" and item["email"] is None

    subject = client.get(f"/v1/subjects/{person['id']}", headers=headers).json
    assert subject["name"] is None and subject["email"] is None and subject["phone"] is None
    history = client.get(f"/v1/subjects/{person['id']}/consents?history=1", headers=headers).json["history"]
    assert all(e["evidence"] == {"ip": None, "user_agent": None, "note": None} for e in history)
    for query in ({"email": "ann@example.com", "channel": "email", "purpose": "transactional"},
                  {"phone": "+442079460777", "channel": "phone", "purpose": "marketing"}):  # fmt: skip
        assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "erased"
    minting = client.post("/v1/unsubscribe-links", json={"subject_id": person["id"], "purpose": "newsletter"}, headers=headers)
    assert minting.status_code == 404  # no more links for someone we erased

    # The confirmation and the partner's notice; the mail acknowledging the
    # request may have been stopped by the erasure itself, if it had not left yet.
    mails = smtp.wait_for(2)
    confirmation = [m for m in mails if m["To"] == "ann@example.com" and "erased" in m["Subject"]]
    partner = [m for m in mails if m["To"] == "privacy@acme.example.com"]
    assert len(confirmation) == 1 and len(partner) == 1
    assert person["id"] in partner[0].get_body(("plain",)).get_content()
    assert "ann@example.com" not in partner[0].as_string()
    with app.app_context():  # the confirmation forgot the address once sent
        from prefs_service.notices.models import Notice

        assert db.session.scalars(sa.select(Notice.recipient).where(Notice.kind == "erasure_done")).all() == [None]


def test_erased_people_are_never_re_added_by_an_import_only_by_their_own_grant(app, client, person, headers, worker, smtp):
    client.post("/v1/requests", json={"type": "erasure", "subject_id": person["id"], "verified": True}, headers=headers)
    worker.wait()
    batch = client.post(
        "/v1/consents/batch",
        json={"events": [{"email": "ann@example.com", "channel": "email", "purpose": "offers", "status": "granted", "source": "import"},
                         {"email": "new@example.com", "channel": "email", "purpose": "offers", "status": "granted", "source": "import"}]},
        headers=headers,
    ).json  # fmt: skip
    assert batch == {"recorded": 1, "skipped_erased": [0]}
    check = {"channel": "email", "purpose": "offers", "email": "ann@example.com"}
    assert client.get("/v1/consent/check", query_string=check, headers=headers).json["reason"] == "erased"

    # another system's grant (their signup) neither records nor re-creates the person
    signup = client.post(
        "/v1/consents",
        json={"email": "ann@example.com", "channel": "email", "purpose": "offers", "status": "granted", "source": "signup"},
        headers=headers,
    )
    assert signup.status_code == 409 and signup.json["type"].endswith("/problems/erased")
    assert client.get("/v1/consent/check", query_string=check, headers=headers).json["reason"] == "erased"

    # their own choice, through a link mailed to their old address, does
    smtp.clear()
    page = client.get("/preferences")
    assert client.post("/preferences", data={"csrf_token": csrf_of(page), "email": "Ann@Example.com"}).status_code == 200
    worker.wait()
    [mail] = mails_to(smtp, "ann@example.com")
    come_back = link_in(mail, "/preferences/return/")
    offer = client.get(come_back)
    assert offer.status_code == 200 and b"Hear from us again" in offer.data
    wrong = client.post(come_back, data={"csrf_token": csrf_of(offer), "email": "someone.else@example.com", "granted": ["email.offers"]})
    assert wrong.status_code == 400 and b"not the address this link was sent to" in wrong.data
    assert client.get("/v1/consent/check", query_string=check, headers=headers).json["reason"] == "erased"
    back = client.post(come_back, data={"csrf_token": csrf_of(offer), "email": "ann@example.com", "granted": ["email.offers"]})
    assert back.status_code == 303 and "/preferences/" in back.headers["Location"]
    assert b"Your choices are saved (1 change)." in client.get(back.headers["Location"]).data
    assert client.get("/v1/consent/check", query_string=check, headers=headers).json["reason"] == "granted"
    returned = client.post("/v1/unsubscribe-links", json={"email": "ann@example.com", "purpose": "offers"}, headers=headers).json
    assert returned["subject_id"] != person["id"]  # a new person; the erased one stays erased
    history = client.get(f"/v1/subjects/{returned['subject_id']}/consents?history=1", headers=headers).json["history"]
    assert [(e["source"], e["status"], e["recorded_at"] is not None) for e in history] == [("preference_center", "granted", True)]
    assert history[0]["evidence"]["user_agent"] is not None
    old = {"channel": "email", "purpose": "offers", "subject_id": person["id"]}
    assert client.get("/v1/consent/check", query_string=old, headers=headers).json["reason"] == "erased"
    # the link works once; the mail that carried it forgot the address
    assert client.get(come_back).status_code == 404
    with app.app_context():
        from prefs_service.notices.models import Notice

        assert db.session.scalars(sa.select(Notice.recipient).where(Notice.kind == "return_link")).all() == [None]


def test_a_correction_is_reviewed_then_applied_and_consent_follows(client, person, headers, smtp, worker):
    client.post("/v1/partners", json={"code": "acme", "name": "Acme", "contact_email": "privacy@acme.example.com"}, headers=headers)
    client.post(
        "/v1/disclosures",
        json={"subject_id": person["id"], "partner": "acme", "data_categories": ["email"], "purpose": "share_for_fulfilment"},
        headers=headers,
    )
    made = make_request(
        client, type="correction", email="ann@example.com", new_email="ann.new@example.com", name="Ann New", explanation="I moved"
    )
    assert made.status_code == 200
    worker.wait()
    client.post(link_in(mails_to(smtp, "ann@example.com")[0], "/privacy-requests/verify/"))
    [item] = client.get("/v1/requests?status=awaiting_review", headers=headers).json
    assert item["changes"] == {"email": "ann.new@example.com", "name": "Ann New"} and item["explanation"] == "I moved"
    approved = client.post(f"/v1/requests/{item['id']}/approve", headers=headers)
    assert approved.status_code == 200
    worker.wait()
    assert client.get(f"/v1/requests/{item['id']}", headers=headers).json["status"] == "completed"
    subject = client.get(f"/v1/subjects/{person['id']}", headers=headers).json
    assert subject["email"] == "ann.new@example.com" and subject["name"] == "Ann New"
    check = {"channel": "email", "purpose": "newsletter"}
    assert (
        client.get("/v1/consent/check", query_string={**check, "email": "ann.new@example.com"}, headers=headers).json["reason"] == "granted"
    )
    done = eventually(
        lambda: [m for m in mails_to(smtp, "ann@example.com") if "corrected" in m["Subject"]], timeout=10, what="the requester's mail"
    )
    text = " ".join(done[0].get_body(("plain",)).get_content().split())
    assert "We have corrected your email address and name as you asked" in text
    assert "We have told the partner who received your details." in text
    eventually(
        lambda: any("Correction" in m["Subject"] for m in mails_to(smtp, "privacy@acme.example.com")), timeout=10, what="the partner's mail"
    )


def test_a_correction_mail_tells_no_tale_of_partners_when_there_were_none(client, person, headers, smtp, worker):
    made = client.post("/v1/requests", json={"type": "correction", "email": "ann@example.com", "changes": {"postal_address": "2 New Road, Leeds LS1 1AA"},
                                             "verified": True}, headers=headers).json  # fmt: skip
    assert client.post(f"/v1/requests/{made['id']}/approve", headers=headers).status_code == 200
    worker.wait()
    [done] = [m for m in smtp.wait_for(1) if "corrected" in m["Subject"]]
    text = " ".join(done.get_body(("plain",)).get_content().split())
    assert "We have corrected your postal address as you asked" in text
    assert "We had not shared your details with any partner, so nobody else needed telling." in text
    assert "have told" not in text and "have been told" not in text


def test_staff_reject_and_extend_and_the_requester_is_told(client, person, headers, smtp, worker):
    made = client.post(
        "/v1/requests",
        json={"type": "correction", "email": "ann@example.com", "changes": {"name": "Anne"}, "verified": True},
        headers=headers,
    ).json
    due = made["due_at"]
    assert client.post(f"/v1/requests/{made['id']}/extend", json={"months": 3, "reason": "x"}, headers=headers).status_code == 422
    extended = client.post(f"/v1/requests/{made['id']}/extend", json={"months": 2, "reason": "We need your old invoices"}, headers=headers)
    assert extended.status_code == 200 and extended.json["due_at"] > due and extended.json["extension_months"] == 2
    again = client.post(f"/v1/requests/{made['id']}/extend", json={"months": 1, "reason": "more"}, headers=headers)
    assert again.status_code == 409
    assert client.post(f"/v1/requests/{made['id']}/reject", json={"reason": ""}, headers=headers).status_code == 422
    rejected = client.post(f"/v1/requests/{made['id']}/reject", json={"reason": "We cannot confirm the new name."}, headers=headers)
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected"
    assert client.post(f"/v1/requests/{made['id']}/approve", headers=headers).status_code == 409
    worker.wait()
    subjects = [m["Subject"] for m in smtp.wait_for(3) if m["To"] == "ann@example.com"]
    assert any("needs more time" in s for s in subjects) and any("declined" in s for s in subjects)
    body = next(m for m in smtp.messages if "declined" in m["Subject"]).get_body(("plain",)).get_content()
    assert "We cannot confirm the new name." in body


def test_request_api_errors(client, headers):
    assert client.post("/v1/requests", json={"type": "hug", "email": "a@example.com"}, headers=headers).status_code == 422
    assert client.post("/v1/requests", json={"type": "correction", "email": "a@example.com"}, headers=headers).status_code == 422
    assert (
        client.post(
            "/v1/requests", json={"type": "access", "email": "a@example.com", "changes": {"name": "x"}}, headers=headers
        ).status_code
        == 422
    )
    assert client.post("/v1/requests", json={"type": "access"}, headers=headers).status_code == 422
    assert (
        client.post(
            "/v1/requests", json={"type": "access", "subject_id": "6f1d8a34-0000-4000-8000-000000000000"}, headers=headers
        ).status_code
        == 404
    )
    assert client.get("/v1/requests/999999", headers=headers).status_code == 404
    assert client.get("/v1/requests?status=sleeping", headers=headers).status_code == 422


def test_staff_are_reminded_before_the_due_date_and_alerted_after(app, client, person, headers, smtp, worker):
    with app.app_context():
        from prefs_service.access import service as access

        access.create_staff(email="officer@example.com", password="a long enough password", actor="test")
        db.session.commit()
    made = client.post(
        "/v1/requests",
        json={"type": "correction", "email": "ann@example.com", "changes": {"name": "Anne"}, "verified": True},
        headers=headers,
    ).json
    with app.app_context():
        due = db.session.get(RightsRequest, made["id"]).due_at
        assert rights_deadlines.alert_deadlines(now=due - timedelta(days=8)) == 0
        assert rights_deadlines.alert_deadlines(now=due - timedelta(days=6)) == 1
        assert rights_deadlines.alert_deadlines(now=due - timedelta(days=5)) == 0  # once
        assert rights_deadlines.alert_deadlines(now=due + timedelta(hours=1)) == 1
        assert rights_deadlines.alert_deadlines(now=due + timedelta(days=2)) == 0
        db.session.commit()
    worker.wait()
    subjects = sorted(m["Subject"] for m in mails_to(smtp, "officer@example.com"))  # two workers: any order
    assert len(subjects) == 2
    assert subjects[0].startswith("OVERDUE:") and subjects[1].startswith("Reminder:")


def test_a_request_whose_job_keeps_failing_shows_failed_and_can_be_retried(make_app, app, client, person, headers, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the export folder should be")
    broken = make_app(export_dir=blocked)
    made = client.post("/v1/requests", json={"type": "access", "subject_id": person["id"], "verified": True}, headers=headers).json
    from prefs_service.jobs.dispatch import jobs
    from prefs_service.outbox import Job

    with broken.app_context():
        [job] = db.session.scalars(sa.select(Job).where(Job.kind == "requests.export")).all()
        job.max_attempts = 1
        db.session.commit()
        assert jobs().execute(job.id) == "failed"
    assert client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "failed"
    retried = client.post(f"/v1/requests/{made['id']}/retry", headers=headers)
    assert retried.status_code == 200 and retried.json["status"] == "processing"
    with app.app_context():
        job = db.session.scalars(sa.select(Job).where(Job.kind == "requests.export").order_by(Job.id.desc())).first()
        assert jobs().execute(job.id) == "done"
    assert client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "completed"


def test_erasure_deletes_earlier_exports_and_forgets_mail_to_the_requester(app, client, person, headers, smtp, worker):
    access = client.post("/v1/requests", json={"type": "access", "subject_id": person["id"], "verified": True}, headers=headers).json
    worker.wait()
    ready = next(m for m in smtp.wait_for(2) if "ready to download" in m["Subject"])
    download = link_in(ready, "/privacy-requests/download/")
    assert client.get(download).status_code == 200
    # the export's mail no longer holds its link once sent
    with app.app_context():
        from prefs_service.notices.models import Notice

        assert db.session.scalars(sa.select(Notice.context).where(Notice.kind == "export_ready")).all() == [{}]
    client.post("/v1/requests", json={"type": "erasure", "subject_id": person["id"], "verified": True}, headers=headers)
    worker.wait()
    assert client.get(download).status_code == 404
    assert client.get(f"/v1/requests/{access['id']}", headers=headers).json["export_expires_at"] is None
    with app.app_context():
        recipients = db.session.scalars(sa.select(Notice.recipient).where(Notice.kind != "erasure_done")).all()
        assert recipients and all(r is None for r in recipients)


def test_erasing_someone_we_never_held_forgets_the_mail_we_sent_them(app, client, headers, smtp, worker):
    make_request(client, type="erasure", email="stranger@example.com")
    worker.wait()
    client.post(link_in(mails_to(smtp, "stranger@example.com")[0], "/privacy-requests/verify/"))
    worker.wait()
    with app.app_context():
        from prefs_service.notices.models import Notice

        assert db.session.scalars(sa.select(Notice.recipient)).all() == [None, None]  # received, then erasure_done once sent
    check = {"channel": "email", "purpose": "transactional", "email": "stranger@example.com"}
    assert client.get("/v1/consent/check", query_string=check, headers=headers).json["reason"] == "erased"


def test_links_of_an_erased_person_lead_nowhere(client, person, headers, worker):
    link = client.post("/v1/unsubscribe-links", json={"subject_id": person["id"], "purpose": "newsletter"}, headers=headers).json
    client.post("/v1/requests", json={"type": "erasure", "subject_id": person["id"], "verified": True}, headers=headers)
    worker.wait()
    for url in (link["url"], link["preferences_url"]):
        path = "/" + url.split("//", 1)[1].split("/", 1)[1]
        assert client.get(path, headers={"Sec-GPC": "1"}).status_code == 404
    assert client.post("/" + link["url"].split("//", 1)[1].split("/", 1)[1], data={"List-Unsubscribe": "One-Click"}).status_code == 404
    history = client.get(f"/v1/subjects/{person['id']}/consents?history=1", headers=headers).json["history"]
    assert {e["source"] for e in history} == {"api"}  # nothing new recorded for them


def test_the_verify_page_of_a_rejected_request_says_it_is_closed(client, person, headers, smtp, worker):
    make_request(client, type="access", email="ann@example.com")
    worker.wait()
    [item] = client.get("/v1/requests", headers=headers).json
    client.post(f"/v1/requests/{item['id']}/reject", json={"reason": "Duplicate of an earlier request."}, headers=headers)
    page = client.get(link_in(mails_to(smtp, "ann@example.com")[0], "/privacy-requests/verify/"))
    assert b"This request is closed" in page.data and b"Confirm my request" not in page.data
