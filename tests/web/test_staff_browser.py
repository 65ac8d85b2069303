"""A staff member's day in real Chromium: sign in, the dashboard, a search,
a person's page, a correction taken and approved, and (as an admin) an
account disabled that then cannot sign in."""

from __future__ import annotations

from prefs_service.cli import main
from tests.conftest import InProcessWorker
from tests.web.test_browser import browser, chromium, live_server, pages  # noqa: F401  (the browser fixtures)

PASSWORD = "a long staff password"


def create_staff(app, email: str, role: str) -> None:
    result = app.test_cli_runner().invoke(main, ["staff", "create", email, "--role", role], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_staff_members_walk_through_the_console(live_server, pages, api_key):  # noqa: F811
    app, base = live_server, live_server.config["PREFS"].base_url
    client, headers = app.test_client(), api_key("admin")
    create_staff(app, "lead@example.com", "admin")
    create_staff(app, "leaving@example.com", "reviewer")
    subject = client.post("/v1/subjects", json={"email": "caller@example.com", "name": "Old Name"}, headers=headers).json
    client.post(
        "/v1/consents",
        json={"subject_id": subject["id"], "channel": "email", "purpose": "newsletter", "status": "granted"},
        headers=headers,
    )
    app.extensions["prefs.jobs"].start(threads=1)

    page = pages.new_page()
    sign_in(page, base, "lead@example.com")
    page.get_by_role("heading", name="Dashboard").wait_for()
    assert page.get_by_role("link", name="0 open", exact=True).is_visible()  # no request yet

    # search by email: one match goes straight to the person, the address never in the URL
    page.get_by_label("Find a person or request").fill("Caller@Example.com")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("heading", name="Old Name").wait_for()
    assert page.url.endswith(f"/staff/people/{subject['id']}") and "caller" not in page.url
    assert page.get_by_role("row", name="Email caller@example.com").is_visible()
    assert page.get_by_role("row").filter(has_text="Newsletter").filter(has_text="Yes").is_visible()

    # a correction taken on the phone, then approved
    page.get_by_label("Correction").check()
    page.get_by_label("New name").fill("New Name")
    page.get_by_role("button", name="Start the request").click()
    page.get_by_role("heading", name="Correction request PR-").wait_for()
    assert page.get_by_text("Received by lead@example.com").is_visible()
    assert page.get_by_role("row", name="name Old Name New Name").is_visible()
    page.get_by_role("button", name="Approve the correction").click()
    assert "Approved" in page.get_by_role("status").inner_text()
    InProcessWorker(app).wait()
    assert client.get(f"/v1/subjects/{subject['id']}", headers=headers).json["name"] == "New Name"
    page.reload()
    page.get_by_text("Completed by system").wait_for()
    page.get_by_role("link", name="their record").click()
    page.get_by_role("heading", name="New Name").wait_for()

    # as admin: disable another account, which then cannot sign in
    page.get_by_role("link", name="Staff accounts").click()
    page.get_by_role("button", name="Disable leaving@example.com").click()
    assert "leaving@example.com is disabled" in page.get_by_role("status").inner_text()
    other = pages.new_page()
    sign_in(other, base, "leaving@example.com")
    assert "do not match an active staff account" in other.get_by_role("alert").inner_text()
