"""Roles and the admin pages: staff accounts, API keys and the audit log."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa

from prefs_service.access import service as access
from prefs_service.errors import Conflict
from prefs_service.extensions import db
from tests.helpers import eventually
from tests.web.staff_support import PASSWORD, alert_of, csrf_of, make_staff, post_form, sign_in, signed_in, status_of


@pytest.fixture
def boss(app):
    return signed_in(app, "boss@example.com", "admin")


def account_id(client, email: str) -> str:
    html = client.get("/staff/accounts").get_data(as_text=True)
    row = next(r for r in html.split("<tr>") if f"<td>{email}" in r)
    return re.search(r"/staff/accounts/(\d+)/", row).group(1)


ADMIN_PAGES = ["/staff/accounts", "/staff/api-keys", "/staff/audit"]


def test_a_reviewer_is_refused_every_admin_page_and_action(app, boss):
    reviewer = signed_in(app, "rev@example.com")
    for path in ADMIN_PAGES:
        refused = reviewer.get(path)
        assert refused.status_code == 403 and "Only an admin may use this page" in refused.get_data(as_text=True), path
        assert boss.get(path).status_code == 200, path
    target = account_id(boss, "boss@example.com")
    for action in ("disable", "enable", "unlock", "reset-password", "role"):
        refused = post_form(reviewer, f"/staff/accounts/{target}/{action}", {"role": "reviewer"}, follow=False)
        assert refused.status_code == 403, action
    assert post_form(reviewer, "/staff/accounts", {"email": "x@example.com", "role": "admin"}, follow=False).status_code == 403
    nav = reviewer.get("/staff/dashboard").get_data(as_text=True)
    assert "Staff accounts" not in nav and "Audit log" not in nav and 'href="/staff/jobs"' in nav
    assert "Staff accounts" in boss.get("/staff/dashboard").get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in_from_admin_pages(client):
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_an_admin_adds_a_reviewer_who_signs_in_with_the_password_shown_once(app, boss):
    created = post_form(boss, "/staff/accounts", {"email": "New.Person@Example.com", "role": "reviewer"}, follow=False)
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code class="secret">([^<]+)</code>', created.get_data(as_text=True)).group(1)
    newcomer = app.test_client()
    assert sign_in(newcomer, "new.person@example.com", password).status_code == 303
    assert newcomer.get("/staff/accounts").status_code == 403  # a reviewer
    again = post_form(boss, "/staff/accounts", {"email": "new.person@example.com", "role": "reviewer"})
    assert "already exists" in alert_of(again)
    bad = post_form(boss, "/staff/accounts", {"email": "not an address", "role": "owner"})
    assert "Not a valid email address" in alert_of(bad)


def test_a_disabled_account_is_signed_out_and_cannot_sign_in_until_enabled(app, boss):
    reviewer = signed_in(app, "leaving@example.com")
    target = account_id(boss, "leaving@example.com")
    done = post_form(boss, f"/staff/accounts/{target}/disable")
    assert "leaving@example.com is disabled" in status_of(done) and "Disabled" in done.get_data(as_text=True)
    assert reviewer.get("/staff/dashboard").status_code == 302  # the open session ended
    assert sign_in(app.test_client(), "leaving@example.com").status_code == 401
    post_form(boss, f"/staff/accounts/{target}/enable")
    assert sign_in(app.test_client(), "leaving@example.com").status_code == 303


def test_the_last_active_admin_cannot_disable_or_demote_themselves(app, boss):
    me = account_id(boss, "boss@example.com")
    refused = post_form(boss, f"/staff/accounts/{me}/disable")
    assert "last active admin" in alert_of(refused)
    refused = post_form(boss, f"/staff/accounts/{me}/role", {"role": "reviewer"})
    assert "last active admin" in alert_of(refused)
    assert boss.get("/staff/accounts").status_code == 200  # still an admin, still signed in
    make_staff(app, "deputy@example.com", "admin")
    demoted = post_form(boss, f"/staff/accounts/{me}/role", {"role": "reviewer"})
    assert "boss@example.com is now reviewer" in status_of(demoted)
    assert boss.get("/staff/accounts").status_code == 403


def test_an_admin_unlocks_a_locked_account(app, boss):
    make_staff(app, "forgetful@example.com")
    stranger = app.test_client()
    for _ in range(5):
        sign_in(stranger, "forgetful@example.com", "wrong password!")
    assert sign_in(stranger, "forgetful@example.com").status_code == 401  # locked
    target = account_id(boss, "forgetful@example.com")
    assert "Locked" in boss.get("/staff/accounts").get_data(as_text=True)
    unlocked = post_form(boss, f"/staff/accounts/{target}/unlock")
    assert "forgetful@example.com is unlocked" in status_of(unlocked)
    assert sign_in(stranger, "forgetful@example.com").status_code == 303


def test_a_password_reset_ends_the_sessions_and_only_the_new_password_works(app, boss):
    reviewer = signed_in(app, "reset@example.com")
    target = account_id(boss, "reset@example.com")
    reset = post_form(boss, f"/staff/accounts/{target}/reset-password", follow=False)
    assert reset.status_code == 200 and reset.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code class="secret">([^<]+)</code>', reset.get_data(as_text=True)).group(1)
    assert reviewer.get("/staff/dashboard").status_code == 302
    assert sign_in(app.test_client(), "reset@example.com", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "reset@example.com", password).status_code == 303


def test_an_admin_lists_and_revokes_api_keys(app, client, boss, api_key):
    headers = api_key("consent:read", name="mailer")
    client.get("/v1/consent/check", query_string={"channel": "email", "purpose": "newsletter", "email": "a@example.com"}, headers=headers)
    page = boss.get("/staff/api-keys").get_data(as_text=True)
    row = next(r for r in page.split("<tr>") if "<td>mailer</td>" in r)
    assert "consent:read" in row and "never" not in row  # last used today
    prefix = re.search(r"/staff/api-keys/([0-9a-f]+)/revoke", row).group(1)
    revoked = post_form(boss, f"/staff/api-keys/{prefix}/revoke")
    assert "“mailer” is revoked" in status_of(revoked)
    query = {"channel": "email", "purpose": "newsletter", "email": "a@example.com"}
    assert client.get("/v1/consent/check", query_string=query, headers=headers).status_code == 401
    missing = post_form(boss, "/staff/api-keys/ffffffffffff/revoke")
    assert "No API key with that prefix" in alert_of(missing)


def test_every_admin_action_is_in_the_audit_log_by_name_and_the_log_filters_and_pages(app, boss):
    make_staff(app, "someone@example.com")
    target = account_id(boss, "someone@example.com")
    post_form(boss, f"/staff/accounts/{target}/disable")
    post_form(boss, f"/staff/accounts/{target}/enable")
    post_form(boss, f"/staff/accounts/{target}/role", {"role": "admin"})
    post_form(boss, f"/staff/accounts/{target}/reset-password")
    log = boss.get("/staff/audit").get_data(as_text=True)
    for action in ("staff.disabled", "staff.enabled", "staff.role_changed", "staff.password_reset", "staff.created"):
        row = next(r for r in log.split("<tr>") if f"<td>{action}</td>" in r)
        assert ("boss@example.com" if action != "staff.created" else "the command line") in row, action
    assert re.search(r">\s*staff:\d", log) is None  # shown by name, never as "staff:1"
    only = boss.get("/staff/audit", query_string={"action": "staff.disabled"}).get_data(as_text=True)
    assert only.count("<td>staff.disabled</td>") == 1 and "<td>staff.enabled</td>" not in only
    by_cli = boss.get("/staff/audit", query_string={"actor": "cli"}).get_data(as_text=True)
    assert "<td>staff.created</td>" in by_cli and "<td>staff.disabled</td>" not in by_cli
    for _ in range(30):  # sign-ins and sign-outs add rows, two at a time
        post_form(boss, f"/staff/accounts/{target}/disable")
        post_form(boss, f"/staff/accounts/{target}/enable")
    first = boss.get("/staff/audit").get_data(as_text=True)
    assert first.count("<time") == 50
    older = re.search(r'href="(/staff/audit\?before=\d+)"', first).group(1)
    second = boss.get(older).get_data(as_text=True)
    assert 0 < second.count("<time") <= 50 and "staff.created" in second


def test_admin_forms_need_a_csrf_token(app, boss):
    target = account_id(boss, "boss@example.com")
    assert boss.post(f"/staff/accounts/{target}/reset-password").status_code == 400
    assert boss.post("/staff/accounts", data={"email": "x@example.com", "role": "admin"}).status_code == 400
    assert csrf_of(boss.get("/staff/accounts"))


def _someone_waits_for_a_lock(app) -> bool:
    with app.app_context():
        waiting = db.session.scalar(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        )
        db.session.rollback()
        return bool(waiting)


@pytest.mark.postgresql_only  # SQLite's writers take turns: the race cannot happen there
def test_two_admins_disabling_each_other_at_once_leave_one_admin(app):
    make_staff(app, "ann@example.com", "admin")
    make_staff(app, "bob@example.com", "admin")
    first_checked, release_first, outcomes = threading.Event(), threading.Event(), {}

    def disable(actor: str, target: str, hold: bool = False) -> None:
        with app.app_context():
            try:
                access.disable_staff(user=access.staff_by_email(target), actor=f"test:{actor}")
                if hold:  # checked and changed, not yet committed
                    first_checked.set()
                    release_first.wait(10)
                db.session.commit()
                outcomes[actor] = "disabled"
            except Conflict:
                db.session.rollback()
                outcomes[actor] = "refused"

    ann = threading.Thread(target=disable, args=("ann", "bob@example.com", True))
    ann.start()
    assert first_checked.wait(10)
    bob = threading.Thread(target=disable, args=("bob", "ann@example.com"))
    bob.start()
    # Bob's check either waits for Ann's transaction, or (unlocked) has already passed.
    eventually(lambda: not bob.is_alive() or _someone_waits_for_a_lock(app), timeout=10, what="Bob's disable to finish or wait")
    release_first.set()
    ann.join(10)
    bob.join(10)
    assert sorted(outcomes.values()) == ["disabled", "refused"]
    with app.app_context():
        assert [u.email for u in access.list_staff() if u.active and u.role == "admin"] == ["ann@example.com"]  # Ann went first
