"""Search by every key, a person's page, and what staff do there."""

from __future__ import annotations

import logging
import re

import pytest

from prefs_service.extensions import db
from prefs_service.rights.models import RightsRequest
from tests.helpers import Api
from tests.web.staff_support import alert_of, post_form, signed_in, status_of


@pytest.fixture
def officer(app):
    return signed_in(app, "officer@example.com")


@pytest.fixture
def person(client, admin):
    """A person with every kind of key, a grant with evidence, and a request."""
    api = Api(client, admin)
    made = api.post(
        "/v1/subjects",
        {"email": "Found.Me@Example.com", "phone": "07911 123456", "fax": "020 7946 0000", "external_ref": "CRM-42", "name": "Ada Found"},
    ).json
    api.record(subject_id=made["id"], evidence={"ip": "203.0.113.77", "user_agent": "Signup form", "note": "ticked the box"})
    return made


def search(staff, term, kind="any"):
    return post_form(staff, "/staff/search", {"term": term, "kind": kind}, page="/staff/search", follow=False)


@pytest.mark.parametrize(
    ("term", "kind"),
    [
        ("found.me@example.com", "any"),
        ("  FOUND.ME@example.COM ", "email"),
        ("+44 7911 123456", "any"),
        ("07911123456", "phone"),
        ("+442079460000", "fax"),
        ("020 7946 0000", "any"),
        ("CRM-42", "external_ref"),
        ("CRM-42", "any"),
    ],
)
def test_one_match_by_any_identifier_goes_to_the_person(officer, person, term, kind, caplog):
    caplog.set_level(logging.DEBUG)
    found = search(officer, term, kind)
    assert found.status_code == 303
    assert found.headers["Location"] == f"/staff/people/{person['id']}"
    assert term.strip() not in " ".join(r.getMessage() for r in caplog.records)  # the term is never logged


def test_a_request_reference_goes_to_the_request_and_an_order_reference_to_its_person(app, client, officer, person, admin):
    made = client.post("/v1/requests", json={"type": "access", "subject_id": person["id"], "verified": True}, headers=admin).json
    found = search(officer, made["reference"].lower())
    assert found.headers["Location"] == f"/staff/requests/{made['id']}"

    from tests.orders.stripe_events import apply_accepted, checkout_session, event, post

    post(client, event("checkout.session.completed", checkout_session("cs_search", email="found.me@example.com")))
    apply_accepted(app)
    page = officer.get(f"/staff/people/{person['id']}").get_data(as_text=True)
    reference = re.search(r"<td>(ORD-[0-9A-Z-]+)</td>", page).group(1)
    found = search(officer, reference, "order")
    assert found.headers["Location"] == f"/staff/people/{person['id']}#orders"


def test_nothing_found_says_so_and_a_bad_term_says_what_is_wrong(officer, person):
    nothing = search(officer, "nobody@example.com")
    assert nothing.status_code == 200 and alert_of(nothing) == "Nothing matches that search."
    assert 'value="nobody@example.com"' in nothing.get_data(as_text=True)  # kept in the form, not the address
    not_phone = search(officer, "hello", "phone")
    assert not_phone.status_code == 422 and alert_of(not_phone).startswith("That is not a valid phone number.")
    empty = search(officer, "   ")
    assert empty.status_code == 422 and "Type what to search for" in alert_of(empty)
    assert search(officer, "x", "password").status_code == 422


def test_a_number_that_is_one_persons_phone_and_anothers_fax_lists_both(client, officer, admin, person):
    other = client.post("/v1/subjects", json={"fax": "07911 123456"}, headers=admin).json
    both = search(officer, "07911123456")
    html = both.get_data(as_text=True)
    assert both.status_code == 200 and "2 matches" in html
    assert f"/staff/people/{person['id']}" in html and f"/staff/people/{other['id']}" in html


def test_the_search_needs_a_sign_in_and_a_csrf_token(client, officer, person):
    signed_out = post_form(client, "/staff/search", {"term": "found.me@example.com"}, page="/staff/login", follow=False)
    assert signed_out.status_code == 302 and "/staff/login" in signed_out.headers["Location"]
    assert officer.post("/staff/search", data={"term": "found.me@example.com"}).status_code == 400


def test_a_persons_page_shows_keys_consent_with_evidence_and_all_they_are_part_of(client, officer, person, admin):
    client.post("/v1/partners", json={"code": "acme", "name": "Acme Fulfilment", "contact_email": "ops@acme.example"}, headers=admin)
    disclosed = client.post(
        "/v1/disclosures",
        json={"subject_id": person["id"], "partner": "acme", "data_categories": ["name", "email"], "purpose": "share_for_fulfilment"},
        headers=admin,
    )
    assert disclosed.status_code == 201, disclosed.json
    client.post("/v1/suppressions", json={"phone": "07911 123456", "reason": "objection"}, headers=admin)
    client.post("/v1/requests", json={"type": "access", "subject_id": person["id"], "verified": True}, headers=admin)
    page = officer.get(f"/staff/people/{person['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for shown in ("Ada Found", "found.me@example.com", "+447911123456", "+442079460000", "CRM-42"):
        assert shown in html, shown
    newsletter = next(r for r in html.split("<tr>") if "<td>Newsletter</td>" in r)
    assert "Yes" in newsletter and "203.0.113.0/24" in newsletter and "ticked the box" in newsletter
    assert "API key “test”" in newsletter and "api_key:" not in html
    phone = next(r for r in html.split("<tr>") if "<td>Phone</td>" in r)
    assert "No" in phone and "suppressed" in phone
    assert "Phone: objection" in html  # the suppression
    assert "email, name to Acme Fulfilment, to fulfil an order" in html
    assert "Access" in html and "In progress" in html  # the request, with a human status
    mail = html.split('id="notices"')[1]
    assert "<td>Request received</td>" in mail  # the mail sent to them


def test_the_ledger_is_paged_newest_first(client, officer, admin):
    api = Api(client, admin)
    subject = api.post("/v1/subjects", {"email": "busy@example.com"}).json
    for day in range(1, 31):
        status = "granted" if day % 2 else "withdrawn"
        api.record(subject_id=subject["id"], status=status, occurred_at=f"2026-01-{day:02d}T12:00:00Z")
    first = officer.get(f"/staff/people/{subject['id']}").get_data(as_text=True)
    ledger = first.split('id="ledger"')[1].split("</table>")[0]
    assert ledger.count("<tr>") == 1 + 25 and '">30 Jan 2026' in ledger and '">6 Jan 2026' in ledger and '">5 Jan 2026' not in ledger
    older = re.search(r'href="([^"]+before=\d+)#ledger"', first).group(1).replace("&amp;", "&")
    second = officer.get(older).get_data(as_text=True).split('id="ledger"')[1].split("</table>")[0]
    assert second.count("<tr>") == 1 + 5 and '">5 Jan 2026' in second and '">1 Jan 2026' in second and '">6 Jan 2026' not in second


def test_an_unknown_person_is_a_404(officer):
    assert officer.get("/staff/people/6f1d8a34-0000-4000-8000-000000000000").status_code == 404
    assert officer.get("/staff/people/not-an-id").status_code == 404


def test_staff_suppress_a_channel_with_a_reason_and_it_is_audited(app, client, officer, person, admin):
    done = post_form(officer, f"/staff/people/{person['id']}/suppress", {"kind": "email", "reason": "complaint", "note": "rang us"})
    assert "Suppressed" in status_of(done)
    assert Api(client, admin).check(email="found.me@example.com").json["reason"] == "suppressed"
    assert "Email: complaint (“rang us”)" in done.get_data(as_text=True) and "by officer@example.com" in done.get_data(as_text=True)
    boss = signed_in(app, "boss@example.com", "admin")
    log = boss.get("/staff/audit", query_string={"action": "suppression.added"}).get_data(as_text=True)
    assert "officer@example.com" in log
    bad = post_form(officer, f"/staff/people/{person['id']}/suppress", {"kind": "email", "reason": "erasure"})
    assert "reason: must be one of" in alert_of(bad)
    none = post_form(officer, f"/staff/people/{person['id']}/suppress", {"kind": "postal_address", "reason": "manual"})
    assert "We hold no postal address for this person" in alert_of(none)


def test_staff_start_a_correction_for_a_person_and_it_waits_for_review(app, client, officer, person, admin):
    started = post_form(
        officer,
        f"/staff/people/{person['id']}/requests",
        {"type": "correction", "new_name": "Ada Lovelace", "explanation": "married", "email": ""},
        follow=True,
    )
    html = started.get_data(as_text=True)
    assert "Correction request PR-" in html and "Waiting for staff review" in html
    assert "Received by officer@example.com" in html and "Identity confirmed by officer@example.com" in html
    with app.app_context():
        made = db.session.query(RightsRequest).one()
        assert made.email == "found.me@example.com" and made.created_by.startswith("staff:")
    nothing = post_form(officer, f"/staff/people/{person['id']}/requests", {"type": "correction"})
    assert "Say what to correct" in alert_of(nothing)


def test_an_erased_person_shows_as_erased_with_no_identifiers(app, client, officer, person, admin, worker):
    made = client.post("/v1/requests", json={"type": "erasure", "subject_id": person["id"], "verified": True}, headers=admin).json
    worker.wait()
    assert client.get(f"/v1/requests/{made['id']}", headers=admin).json["status"] == "completed"
    page = officer.get(f"/staff/people/{person['id']}").get_data(as_text=True)
    assert "A person erased at their request" in page
    for gone in ("found.me@example.com", "+447911123456", "CRM-42", "Ada Found", "Suppress an identifier"):
        assert gone not in page, gone
    by_email = search(officer, "found.me@example.com")
    assert by_email.status_code == 200 and "a person erased at their request" in by_email.get_data(as_text=True)
    by_ref = search(officer, made["reference"])
    assert by_ref.headers["Location"] == f"/staff/requests/{made['id']}"


def test_the_ledger_names_the_person_for_what_they_did_themselves(client, officer, person, admin):
    from urllib.parse import urlsplit

    link = Api(client, admin).links(subject_id=person["id"])
    assert client.post(urlsplit(link["url"]).path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    ledger = officer.get(f"/staff/people/{person['id']}").get_data(as_text=True).split('id="ledger"')[1].split("</table>")[0]
    withdrawal = next(r for r in ledger.split("<tr>") if "<td>Withdrawn</td>" in r)
    assert "<td>the person themselves</td>" in withdrawal and "one click" in withdrawal
