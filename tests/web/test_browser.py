"""The pages in real Chromium (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from tests.conftest import free_port

CHROMIUM = os.environ.get("PREFS_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium. `make test` on a machine without it says so and moves on;
    CI (PREFS_REQUIRE_BROWSER=1) installs it and fails rather than skip."""
    if not os.path.exists(CHROMIUM):
        message = f"needs Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
        if os.environ.get("PREFS_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def live_server(make_app):
    port = free_port()
    app = make_app(base_url=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()


@pytest.fixture
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def api(live_server, api_key):
    client = live_server.test_client()
    headers = api_key("admin")
    return client, headers


def test_a_person_changes_two_purposes_and_the_api_agrees(api, browser):
    client, headers = api
    subject = client.post("/v1/subjects", json={"email": "browser@example.com"}, headers=headers).json
    client.post("/v1/consents", json={"subject_id": subject["id"], "channel": "email", "purpose": "newsletter", "status": "granted"}, headers=headers)
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(link["preferences_url"])
    page.get_by_label("Newsletter").uncheck()
    page.get_by_label("Special offers").check()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_role("status").inner_text().startswith("Your choices are saved (2 changes)")
    # the layout fits the phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    def check(purpose):
        query = {"channel": "email", "purpose": purpose, "email": "browser@example.com"}
        return client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"]

    assert check("newsletter") == "withdrawn" and check("offers") == "granted"


def test_the_page_works_by_keyboard_alone(api, browser):
    client, headers = api
    subject = client.post("/v1/subjects", json={"email": "keys@example.com"}, headers=headers).json
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json
    page = browser.new_page()
    page.goto(link["preferences_url"])
    page.keyboard.press("Tab")  # first control: the Newsletter checkbox
    assert page.evaluate("document.activeElement.id") == "p-email-newsletter"
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save my choices").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("[role=status]")
    query = {"channel": "email", "purpose": "newsletter", "email": "keys@example.com"}
    assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "granted"


def test_opening_an_unsubscribe_link_with_get_changes_nothing(api, browser):
    client, headers = api
    client.post("/v1/consents", json={"email": "scanner@example.com", "channel": "email", "purpose": "offers", "status": "granted"}, headers=headers)
    link = client.post("/v1/unsubscribe-links", json={"email": "scanner@example.com", "purpose": "offers"}, headers=headers).json
    page = browser.new_page()
    response = page.goto(link["url"])
    assert response.status == 200
    assert page.get_by_role("button", name="Unsubscribe").is_visible()
    query = {"channel": "email", "purpose": "offers", "email": "scanner@example.com"}
    assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "granted"
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.get_by_role("heading").inner_text() == "You are unsubscribed"
    assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "withdrawn"
    assert urlsplit(page.url).path == urlsplit(link["url"]).path  # no redirect


def test_staff_sign_in_find_a_correction_and_approve_it(api, live_server, browser):
    client, headers = api
    runner = live_server.test_cli_runner()
    from prefs_service.cli import main

    assert runner.invoke(main, ["staff", "create", "officer@example.com"], input="a long staff password\n").exit_code == 0
    subject = client.post("/v1/subjects", json={"email": "moved@example.com", "name": "Old Name"}, headers=headers).json
    made = client.post(
        "/v1/requests", json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "New Name"}, "verified": True}, headers=headers
    ).json
    live_server.extensions["prefs.jobs"].start(threads=1)

    page = browser.new_page()
    page.goto(live_server.config["PREFS"].base_url + "/staff")
    page.get_by_label("Email").fill("officer@example.com")
    page.get_by_label("Password").fill("a long staff password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=made["reference"]).click()
    assert page.get_by_role("row", name="name Old Name New Name").is_visible()
    page.get_by_role("button", name="Approve the correction").click()
    assert "Approved" in page.get_by_role("status").inner_text()

    from tests.conftest import InProcessWorker

    InProcessWorker(live_server).wait()
    assert client.get(f"/v1/subjects/{subject['id']}", headers=headers).json["name"] == "New Name"
    page.reload()
    assert page.get_by_text("completed by system").is_visible()


def test_commission_a_system_and_choose_its_password(api, live_server, browser, smtp):
    from tests.orders.stripe_events import checkout_session, event, post

    client, _ = api
    live_server.extensions["prefs.jobs"].start(threads=2)
    base = live_server.config["PREFS"].base_url
    page = browser.new_page()
    page.goto(base + "/purchase/complete?session_id=cs_browser")  # Stripe sent them back before the webhook
    assert "being confirmed" in page.get_by_role("status").inner_text()
    post(client, event("checkout.session.completed", checkout_session("cs_browser", email="browser.buyer@example.com")))
    page.wait_for_selector("text=Set up your system", timeout=10_000)  # the page refreshed by itself
    page.get_by_label("User name").fill("browser")
    page.get_by_label("System name").fill("browser-crm")
    page.get_by_role("button", name="Create my system").click()
    assert "browser-crm" in page.get_by_role("status").inner_text()

    import re
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(m["Subject"].startswith("Your system is ready") for m in smtp.messages):
        time.sleep(0.05)
    delivery = next(m for m in smtp.messages if m["Subject"].startswith("Your system is ready"))
    link = re.search(r"https?://\S+/purchase/set-password/\S+", delivery.get_body(("plain",)).get_content()).group(0)
    page.goto(link)
    page.get_by_label("New password (at least 12 characters)").fill("browser chosen password")
    page.get_by_label("The same password again").fill("browser chosen password")
    page.get_by_role("button", name="Set my password").click()
    assert page.get_by_role("heading").inner_text() == "Your password is set"
    assert "https://browser-crm.crm.example" in page.get_by_role("status").inner_text()
