"""The pages in real Chromium (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from prefs_service.cli import main
from tests.conftest import InProcessWorker, free_port
from tests.helpers import eventually

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


def _serve(app, port: int, ssl_context=None):
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=ssl_context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def live_server(make_app):
    port = free_port()
    app = make_app(base_url=f"http://127.0.0.1:{port}")
    server = _serve(app, port)
    yield app
    server.shutdown()


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1 (the browser is told to accept it)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def production_https_server(make_app, tls_certificate):
    """The app as production runs it (Secure cookies, Flask-WTF's strict referrer check, HSTS), over HTTPS."""
    port = free_port()
    app = make_app(env="production", base_url=f"https://127.0.0.1:{port}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_certificate)
    server = _serve(app, port, context)
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


class CspWatch:
    """Opens pages in fresh browser contexts and collects every Content-Security-Policy
    violation Chromium reports on them, across all their navigations. (Chromium logs
    each one to the console as it blocks it, naming the directive and what it blocked.)"""

    def __init__(self, browser):
        self.browser = browser
        self.pages = []
        self.violations = []

    def new_page(self, **context_options):
        page = self.browser.new_context(**context_options).new_page()
        page.on("console", lambda message: self._record(page, message))
        self.pages.append(page)
        return page

    def _record(self, page, message) -> None:
        if message.type == "error" and ("Content Security Policy" in message.text or "Content-Security-Policy" in message.text):
            self.violations.append(f"{page.url}: {message.text}")

    def reported(self) -> list[str]:
        for page in self.pages:
            if not page.is_closed():
                page.evaluate("0")  # one round trip: every console message sent before it has arrived
        return self.violations


@pytest.fixture
def pages(browser):
    """`pages.new_page()`: a page whose CSP violations fail the test."""
    watch = CspWatch(browser)
    yield watch
    assert watch.reported() == [], "the pages broke their Content-Security-Policy"


@pytest.fixture
def api(live_server, api_key):
    client = live_server.test_client()
    headers = api_key("admin")
    return client, headers


def layout_width(page) -> str:
    """The page column's max-width, which only the stylesheet sets (40rem; 64rem for staff)."""
    page.wait_for_load_state("load")  # the stylesheet has arrived, or was refused
    return page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")


def test_a_person_changes_two_purposes_and_the_api_agrees(api, pages):
    client, headers = api
    subject = client.post("/v1/subjects", json={"email": "browser@example.com"}, headers=headers).json
    client.post(
        "/v1/consents",
        json={"subject_id": subject["id"], "channel": "email", "purpose": "newsletter", "status": "granted"},
        headers=headers,
    )
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json

    page = pages.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(link["preferences_url"])
    page.get_by_label("Newsletter").uncheck()
    page.get_by_label("Special offers").check()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_role("status").inner_text().startswith("Your choices are saved (2 changes)")
    # the layout fits the phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert layout_width(page) == "640px"  # the stylesheet applies

    def check(purpose):
        query = {"channel": "email", "purpose": purpose, "email": "browser@example.com"}
        return client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"]

    assert check("newsletter") == "withdrawn" and check("offers") == "granted"


def test_the_page_works_by_keyboard_alone(api, pages):
    client, headers = api
    subject = client.post("/v1/subjects", json={"email": "keys@example.com"}, headers=headers).json
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json
    page = pages.new_page()
    page.goto(link["preferences_url"])
    page.keyboard.press("Tab")  # first control: the Newsletter checkbox
    assert page.evaluate("document.activeElement.id") == "p-email-newsletter"
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save my choices").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("[role=status]")
    query = {"channel": "email", "purpose": "newsletter", "email": "keys@example.com"}
    assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "granted"


def test_opening_an_unsubscribe_link_with_get_changes_nothing(api, pages):
    client, headers = api
    client.post(
        "/v1/consents", json={"email": "scanner@example.com", "channel": "email", "purpose": "offers", "status": "granted"}, headers=headers
    )
    link = client.post("/v1/unsubscribe-links", json={"email": "scanner@example.com", "purpose": "offers"}, headers=headers).json
    page = pages.new_page()
    response = page.goto(link["url"])
    assert response.status == 200
    assert page.get_by_role("button", name="Unsubscribe").is_visible()
    query = {"channel": "email", "purpose": "offers", "email": "scanner@example.com"}
    assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "granted"
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.get_by_role("heading").inner_text() == "You are unsubscribed"
    assert client.get("/v1/consent/check", query_string=query, headers=headers).json["reason"] == "withdrawn"
    assert urlsplit(page.url).path == urlsplit(link["url"]).path  # no redirect


def test_staff_sign_in_find_a_correction_and_approve_it(api, live_server, pages):
    client, headers = api
    runner = live_server.test_cli_runner()
    from prefs_service.cli import main

    assert runner.invoke(main, ["staff", "create", "officer@example.com"], input="a long staff password\n").exit_code == 0
    subject = client.post("/v1/subjects", json={"email": "moved@example.com", "name": "Old Name"}, headers=headers).json
    made = client.post(
        "/v1/requests",
        json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "New Name"}, "verified": True},
        headers=headers,
    ).json
    live_server.extensions["prefs.jobs"].start(threads=1)

    page = pages.new_page()
    page.goto(live_server.config["PREFS"].base_url + "/staff")
    page.get_by_label("Email").fill("officer@example.com")
    page.get_by_label("Password").fill("a long staff password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=made["reference"]).click()
    assert page.get_by_role("row", name="name Old Name New Name").is_visible()
    assert layout_width(page) == "1024px"  # the console's wider column
    page.get_by_role("button", name="Approve the correction").click()
    assert "Approved" in page.get_by_role("status").inner_text()

    InProcessWorker(live_server).wait()
    assert client.get(f"/v1/subjects/{subject['id']}", headers=headers).json["name"] == "New Name"
    page.reload()
    assert page.get_by_text("completed by system").is_visible()


def test_commission_a_system_and_choose_its_password(api, live_server, pages, smtp):
    from tests.orders.stripe_events import checkout_session, event, post

    client, _ = api
    live_server.extensions["prefs.jobs"].start(threads=2)
    base = live_server.config["PREFS"].base_url
    page = pages.new_page()
    page.goto(base + "/purchase/complete?session_id=cs_browser")  # Stripe sent them back before the webhook
    assert "being confirmed" in page.get_by_role("status").inner_text()
    post(client, event("checkout.session.completed", checkout_session("cs_browser", email="browser.buyer@example.com")))
    page.wait_for_selector("text=Set up your system", timeout=10_000)  # the page refreshed by itself
    page.get_by_label("User name").fill("browser")
    page.get_by_label("System name").fill("browser-crm")
    page.get_by_role("button", name="Create my system").click()
    assert "browser-crm" in page.get_by_role("status").inner_text()

    delivery = eventually(
        lambda: next((m for m in smtp.messages if m["Subject"].startswith("Your system is ready")), None),
        timeout=15,
        what="the delivery mail",
    )
    link = re.search(r"https?://\S+/purchase/set-password/\S+", delivery.get_body(("plain",)).get_content()).group(0)
    page.goto(link)
    page.get_by_label("New password (at least 12 characters)").fill("browser chosen password")
    page.get_by_label("The same password again").fill("browser chosen password")
    page.get_by_role("button", name="Set my password").click()
    assert page.get_by_role("heading").inner_text() == "Your password is set"
    assert "https://browser-crm.crm.example" in page.get_by_role("status").inner_text()


def sign_in_as_staff(app, page, email: str = "officer@example.com") -> None:
    assert app.test_cli_runner().invoke(main, ["staff", "create", email], input="a long staff password\n").exit_code == 0
    page.goto(app.config["PREFS"].base_url + "/staff")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long staff password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Rights requests").wait_for()


def test_the_watch_sees_what_the_policy_blocks(live_server, browser):
    watch = CspWatch(browser)
    page = watch.new_page()
    page.goto(live_server.config["PREFS"].base_url + "/preferences")
    page.evaluate("""() => {
      const style = document.createElement("style");
      style.textContent = "h1 { color: rgb(255, 0, 0) }";
      document.head.append(style);
    }""")
    assert any("style-src" in violation for violation in watch.reported())
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") != "rgb(255, 0, 0)"


def test_the_other_pages_work_under_the_policy(live_server, pages, smtp):
    base = live_server.config["PREFS"].base_url
    live_server.extensions["prefs.jobs"].start(threads=1)
    page = pages.new_page(viewport={"width": 390, "height": 844})

    page.goto(base + "/preferences")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_role("button", name="Send me a link").click()
    assert page.get_by_role("heading").inner_text() == "Check your inbox"
    assert layout_width(page) == "640px"

    page.goto(base + "/privacy-requests/new")
    page.get_by_label("Send me a copy of the data you hold about me").check()
    page.get_by_label("Email").first.fill("someone@example.com")
    page.get_by_label("Postal address").fill("1 High Street")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # full-width fields fit the phone
    page.get_by_role("button", name="Send my request").click()
    assert page.get_by_role("heading").inner_text() == "Request received"
    reference = page.get_by_role("status").locator("strong").inner_text()
    InProcessWorker(live_server).wait()
    mail = next(m for m in smtp.wait_for(1) if m["To"] == "someone@example.com")
    page.goto(re.search(r"https?://\S+/privacy-requests/verify/\S+", mail.get_body(("plain",)).get_content()).group(0))
    page.get_by_role("button", name="Confirm my request").click()
    assert page.get_by_role("heading").inner_text() == "Request confirmed"

    response = page.goto(base + "/u/not-a-valid-link")
    assert response.status == 404 and page.get_by_role("alert").inner_text().startswith("This unsubscribe link is not valid")
    assert layout_width(page) == "640px"

    sign_in_as_staff(live_server, page)
    page.get_by_label("completed").check()  # the request confirmed above, wherever its export stands
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=reference).wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls, not the page
    page.get_by_role("link", name="Delivery escalations").click()
    assert page.get_by_role("heading").inner_text() == "Open delivery escalations"
    page.get_by_text("Nothing is waiting.").wait_for()
    assert layout_width(page) == "1024px"


def test_the_docs_page_lists_the_operations_with_the_network_cut(live_server, pages):
    """Every request but those to the service itself is aborted, as on a machine
    without internet access; Swagger UI still renders, under its policy."""
    base = live_server.config["PREFS"].base_url
    page = pages.new_page()
    asked, refused = [], []

    def only_the_service(route):
        url = route.request.url
        if url.startswith(base + "/"):
            asked.append(url.removeprefix(base))
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    page.route("**/*", only_the_service)
    page.goto(base + "/docs")
    page.locator(".opblock").first.wait_for()  # operations rendered from /openapi.json
    assert page.locator(".opblock-summary-path", has_text="/v1/consent/check").count() == 2  # GET and POST
    assert page.locator(".opblock").count() >= 20
    assert page.get_by_role("heading", name=re.compile("prefs_service")).count() >= 1
    assert refused == []
    assert {"/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(asked)


def test_staff_decisions_pass_the_https_referrer_check_in_production(production_https_server, pages, api_key):
    app = production_https_server
    base = app.config["PREFS"].base_url
    client, headers = app.test_client(), api_key("admin")
    subject = client.post("/v1/subjects", json={"email": "tls@example.com", "name": "Old Name"}, headers=headers, base_url=base).json
    made = client.post("/v1/requests", json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "New Name"}, "verified": True},
                       headers=headers, base_url=base).json  # fmt: skip
    page = pages.new_page(ignore_https_errors=True)
    sign_in_as_staff(app, page)
    page.get_by_role("link", name=made["reference"]).click()
    page.get_by_role("heading", name=f"Correction request {made['reference']}").wait_for()
    detail = page.url
    with page.expect_response(lambda response: response.request.method == "POST") as approving:
        page.get_by_role("button", name="Approve the correction").click()
    approved = approving.value
    # Flask-WTF over HTTPS accepts only a same-origin Referer; the pages' policy still sends it
    assert approved.status == 303 and approved.request.header_value("referer") == detail
    assert approved.header_value("strict-transport-security") == "max-age=63072000; includeSubDomains"
    assert "Approved" in page.get_by_role("status").inner_text()
