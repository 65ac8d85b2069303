"""Helpers for tests of failing jobs: real jobs that really fail, and the
passing of their back-off (the way tests/jobs/ let time pass: the row's
run_after is moved to now)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.jobs.dispatch import jobs
from prefs_service.outbox import Job
from tests.helpers import jobs_of, queue_preferences_mail

CLOSED_PORT = "smtp://127.0.0.1:1"
PASSWORD = "correct horse battery staple"


def back_off_passes(app, job_id: int) -> None:
    """The job's wait before its next attempt is over, and its message is lost:
    the sweeper sends it again (as it would after a real wait)."""
    with app.app_context():
        db.session.execute(sa.update(Job).where(Job.id == job_id, Job.status == "queued").values(run_after=utcnow(), dispatched_at=None))
        db.session.commit()


def job_row(app, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.close()
        return job


def mail_job_that_fails(app, *, key: str, for_good: bool = True, recipient: str = "reader@example.com") -> int:
    """A real delivery job run once against a closed mail port: failed for good
    (one attempt allowed), or retrying (it will try again). `app` must have
    mail_url=CLOSED_PORT."""
    queue_preferences_mail(app, key=key, recipient=recipient)
    job = next(j for j in jobs_of(app, "notices.deliver") if j.status == "queued" and j.attempts == 0)
    with app.app_context():
        if for_good:
            db.session.get(Job, job.id).max_attempts = 1
            db.session.commit()
        assert jobs().execute(job.id) == ("failed" if for_good else "queued")
    return job.id


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def staff_signed_in(app, client, email: str = "officer@example.com", role: str = "reviewer"):
    """A staff account made with `prefs staff create`, signed in on `client`."""
    from prefs_service.cli import main

    result = app.test_cli_runner().invoke(main, ["staff", "create", email, "--role", role], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    page = client.get("/staff/login")
    signed_in = client.post("/staff/login", data={"csrf_token": csrf_of(page), "email": email, "password": PASSWORD})
    assert signed_in.status_code == 303
    return email


def press(client, page_path: str, action_path: str):
    """Press the button of the form posting to `action_path` on the page at `page_path`."""
    page = client.get(page_path)
    assert page.status_code == 200
    form = re.search(rb'<form method="post" action="' + re.escape(action_path.encode()) + rb'">(.*?)</form>', page.data, re.S)
    assert form, f"no form posting to {action_path} on {page_path}"
    fields = dict(re.findall(rb'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1)))
    return client.post(action_path, data={k.decode(): v.decode().replace("&amp;", "&") for k, v in fields.items()})
