"""The preference center and the request for a fresh link, through HTTP."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "subjects:write", "admin")


@pytest.fixture
def person(api):
    subject = api.post("/v1/subjects", {"email": "pat@example.com", "phone": "+442079460555"}).json
    api.record(subject_id=subject["id"])
    link = api.links(subject_id=subject["id"])
    return {"id": subject["id"], "path": urlsplit(link["preferences_url"]).path}


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def test_the_page_lists_every_applicable_channel_with_state_and_policy(client, headers, person):
    client.post("/v1/policy-versions", json={"version": "2015-07", "last_updated": "2015-07-01"}, headers=headers)
    page = client.get(person["path"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for legend in ("Email", "Telephone", "Partners and resellers"):
        assert f"<legend>{legend}</legend>" in html
    assert "<legend>Fax</legend>" not in html and "<legend>Postal mail</legend>" not in html  # no fax or address held
    assert re.search(r'value="email.newsletter"\s+checked', html)
    assert not re.search(r'value="email.offers"\s+checked', html)
    assert 'for="p-email-offers"' in html and 'id="p-email-offers"' in html  # labelled controls
    assert "version 2015-07, last updated 1 July 2015" in html
    assert "p••@example.com" in html and "pat@example.com" not in html
    assert 'name="viewport"' in html


def test_saving_records_one_event_per_change(client, headers, person, api):
    page = client.get(person["path"])
    response = client.post(
        person["path"], data={"csrf_token": csrf_of(page), "granted": ["email.offers", "phone.marketing"], "action": "save"}
    )
    assert response.status_code == 303
    assert b"3 changes" in client.get(response.headers["Location"]).data
    current = api.states(person["id"])
    assert current[("email", "newsletter")] == "withdrawn"
    assert current[("email", "offers")] == "granted" and current[("phone", "marketing")] == "granted"
    new = [e for e in api.changes()["events"] if e["source"] == "preference_center"]
    assert sorted((e["channel"], e["purpose"], e["status"]) for e in new) == [
        ("email", "newsletter", "withdrawn"), ("email", "offers", "granted"), ("phone", "marketing", "granted"),
    ]  # fmt: skip
    again = client.post(person["path"], data={"csrf_token": csrf_of(page), "granted": ["email.offers", "phone.marketing"]})
    assert b"nothing needed changing" in client.get(again.headers["Location"]).data
    assert len([e for e in api.changes()["events"] if e["source"] == "preference_center"]) == 3


def test_stop_all_marketing_withdraws_everything(client, person, api):
    page = client.get(person["path"])
    client.post(person["path"], data={"csrf_token": csrf_of(page), "action": "stop_all"})
    current = api.states(person["id"])
    marketing = [k for k in current if k[1] not in ("transactional", "share_for_fulfilment", "profile_enrichment", "use_sensitive_data")]
    assert current[("profile", "profile_enrichment")] is None  # not marketing: untouched
    assert current[("profile", "use_sensitive_data")] is None
    assert all(current[k] == "withdrawn" for k in marketing)


def test_saving_without_the_csrf_token_is_refused_and_changes_nothing(client, person, api):
    client.get(person["path"])
    response = client.post(person["path"], data={"granted": ["email.offers"]})
    assert response.status_code == 400 and b"reload the page" in response.data
    assert api.states(person["id"])[("email", "offers")] is None


def test_a_gpc_signal_withdraws_sharing_for_marketing_and_says_so(client, headers, person, api):
    page = client.get(person["path"], headers={"Sec-GPC": "1"})
    assert b"Global Privacy Control" in page.data
    client.get(person["path"], headers={"Sec-GPC": "1"})
    gpc = [e for e in api.changes()["events"] if e["source"] == "gpc"]
    assert [(e["channel"], e["purpose"], e["status"]) for e in gpc] == [("partner", "share_for_marketing", "withdrawn")]
    assert b"Global Privacy Control" not in client.get(person["path"]).data


def test_an_invalid_preferences_link_is_a_404_page(client):
    response = client.get("/preferences/garbage")
    assert response.status_code == 404 and b"Ask for a new one" in response.data


def test_asking_for_a_link_answers_the_same_and_mails_only_known_addresses(client, headers, person, smtp, worker):
    form = client.get("/preferences")
    assert form.status_code == 200
    token = csrf_of(form)
    known = client.post("/preferences", data={"csrf_token": token, "email": "PAT@example.com"})
    unknown = client.post("/preferences", data={"csrf_token": token, "email": "stranger@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.data == unknown.data
    worker.wait()
    [message] = smtp.wait_for(1)
    assert message["To"] == "pat@example.com" and "List-Unsubscribe" not in message
    assert message["From"] == client.application.config["PREFS"].mail_from_transactional
    link = re.search(r"https?://\S+/preferences/\S+", message.get_body(("plain",)).get_content()).group(0)
    assert client.get(urlsplit(link).path).status_code == 200


def test_asking_twice_quickly_sends_one_mail(client, person, smtp, worker):
    token = csrf_of(client.get("/preferences"))
    for _ in range(3):
        client.post("/preferences", data={"csrf_token": token, "email": "pat@example.com"})
    worker.wait()
    assert len(smtp.wait_for(1)) == 1


def test_an_invalid_address_is_a_form_error_that_keeps_what_was_typed(client):
    token = csrf_of(client.get("/preferences"))
    response = client.post("/preferences", data={"csrf_token": token, "email": ""})
    assert response.status_code == 400 and b"Enter your email address." in response.data
    typed = client.post("/preferences", data={"csrf_token": token, "email": "not an email"})
    html = typed.get_data(as_text=True)
    assert typed.status_code == 400 and "That is not an email address" in html and "Check your inbox" not in html
    assert 'value="not an email"' in html and 'aria-invalid="true"' in html
    assert "<title>Error: Get a link to your preferences" in html
    assert "<title>Get a link to your preferences" in client.get("/preferences").get_data(as_text=True)


def test_requests_are_rate_limited_per_address_and_per_client(client):
    token = csrf_of(client.get("/preferences"))
    codes = [client.post("/preferences", data={"csrf_token": token, "email": "target@example.com"}).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    # five more addresses reach ten answered requests from this client in the hour
    other = [client.post("/preferences", data={"csrf_token": token, "email": f"n{i}@example.com"}).status_code for i in range(5)]
    assert other == [200] * 5
    page = client.post("/preferences", data={"csrf_token": token, "email": "x@example.com"})
    assert page.status_code == 429 and b"Too many requests from here" in page.data


def test_a_limited_form_says_how_much_is_left_and_an_unlimited_page_says_nothing(client):
    token = csrf_of(client.get("/preferences"))
    answers = [client.post("/preferences", data={"csrf_token": token, "email": "counted@example.com"}) for _ in range(2)]
    # The tightest limit that applies (five an address) counts down, request by request.
    assert [a.headers["X-RateLimit-Limit"] for a in answers] == ["5", "5"]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3"]
    assert "X-RateLimit-Limit" not in client.get("/preferences").headers


def test_forms_work_over_https_in_production_with_same_origin_referrers(make_app, api_key):
    app = make_app(env="production", base_url="https://prefs.example.com")
    client = app.test_client()
    headers = api_key("subjects:write", "consent:write")
    subject = client.post("/v1/subjects", json={"email": "tls@example.com"}, headers=headers, base_url="https://prefs.example.com").json
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers,
                       base_url="https://prefs.example.com").json  # fmt: skip
    page = client.get(link["preferences_url"])
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "Secure" in page.headers["Set-Cookie"]
    saved = client.post(link["preferences_url"], data={"csrf_token": csrf_of(page), "granted": ["email.offers"]},
                        headers={"Referer": link["preferences_url"]})  # fmt: skip
    assert saved.status_code == 303
