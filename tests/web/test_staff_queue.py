"""The queue's order, filters and pages; the dashboard's figures; the
timeline's actors and statuses in words."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from prefs_service import outbox
from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.notices.models import Notice
from prefs_service.rights.models import RightsRequest
from tests.api.test_jobs_and_pages import next_url
from tests.helpers import queue_preferences_mail
from tests.web.staff_support import signed_in


@pytest.fixture
def officer(app):
    return signed_in(app, "officer@example.com")


def take(client, headers, n: int, **fields) -> list[dict]:
    body = {"type": "access", "verified": True, **fields}
    made = [
        client.post("/v1/requests", json={**body, "email": f"q{i}-{utcnow().timestamp()}@example.com"}, headers=headers) for i in range(n)
    ]
    assert all(r.status_code == 201 for r in made), made[0].json
    return [r.json for r in made]


def set_rows(app, changes: dict[int, dict]) -> None:
    with app.app_context():
        for request_id, values in changes.items():
            row = db.session.get(RightsRequest, request_id)
            for key, value in values.items():
                setattr(row, key, value)
        db.session.commit()


def references_in(html: str) -> list[str]:
    return re.findall(r">(PR-[0-9A-Z]{4}-[0-9A-Z]{4})</a>", html)


def test_with_every_status_ticked_open_work_comes_first_by_due_date_then_the_rest_newest_first(app, client, officer, admin):
    late, soon, later, done_old, done_new = take(client, admin, 5)
    unverified = client.post("/v1/requests", json={"type": "erasure", "email": "unverified@example.com"}, headers=admin).json
    unverified_newer = client.post("/v1/requests", json={"type": "access", "email": "unverified2@example.com"}, headers=admin).json
    now = utcnow()
    set_rows(
        app,
        {
            late["id"]: {"status": "processing", "due_at": now - timedelta(days=3)},
            soon["id"]: {"status": "processing", "due_at": now + timedelta(days=2)},
            later["id"]: {"status": "failed", "due_at": now + timedelta(days=20)},
            # finished ones: their due dates no longer matter, their recency does
            done_old["id"]: {"status": "completed", "due_at": now - timedelta(days=30), "created_at": now - timedelta(days=40)},
            done_new["id"]: {"status": "completed", "due_at": now - timedelta(days=60), "created_at": now - timedelta(days=1)},
        },
    )
    every = officer.get("/staff", query_string={"status": ["awaiting_verification", "verified", "awaiting_review", "processing", "completed",
                                                            "rejected", "expired", "failed"]})  # fmt: skip
    expected = [late, soon, later, unverified_newer, unverified, done_new, done_old]
    assert references_in(every.get_data(as_text=True)) == [r["reference"] for r in expected]
    default = officer.get("/staff").get_data(as_text=True)  # open ones only
    assert references_in(default) == [r["reference"] for r in expected[:5]]
    # The API pages through the same order, two at a time.
    through_api, url = [], "/v1/requests?limit=2"
    while url:
        page = client.get(url, headers=admin)
        assert page.status_code == 200, page.json
        through_api += [item["reference"] for item in page.json]
        url = next_url(page)
    assert through_api == [r["reference"] for r in expected]


def test_the_queue_filters_by_type_and_pages_by_fifty(app, client, officer, admin):
    take(client, admin, 53)
    erasure = client.post("/v1/requests", json={"type": "erasure", "email": "gone@example.com"}, headers=admin).json
    first = officer.get("/staff").get_data(as_text=True)
    assert len(references_in(first)) == 50 and "54 requests" in first and "Page 1 of 2" in first
    following = re.search(r'href="([^"]*page=2[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    second = officer.get(following).get_data(as_text=True)
    assert len(references_in(second)) == 4 and 'rel="prev"' in second
    assert set(references_in(first)).isdisjoint(references_in(second))
    only_erasures = officer.get("/staff", query_string={"type": "erasure"}).get_data(as_text=True)
    assert references_in(only_erasures) == [erasure["reference"]]
    nonsense = officer.get("/staff", query_string={"page": "x", "type": "bogus", "status": "nope"})
    assert nonsense.status_code == 200 and len(references_in(nonsense.get_data(as_text=True))) == 50
    beyond = officer.get("/staff", query_string={"page": "9"}).get_data(as_text=True)
    assert references_in(beyond) == [] and "No requests match." in beyond


def test_statuses_read_as_words_and_actors_by_name(app, client, officer, admin, api_key):
    crm = api_key("requests:write", name="CRM sync")
    made = client.post("/v1/requests", json={"type": "correction", "email": "who@example.com", "changes": {"name": "X"}}, headers=crm).json
    with app.app_context():  # the requester confirms through their link
        from prefs_service import tokens
        from prefs_service.rights import service as rights

        rights.confirm(token=tokens.sign("verify", {"r": made["id"]}))
        db.session.commit()
    page = officer.get(f"/staff/requests/{made['id']}").get_data(as_text=True)
    assert "Received by API key “CRM sync”" in page
    assert "Identity confirmed by the requester" in page and "Sent for staff review by the requester" in page
    assert "Waiting for staff review" in page
    assert "awaiting review by requester" not in page and "api_key:" not in page
    queue = officer.get("/staff").get_data(as_text=True)
    assert "<td>Waiting for staff review</td>" in queue and "awaiting_review" not in queue.split("<tbody>")[1]


def test_the_dashboard_counts_what_needs_attention(app, client, officer, admin):
    overdue, soon, fine = take(client, admin, 3)
    now = utcnow()
    set_rows(
        app,
        {
            overdue["id"]: {"status": "processing", "due_at": now - timedelta(days=1)},
            soon["id"]: {"status": "processing", "due_at": now + timedelta(days=6)},
            fine["id"]: {"status": "processing", "due_at": now + timedelta(days=25)},
        },
    )
    notice_id = queue_preferences_mail(app)
    with app.app_context():
        failed = outbox.defer(JobKind.RIGHTS_EXPORT, {"request_id": 0})
        retrying = outbox.defer(JobKind.RIGHTS_EXPORT, {"request_id": -1})
        outbox.defer(JobKind.RIGHTS_EXPORT, {"request_id": -2})  # queued, never tried: not retrying
        failed.status, failed.attempts = "failed", 8
        retrying.attempts = 2
        db.session.execute(sa.update(Notice).where(Notice.id == notice_id).values(created_at=now - timedelta(hours=3, minutes=5)))
        db.session.commit()
    login = signed_in(app, "second@example.com")
    landing = login.get("/staff/dashboard")
    html = landing.get_data(as_text=True)
    figures = {label.strip(): int(n) for n, label in re.findall(r"<strong>(\d+)</strong>\s*([^<]+)", html)}
    assert figures == {
        "open": 3,
        "due within 7 days": 1,
        "overdue": 1,
        "failed jobs": 1,
        "jobs retrying": 1,
        "open delivery escalations": 0,
    }
    assert "Oldest unsent mail waiting <strong>3 hours</strong>" in html


def test_sign_in_lands_on_the_dashboard_and_returns_to_the_page_asked_for(app):
    from tests.web.staff_support import make_staff, sign_in

    make_staff(app, "lander@example.com")
    client = app.test_client()
    assert sign_in(client, "lander@example.com").headers["Location"] == "/staff/dashboard"
    asked = app.test_client()
    to_login = asked.get("/staff/audit").headers["Location"]
    assert "next=/staff/audit" in to_login.replace("%2F", "/")
    from tests.web.staff_support import csrf_of

    page = asked.get(to_login)
    back = asked.post(
        to_login, data={"csrf_token": csrf_of(page), "email": "lander@example.com", "password": "correct horse battery staple"}
    )
    assert back.headers["Location"] == "/staff/audit"
    filtered = app.test_client()  # the filters come back too
    to_login = filtered.get("/staff?status=failed&type=access&page=2").headers["Location"]
    back = filtered.post(
        to_login,
        data={"csrf_token": csrf_of(filtered.get(to_login)), "email": "lander@example.com", "password": "correct horse battery staple"},
    )
    assert back.headers["Location"] == "/staff?status=failed&type=access&page=2"
