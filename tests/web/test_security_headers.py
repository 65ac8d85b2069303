"""Every answer carries the browser security headers: each page route, the
stylesheet, error pages, the answers to the forms, and the API; /docs has a
policy of its own; production over HTTPS adds HSTS."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from flask import url_for

from prefs_service import api, links
from prefs_service.cli import main
from prefs_service.orders import service as orders
from tests.orders.stripe_events import apply_accepted, checkout_session, event, post

HTTPS = "https://prefs.example.com"
HSTS = "max-age=63072000; includeSubDomains"
STAFF_PASSWORD = "a long staff password"


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def policy_of(response) -> dict[str, list[str]]:
    [header] = response.headers.getlist("Content-Security-Policy")  # exactly one policy
    return {name: sources for name, *sources in (directive.split() for directive in header.split(";") if directive.strip())}


def assert_no_inline_code_allowed(policy: dict[str, list[str]]) -> None:
    for directive in ("script-src", "style-src"):
        sources = policy.get(directive, policy["default-src"])
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, (directive, sources)


def assert_page_headers(response) -> None:
    policy = policy_of(response)
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["style-src"] == ["'self'"] and policy["form-action"] == ["'self'"] and policy["base-uri"] == ["'none'"]
    assert_no_inline_code_allowed(policy)
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    # the forms' CSRF check over HTTPS needs same-origin referrers; no other site gets one
    assert response.headers.getlist("Referrer-Policy") == ["same-origin"]
    assert "Strict-Transport-Security" not in response.headers
    if response.mimetype == "text/html":
        body = response.get_data()
        assert b"<style" not in body and b" style=" not in body and b"<script" not in body, "the policy would block it"


def assert_api_headers(response) -> None:
    policy = policy_of(response)
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]


@pytest.fixture
def headers(api_key):
    return api_key("admin")


@pytest.fixture
def staff_client(app, client):
    result = app.test_cli_runner().invoke(main, ["staff", "create", "officer@example.com"], input=STAFF_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    page = client.get("/staff/login")
    assert (
        client.post(
            "/staff/login", data={"csrf_token": csrf_of(page), "email": "officer@example.com", "password": STAFF_PASSWORD}
        ).status_code
        == 303
    )
    return client


@pytest.fixture
def reachable(app, client, headers):
    """Real addresses for the page routes whose arguments name something."""
    subject = client.post("/v1/subjects", json={"email": "walker@example.com"}, headers=headers).json
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json
    made = client.post("/v1/requests", json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "New"}, "verified": True},
                       headers=headers).json  # fmt: skip
    post(client, event("checkout.session.completed", checkout_session("cs_walk", email="walker@example.com")))
    apply_accepted(app)
    with app.test_request_context():
        order = orders.order_for_session("cs_walk")
        return {
            "unsubscribe.confirm": link["url"],
            "preferences.page": link["preferences_url"],
            "privacy_requests.verify": links.verify_url(made["id"]),
            "purchase.complete": url_for("purchase.complete", session_id="cs_walk"),
            "purchase.commission": links.commission_url(order.id),
            "purchase.set_password": links.set_password_url(order.id),
            "staff.detail": url_for("staff.detail", request_id=made["id"]),
            "pages.static": url_for("pages.static", filename="prefs.css"),
        }


def page_rules(app):
    not_pages = {blueprint.name for blueprint in api.API_BLUEPRINTS} | {"api-docs"}
    return [rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and rule.endpoint.partition(".")[0] not in not_pages]


def test_every_page_route_carries_the_headers(app, staff_client, reachable):
    answered = {}
    for rule in page_rules(app):
        url = reachable.get(rule.endpoint)
        if url is None:  # a route this test does not know yet: its answer to a made-up argument
            with app.test_request_context():
                url = url_for(rule.endpoint, **{name: 1 if name.endswith("_id") else "not-a-real-token" for name in rule.arguments})
        response = staff_client.get(url)
        assert_page_headers(response)
        answered[rule.endpoint] = response.status_code
    assert {endpoint: answered[endpoint] for endpoint in reachable} == dict.fromkeys(reachable, 200)
    for endpoint in ("preferences.request_link", "privacy_requests.new", "staff.queue", "staff.escalations", "staff.login"):
        assert answered[endpoint] == 200, endpoint


def test_the_stylesheet_is_served_and_pages_link_it(client):
    sheet = client.get("/assets/prefs.css")
    assert sheet.status_code == 200 and sheet.mimetype == "text/css" and b".staff main" in sheet.data
    page = client.get("/preferences")
    assert b'<link rel="stylesheet" href="/assets/prefs.css">' in page.data


def test_the_answers_to_forms_carry_the_headers(app, staff_client, reachable, headers):
    client = staff_client
    preferences = client.get(reachable["preferences.page"])
    saved = client.post(
        reachable["preferences.page"], data={"csrf_token": csrf_of(preferences), "action": "save", "granted": ["email.offers"]}
    )
    assert saved.status_code == 303
    requested = client.post("/preferences", data={"csrf_token": csrf_of(client.get("/preferences")), "email": "walker@example.com"})
    received = client.post("/privacy-requests/new", data={"csrf_token": csrf_of(client.get("/privacy-requests/new")), "type": "access",
                                                         "email": "walker@example.com"})  # fmt: skip
    confirmed = client.post(reachable["privacy_requests.verify"])
    button = client.post(reachable["unsubscribe.confirm"], data={"confirm": "unsubscribe"})
    commission = client.get(reachable["purchase.commission"])
    invalid_names = client.post(
        reachable["purchase.commission"], data={"csrf_token": csrf_of(commission), "username": "No!", "system_name": "x"}
    )
    forged = client.post("/privacy-requests/new", data={"csrf_token": "forged", "type": "access", "email": "walker@example.com"})
    made = re.search(r"/staff/requests/(\d+)", reachable["staff.detail"]).group(1)
    detail = client.get(reachable["staff.detail"])
    approved = client.post(f"/staff/requests/{made}/approve", data={"csrf_token": csrf_of(detail)})
    answers = [saved, requested, received, confirmed, button, invalid_names, forged, approved]
    assert [answer.status_code for answer in answers] == [303, 200, 200, 200, 200, 400, 400, 303]
    for answer in answers:
        assert_page_headers(answer)

    one_click = client.post(reachable["unsubscribe.confirm"], data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and one_click.mimetype == "text/plain"
    assert_page_headers(one_click)

    logged_out = client.post("/staff/logout", data={"csrf_token": csrf_of(client.get("/staff"))})
    wrong_password = client.post("/staff/login", data={"csrf_token": csrf_of(client.get("/staff/login")), "email": "officer@example.com",
                                                        "password": "not the password"})  # fmt: skip
    assert [logged_out.status_code, wrong_password.status_code] == [303, 401]
    assert_page_headers(logged_out)
    assert_page_headers(wrong_password)


def test_api_answers_carry_the_headers(client, headers):
    query = {"channel": "email", "purpose": "newsletter", "email": "api@example.com"}
    answers = [
        client.get("/v1/consent/check", query_string=query, headers=headers),
        client.post(
            "/v1/consent/check", json={"channel": "email", "purpose": "newsletter", "recipients": ["a@example.com"]}, headers=headers
        ),
        client.get("/v1/consent/check", query_string=query),  # no key: a problem answer
        client.get("/v1/no-such-thing", headers=headers),
        client.get("/healthz"),
        client.get("/openapi.json"),
        post(client, event("checkout.session.completed", checkout_session("cs_api"))),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 401, 404, 200, 200, 200]
    for answer in answers:
        assert_api_headers(answer)


def test_the_docs_page_may_run_its_own_inline_script_and_its_own_files_only(client):
    page = client.get("/docs")
    assert page.status_code == 200
    policy = policy_of(page)
    [inline] = re.findall(r"<script>(.*?)</script>", page.get_data(as_text=True), re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert sorted(policy["script-src"]) == sorted(["'self'", f"'sha256-{digest}'"])
    assert policy["style-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert not [source for sources in policy.values() for source in sources if "://" in source or source in ("https:", "http:", "*")]
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert_no_inline_code_allowed(policy)
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert policy_of(client.get("/docs")) == policy  # the same for every visit


def test_production_over_https_adds_hsts_everywhere(make_app, api_key):
    app = make_app(env="production", base_url=HTTPS)
    client = app.test_client()
    headers = api_key("admin")
    subject = client.post("/v1/subjects", json={"email": "tls@example.com"}, headers=headers, base_url=HTTPS).json
    link = client.post(
        "/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers, base_url=HTTPS
    ).json
    secure = [
        client.get(link["preferences_url"]),
        client.get(HTTPS + "/preferences"),
        client.get(HTTPS + "/assets/prefs.css"),
        client.get(HTTPS + "/no-such-page"),
        client.get(HTTPS + "/staff"),
        client.get(HTTPS + "/docs"),
        client.get(HTTPS + "/healthz"),
        client.get(
            HTTPS + "/v1/consent/check",
            query_string={"channel": "email", "purpose": "newsletter", "email": "tls@example.com"},
            headers=headers,
        ),
    ]
    assert [r.status_code for r in secure] == [200, 200, 200, 404, 302, 200, 200, 200]
    for response in secure:
        assert response.headers.getlist("Strict-Transport-Security") == [HSTS]
        assert (
            response.headers["X-Content-Type-Options"] == "nosniff"
            and "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        )
    # over plain HTTP a browser must ignore HSTS, so it is not sent at all
    for path in ("/preferences", "/healthz"):
        assert "Strict-Transport-Security" not in client.get("http://prefs.example.com" + path).headers


def test_outside_production_https_gets_no_hsts(client):
    # a developer's HTTPS tunnel must not pin their browser to HTTPS for two years
    assert "Strict-Transport-Security" not in client.get(HTTPS + "/preferences").headers
