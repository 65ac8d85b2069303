"""The staff console: accounts, sign-in with lock-out, the queue and decisions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from prefs_service.cli import main
from prefs_service.extensions import db
from prefs_service.rights.models import RightsRequest

PASSWORD = "correct horse battery staple"


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


@pytest.fixture
def officer(app):
    result = app.test_cli_runner().invoke(main, ["staff", "create", "Officer@Example.com"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    return "officer@example.com"


def sign_in(client, email, password=PASSWORD):
    page = client.get("/staff/login")
    return client.post("/staff/login", data={"csrf_token": csrf_of(page), "email": email, "password": password})


def message_of(page) -> bytes:
    return re.search(rb'role="alert">(.*?)</', page.data, re.S).group(1)


def test_the_cli_refuses_a_short_password(app):
    result = app.test_cli_runner().invoke(main, ["staff", "create", "x@example.com"], input="short\n")
    assert result.exit_code == 1 and "at least 12 characters" in result.output


def test_the_console_needs_a_sign_in_and_sets_safe_cookies(client, officer):
    response = client.get("/staff")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    signed_in = sign_in(client, "OFFICER@example.com")
    assert signed_in.status_code == 303
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/staff").status_code == 200


def test_wrong_passwords_lock_the_account_for_a_while(app, client, officer):
    for _ in range(5):
        failed = sign_in(client, officer, "wrong password!")
        assert failed.status_code == 401 and b"do not match" in failed.data
    locked = sign_in(client, officer)  # even the right password, now
    assert locked.status_code == 401 and b"locked for 15 minutes" in locked.data
    # The lockout answers as an unknown address does: nothing tells who has an account.
    for _ in range(6):
        unknown = sign_in(client, "stranger@example.com", "wrong password!")
    assert unknown.status_code == locked.status_code and message_of(unknown) == message_of(locked)
    with app.app_context():
        from prefs_service.access.models import StaffUser

        user = db.session.query(StaffUser).one()
        user.locked_until = user.locked_until - timedelta(minutes=16)  # time passes
        db.session.commit()
    assert sign_in(client, officer).status_code == 303


def test_an_unknown_address_is_told_the_same_as_a_wrong_password(client, officer):
    response = sign_in(client, "stranger@example.com")
    assert response.status_code == 401 and b"do not match" in response.data


def test_sign_out_ends_the_session_even_for_a_copied_cookie(client, officer, app):
    sign_in(client, officer)
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    assert copy.get("/staff").status_code == 200
    client.post("/staff/logout", data={"csrf_token": csrf_of(client.get("/staff"))})
    assert client.get("/staff").status_code == 302
    assert copy.get("/staff").status_code == 302


def test_the_queue_is_sorted_by_due_date_with_badges_and_filters(app, client, officer, api_key):
    headers = api_key("admin")
    made = [
        client.post("/v1/requests", json={"type": "access", "email": f"p{i}@example.com", "verified": True}, headers=headers).json
        for i in range(3)
    ]
    client.post("/v1/requests", json={"type": "erasure", "email": "unverified@example.com"}, headers=headers)
    with app.app_context():  # one long overdue, one due in three days
        db.session.get(RightsRequest, made[1]["id"]).due_at -= timedelta(days=40)
        db.session.get(RightsRequest, made[2]["id"]).due_at -= timedelta(days=27)
        for item in made:
            db.session.get(RightsRequest, item["id"]).status = "processing"
        db.session.commit()
    sign_in(client, officer)
    page = client.get("/staff").get_data(as_text=True)
    order = [page.index(made[i]["reference"]) for i in (1, 2, 0)]
    assert order == sorted(order)
    assert page.count("badge overdue") == 1 and page.count("badge soon") == 1
    assert "not confirmed yet" in page
    only_unverified = client.get("/staff?status=awaiting_verification").get_data(as_text=True)
    assert made[0]["reference"] not in only_unverified and "not confirmed yet" in only_unverified


def test_staff_approve_a_correction_from_its_page(client, officer, api_key, worker, smtp):
    headers = api_key("admin")
    subject = client.post("/v1/subjects", json={"email": "fix@example.com", "name": "Old Name"}, headers=headers).json
    made = client.post(
        "/v1/requests",
        json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "New Name"}, "verified": True},
        headers=headers,
    ).json
    sign_in(client, officer)
    page = client.get(f"/staff/requests/{made['id']}")
    html = page.get_data(as_text=True)
    assert "Old Name" in html and "New Name" in html and "Approve the correction" in html
    assert client.post(f"/staff/requests/{made['id']}/approve").status_code == 400  # no CSRF token
    done = client.post(f"/staff/requests/{made['id']}/approve", data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    assert b"Approved" in done.data
    worker.wait()
    assert client.get(f"/v1/subjects/{subject['id']}", headers=headers).json["name"] == "New Name"
    timeline = client.get(f"/staff/requests/{made['id']}").get_data(as_text=True)
    # actors by name: the staff member's address, not "staff:1"
    assert "Work started by officer@example.com" in timeline and "Completed by system" in timeline
    assert "staff:" not in timeline


def test_staff_reject_needs_a_reason_and_extend_once(client, officer, api_key):
    headers = api_key("admin")
    made = client.post(
        "/v1/requests", json={"type": "correction", "email": "r@example.com", "changes": {"name": "X"}, "verified": True}, headers=headers
    ).json
    sign_in(client, officer)
    token = csrf_of(client.get(f"/staff/requests/{made['id']}"))
    empty = client.post(f"/staff/requests/{made['id']}/reject", data={"csrf_token": token, "reason": ""}, follow_redirects=True)
    assert b"Give the reason" in empty.data
    extended = client.post(
        f"/staff/requests/{made['id']}/extend", data={"csrf_token": token, "months": "1", "reason": "busy"}, follow_redirects=True
    )
    assert b"Extended" in extended.data and b"Extend the deadline" not in extended.data
    rejected = client.post(f"/staff/requests/{made['id']}/reject", data={"csrf_token": token, "reason": "Not you"}, follow_redirects=True)
    assert b"Rejected" in rejected.data
    assert client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "rejected"


def test_staff_see_open_escalations_and_resolve_them(app, client, officer):
    from prefs_service.clock import utcnow
    from prefs_service.orders import watchdog
    from tests.orders.stripe_events import apply_accepted, checkout_session, event, post

    post(client, event("checkout.session.completed", checkout_session("cs_staff", email="stuck@example.com")))
    apply_accepted(app)
    with app.app_context():
        watchdog.watchdog(now=utcnow() + timedelta(hours=25))
        db.session.commit()
    sign_in(client, officer)
    page = client.get("/staff/escalations")
    html = page.get_data(as_text=True)
    assert "Paid, not set up within 24 hours" in html and "1×" in html
    escalation_id = re.search(r"/staff/escalations/(\d+)/resolve", html).group(1)
    done = client.post(
        f"/staff/escalations/{escalation_id}/resolve", data={"csrf_token": csrf_of(page), "reason": "phoned them"}, follow_redirects=True
    )
    assert b"Resolved." in done.data and b"Nothing is waiting." in done.data
