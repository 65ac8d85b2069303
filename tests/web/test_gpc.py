"""Global Privacy Control through real page requests: /.well-known/gpc.json, and
`Sec-GPC: 1` on every page that knows the person (unsubscribe, preferences,
privacy-request pages), recorded once in the ledger with the header as evidence."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

import pytest

from prefs_service.rights import clocks
from tests.helpers import Api
from tests.orders.stripe_events import checkout_session, event, post
from tests.rights.conftest import link_in, mails_to

GPC = {"Sec-GPC": "1"}
SHARING = ("partner", "share_for_marketing")


@pytest.fixture
def headers(api_key):
    return api_key("admin")


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def sharing_person(api, email: str) -> dict:
    """A person who agreed to sharing for marketing, with their signed links' paths."""
    subject = api.post("/v1/subjects", {"email": email}).json
    api.record(subject_id=subject["id"], channel="partner", purpose="share_for_marketing")
    link = api.links(subject_id=subject["id"])
    return {
        "id": subject["id"],
        "preferences": urlsplit(link["preferences_url"]).path,
        "unsubscribe": urlsplit(link["url"]).path,
    }


def wait_until(api, subject_id: str) -> datetime | None:
    """When callers may next ask the person to opt back in to sale/sharing (None: no wait)."""
    found = api.get(f"/v1/subjects/{subject_id}/consents").json["ask_again_after"]
    return datetime.fromisoformat(found) if found else None


def gpc_events(api, subject_id: str) -> list[dict]:
    """The person's GPC entries in the ledger, oldest first (their history: no feed horizon to wait for)."""
    history = api.get(f"/v1/subjects/{subject_id}/consents", history=1).json["history"]
    return [e for e in reversed(history) if e["source"] == "gpc"]


def test_the_site_says_it_honours_gpc(client):
    answer = client.get("/.well-known/gpc.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["gpc"] is True and set(body) == {"gpc", "lastUpdate"}
    assert date.fromisoformat(body["lastUpdate"]) <= date.today()


def test_a_california_person_is_opted_out_of_sale_and_sharing_once_with_the_header_as_evidence(make_app, api_key):
    app = make_app(default_jurisdiction="US-CA")
    client = app.test_client()

    api = Api(client, api_key("admin"))
    person = sharing_person(api, "cal@example.com")
    assert api.states(person["id"])[SHARING] == "granted"

    before = datetime.now(UTC)
    page = client.get(person["unsubscribe"], headers={**GPC, "User-Agent": "Firefox/140"})
    after = datetime.now(UTC)
    assert page.status_code == 200
    assert api.states(person["id"])[SHARING] == "withdrawn"
    # An opt-out of sale/sharing like any other: 12 months before anyone may ask them to opt back in.
    assert clocks.ask_again_after(before) <= wait_until(api, person["id"]) <= clocks.ask_again_after(after)
    [event] = gpc_events(api, person["id"])
    assert (event["channel"], event["purpose"], event["status"]) == (*SHARING, "withdrawn")
    assert event["evidence"]["note"].startswith("Sec-GPC: 1 ")
    assert "opt-out of sale and sharing" in event["evidence"]["note"] and "US-CA" in event["evidence"]["note"]
    assert event["evidence"]["user_agent"] == "Firefox/140"

    # Every later page the browser opens with the signal records nothing more.
    for path in (person["unsubscribe"], person["preferences"], person["preferences"]):
        assert client.get(path, headers=GPC).status_code == 200
    assert len(gpc_events(api, person["id"])) == 1


def test_without_the_header_or_with_another_value_nothing_is_recorded(client, api):
    person = sharing_person(api, "nosignal@example.com")
    for headers in ({}, {"Sec-GPC": "0"}, {"Sec-GPC": "yes"}):
        assert client.get(person["unsubscribe"], headers=headers).status_code == 200
        assert client.get(person["preferences"], headers=headers).status_code == 200
    assert gpc_events(api, person["id"]) == []
    assert api.states(person["id"])[SHARING] == "granted"


def test_elsewhere_the_signal_is_an_objection_to_sharing_for_marketing(client, api):
    person = sharing_person(api, "gb@example.com")  # the suite's default jurisdiction is GB
    client.get(person["preferences"], headers=GPC)
    [event] = gpc_events(api, person["id"])
    assert (
        event["status"] == "withdrawn" and "GDPR Art. 21(5)" in event["evidence"]["note"] and "jurisdiction GB" in event["evidence"]["note"]
    )
    assert wait_until(api, person["id"]) is None  # CCPA's 12-month wait is California's alone


def test_every_door_to_a_california_persons_opt_out_starts_the_12_month_wait(make_app, api_key):
    app = make_app(default_jurisdiction="US-CA")
    client = app.test_client()
    api = Api(client, api_key("admin"))

    # The preference page, without any signal.
    by_page = sharing_person(api, "page@example.com")
    page = client.get(by_page["preferences"])
    before = datetime.now(UTC)
    assert client.post(by_page["preferences"], data={"csrf_token": csrf_of(page), "granted": []}).status_code == 303
    assert api.states(by_page["id"])[SHARING] == "withdrawn"
    assert wait_until(api, by_page["id"]) >= clocks.ask_again_after(before)

    # Another system recording the withdrawal through the API.
    by_api = sharing_person(api, "crm@example.com")
    api.record(subject_id=by_api["id"], channel="partner", purpose="share_for_marketing", status="withdrawn", source="crm")
    first = wait_until(api, by_api["id"])
    assert first >= clocks.ask_again_after(before)

    # Withdrawing something else starts nothing; a later opt-out moves the date on, never back.
    unrelated = sharing_person(api, "news@example.com")
    api.record(subject_id=unrelated["id"], channel="email", purpose="newsletter", status="withdrawn")
    assert wait_until(api, unrelated["id"]) is None
    api.record(subject_id=by_api["id"], channel="partner", purpose="share_for_marketing", source="crm")
    api.record(subject_id=by_api["id"], channel="partner", purpose="share_for_marketing", status="withdrawn", source="crm")
    assert wait_until(api, by_api["id"]) >= first


def test_the_signal_is_recorded_once_even_when_sharing_was_withdrawn_already(client, api):
    person = sharing_person(api, "already@example.com")
    api.record(subject_id=person["id"], channel="partner", purpose="share_for_marketing", status="withdrawn")
    client.get(person["preferences"], headers=GPC)
    client.get(person["preferences"], headers=GPC)
    assert [e["status"] for e in gpc_events(api, person["id"])] == ["withdrawn"]


def test_a_grant_from_another_system_after_the_signal_is_withdrawn_again_but_the_persons_own_choice_stands(client, api):
    person = sharing_person(api, "again@example.com")
    client.get(person["preferences"], headers=GPC)
    api.record(subject_id=person["id"], channel="partner", purpose="share_for_marketing", source="crm")
    client.get(person["preferences"], headers=GPC)
    assert len(gpc_events(api, person["id"])) == 2
    assert api.states(person["id"])[SHARING] == "withdrawn"

    # The person ticks sharing on the preference page, signal and all: their choice stands.
    page = client.get(person["preferences"], headers=GPC)
    saved = client.post(
        person["preferences"],
        data={"csrf_token": csrf_of(page), "granted": ["partner.share_for_marketing"]},
        headers=GPC,
    )
    assert saved.status_code == 303
    assert client.get(person["preferences"], headers=GPC).status_code == 200
    assert api.states(person["id"])[SHARING] == "granted"
    assert len(gpc_events(api, person["id"])) == 2


def test_an_unsubscribe_with_the_signal_records_it_too(client, api):
    person = sharing_person(api, "unsub@example.com")
    done = client.post(person["unsubscribe"], data={"confirm": "unsubscribe"}, headers=GPC)
    assert done.status_code == 200
    assert api.states(person["id"])[("email", "newsletter")] == "withdrawn"
    assert len(gpc_events(api, person["id"])) == 1


def test_the_privacy_request_pages_honour_the_signal_for_the_person_they_name(client, api, smtp, worker):
    person = sharing_person(api, "asker@example.com")
    page = client.get("/privacy-requests/new")
    client.post("/privacy-requests/new", data={"csrf_token": csrf_of(page), "type": "access", "email": "asker@example.com"})
    worker.wait()
    verify = link_in(mails_to(smtp, "asker@example.com")[0], "/privacy-requests/verify/")
    assert client.get(verify).status_code == 200
    assert gpc_events(api, person["id"]) == []
    assert client.get(verify, headers=GPC).status_code == 200
    assert api.states(person["id"])[SHARING] == "withdrawn"
    assert len(gpc_events(api, person["id"])) == 1
    confirmed = client.post(verify, headers=GPC)
    assert confirmed.status_code == 200
    worker.wait()
    ready = [m for m in mails_to(smtp, "asker@example.com") if "ready to download" in m["Subject"]]
    download = client.get(link_in(ready[0], "/privacy-requests/download/"), headers=GPC)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert len(gpc_events(api, person["id"])) == 1


def test_the_purchase_pages_honour_the_signal_for_the_customer(client, api, smtp, worker):
    post(client, event("checkout.session.completed", checkout_session("cs_gpc", email="buyer@example.com")))
    worker.wait()
    [receipt] = mails_to(smtp, "buyer@example.com")
    commission = link_in(receipt, "/purchase/commission/")
    assert client.get(commission).status_code == 200
    assert client.get(commission, headers=GPC).status_code == 200
    assert client.get(commission, headers=GPC).status_code == 200
    buyer = api.post("/v1/subjects", {"email": "buyer@example.com"})
    assert buyer.status_code == 200  # the customer the order made
    events = gpc_events(api, buyer.json["id"])
    assert [(e["channel"], e["purpose"], e["status"]) for e in events] == [(*SHARING, "withdrawn")]
