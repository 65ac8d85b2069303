"""Every public page leads somewhere: a broken link offers a fresh one, a POST we
cannot take shows the button, a saved page says what the person saw change, once,
and every page's title says where the person stands."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def headers(api_key):
    return api_key("consent:read", "consent:write", "subjects:write")


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def title_of(response) -> str:
    return re.search(r"<title>(.*?)</title>", response.get_data(as_text=True), re.S).group(1)


@pytest.mark.parametrize("path", ["/u/not-a-token", "/preferences/not-a-token", "/preferences/return/not-a-token"])
def test_a_broken_link_offers_a_fresh_one_by_email(client, path):
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and title_of(page) == "This link does not work – Example Test Ltd"
    assert re.search(r'<a class="button" href="/preferences">Email me a new link</a>', html)
    assert "Set-Cookie" not in page.headers  # a link to the form, not a form: a scanner's visit leaves no session
    form = client.get("/preferences")
    assert form.status_code == 200 and b'name="email"' in form.data


@pytest.mark.parametrize("path", ["/privacy-requests/verify/not-a-token", "/privacy-requests/download/not-a-token"])
def test_a_broken_privacy_request_link_offers_to_make_the_request_again(client, path):
    page = client.get(path)
    assert page.status_code == 404 and title_of(page) == "This link does not work – Example Test Ltd"
    assert '<a class="button" href="/privacy-requests/new">Make a new request</a>' in page.get_data(as_text=True)


def test_a_post_that_is_neither_one_click_nor_the_button_shows_the_button(client, api):
    api.record(email="reader@example.com")
    path = urlsplit(api.links(email="reader@example.com")["url"]).path
    for body in ({}, {"something": "else"}):
        page = client.post(path, data=body)
        html = page.get_data(as_text=True)
        assert page.status_code == 400 and title_of(page) == "Not unsubscribed yet – Example Test Ltd"
        assert "Nothing has changed yet. To unsubscribe, press the button below." in html
        assert '<input type="hidden" name="confirm" value="unsubscribe">' in html and "Unsubscribe</button>" in html
        assert "List-Unsubscribe=One-Click" in html  # the line for a mail program that left out the body
    assert api.check(email="reader@example.com").json["reason"] == "granted"
    pressed = client.post(path, data={"confirm": "unsubscribe"})
    assert title_of(pressed) == "You are unsubscribed – Example Test Ltd"
    assert api.check(email="reader@example.com").json["reason"] == "withdrawn"


def test_pages_name_purposes_and_channels_by_their_labels(client, api):
    api.record(email="reader@example.com", purpose="product_updates")
    path = urlsplit(api.links(email="reader@example.com", purpose="product_updates")["url"]).path
    html = client.get(path).get_data(as_text=True)
    assert '<strong>Product updates</strong><br><span class="muted">Email</span>' in html
    assert "product_updates" not in html and "product updates (email)" not in html


def test_stop_all_marketing_counts_what_the_page_showed_and_says_so_once(client, api, headers):
    subject = api.post("/v1/subjects", {"email": "pat@example.com", "phone": "+442079460555"}).json
    api.record(subject_id=subject["id"])  # the email newsletter
    api.record(subject_id=subject["id"], channel="phone", purpose="marketing")
    path = urlsplit(api.links(subject_id=subject["id"])["preferences_url"]).path
    page = client.get(path)
    assert len(re.findall(r'name="granted"\s+value="[^"]+"\s+checked', page.get_data(as_text=True))) == 2
    stopped = client.post(path, data={"csrf_token": csrf_of(page), "action": "stop_all"})
    assert stopped.status_code == 303 and urlsplit(stopped.headers["Location"]).path == path
    assert urlsplit(stopped.headers["Location"]).query == ""  # nothing in the address to show again
    after = client.get(stopped.headers["Location"])
    assert "Your choices are saved (2 changes)." in after.get_data(as_text=True)
    assert title_of(after) == "Saved: Your communication preferences – Example Test Ltd"
    assert not re.search(r'name="granted"\s+value="[^"]+"\s+checked', after.get_data(as_text=True))
    withdrawals = [e for e in api.changes()["events"] if e["status"] == "withdrawn"]
    assert len(withdrawals) > 2  # every marketing purpose is withdrawn; the person saw two of them change
    reloaded = client.get(path)
    assert "Your choices are saved" not in reloaded.get_data(as_text=True)
    assert title_of(reloaded) == "Your communication preferences – Example Test Ltd"


def test_the_home_page_names_the_organisation_and_leads_to_both_doors(make_app):
    client = make_app(privacy_policy_url="https://example.com/privacy").test_client()
    home = client.get("/")
    html = home.get_data(as_text=True)
    assert home.status_code == 200 and "<h1>Example Test Ltd</h1>" in html
    assert 'href="/preferences"' in html and 'href="/privacy-requests/new"' in html
    assert html.count('href="https://example.com/privacy"') == 2  # the page and its footer
    assert 'href="mailto:help@example.com"' in html
    for path in ("/preferences", "/privacy-requests/new", "/u/x", "/staff/login"):
        other = client.get(path).get_data(as_text=True)
        assert "Example Test Ltd" in other and 'href="mailto:help@example.com"' in other, path


def test_without_the_setting_the_home_page_links_the_policy_in_force(client, api_key):
    assert "privacy policy" not in client.get("/").get_data(as_text=True).lower()
    published = client.post("/v1/policy-versions", json={"version": "2026-01", "last_updated": "2026-01-01",
                            "url": "https://example.com/policy-2026"}, headers=api_key("admin"))  # fmt: skip
    assert published.status_code == 201
    assert 'href="https://example.com/policy-2026">Read our privacy policy' in client.get("/").get_data(as_text=True)


def test_templates_name_channels_purposes_and_plans_by_their_labels(make_app):
    app = make_app(plans={"crm-standard": "OpenCRM Standard, monthly"})
    with app.test_request_context("/"):
        rendered = app.jinja_env.from_string(
            "{{ channel_label('mail') }}|{{ purpose_label('email', 'offers') }}|{{ purpose_label('partner', 'share_for_marketing') }}"
            "|{{ plan_label('crm-standard') }}|{{ plan_label('team_yearly') }}|{{ plan_label('subscription') }}"
        ).render()
    assert rendered.split("|") == [
        "Postal mail", "Special offers", "Share my details with partners for their marketing",
        "OpenCRM Standard, monthly", "Team yearly", "Subscription",
    ]  # fmt: skip
