"""Staff are reminded seven days before a request's due date, alerted three days
before, and alerted once it has passed: each once, through the worker's
periodic job and the real mail server."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from prefs_service import outbox
from prefs_service.access import service as access
from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.rights import deadlines as rights_deadlines
from prefs_service.rights.models import RightsRequest
from tests.helpers import eventually, jobs_settled
from tests.rights.conftest import mails_to


def _staff(app, *addresses):
    with app.app_context():
        for address in addresses:
            access.create_staff(email=address, password="a long enough password", actor="test")
        db.session.commit()


def _correction(client, headers, email="ann@example.com"):
    made = client.post(
        "/v1/requests", json={"type": "correction", "email": email, "changes": {"name": "Anne"}, "verified": True}, headers=headers
    )
    assert made.status_code == 201
    return made.json


def _due_in(app, request_id, delta):
    with app.app_context():
        db.session.execute(sa.update(RightsRequest).where(RightsRequest.id == request_id).values(due_at=utcnow() + delta))
        db.session.commit()


def _run_deadline_duty(app, worker):
    """What the hourly periodic job does, queued now rather than at the next hour."""
    with app.app_context():
        outbox.defer(JobKind.RIGHTS_DEADLINES, {"slot": "test"})
        db.session.commit()
    worker.wait()
    eventually(lambda: jobs_settled(app, JobKind.RIGHTS_DEADLINES, JobKind.NOTICE_DELIVER), timeout=20, what="the duty and its mail")


def test_a_request_three_days_from_its_deadline_mails_each_staff_member_once(app, client, headers, smtp, worker):
    _staff(app, "officer@example.com", "deputy@example.com")
    made = _correction(client, headers)
    _due_in(app, made["id"], timedelta(days=2, hours=20))
    _run_deadline_duty(app, worker)
    _run_deadline_duty(app, worker)  # again: nothing new

    for address in ("officer@example.com", "deputy@example.com"):
        [alert] = mails_to(smtp, address)  # the three-day alert, not also the seven-day reminder
        assert alert["Subject"].startswith(f"Due in 3 days: rights request {made['reference']} is due on ")
        body = alert.get_body(("plain",)).get_content()
        assert f"/staff/requests/{made['id']}" in body and "ann@example.com" not in alert.as_string()
    with app.app_context():
        request = db.session.get(RightsRequest, made["id"])
        assert request.three_day_alert_sent_at is not None and request.reminder_sent_at is not None


def test_the_reminder_the_three_day_alert_and_the_overdue_alert_each_come_once_in_turn(app, client, headers, smtp, worker):
    _staff(app, "officer@example.com")
    made = _correction(client, headers)
    with app.app_context():
        due = db.session.get(RightsRequest, made["id"]).due_at
        sent = [rights_deadlines.alert_deadlines(now=due - timedelta(days=days)) for days in (8, 6, 4, 2.9, 1, -0.1, -2)]
        db.session.commit()
    assert sent == [0, 1, 0, 1, 0, 1, 0]
    worker.wait()
    eventually(lambda: jobs_settled(app, JobKind.NOTICE_DELIVER), timeout=20, what="the mails")
    subjects = sorted(m["Subject"].split(":")[0] for m in mails_to(smtp, "officer@example.com"))
    assert subjects == ["Due in 3 days", "OVERDUE", "Reminder"]


def test_an_extension_starts_the_alerts_over(app, client, headers, smtp):
    _staff(app, "officer@example.com")
    made = _correction(client, headers)
    with app.app_context():
        due = db.session.get(RightsRequest, made["id"]).due_at
        assert rights_deadlines.alert_deadlines(now=due - timedelta(days=2)) == 1
        db.session.commit()
    extended = client.post(f"/v1/requests/{made['id']}/extend", json={"months": 1, "reason": "Complex."}, headers=headers)
    assert extended.status_code == 200
    with app.app_context():
        request = db.session.get(RightsRequest, made["id"])
        assert request.three_day_alert_sent_at is None and request.reminder_sent_at is None
        assert rights_deadlines.alert_deadlines(now=request.due_at - timedelta(days=2)) == 1  # the new date's alert
        db.session.commit()
