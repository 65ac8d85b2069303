"""A job that keeps failing is visible and actionable: the request page shows
its attempts, next run and last error (naming the folder, never the person),
the log names the folder too, staff are mailed once when it gives up, and
Retry works once the cause is fixed; through the worker, the pages, the API
and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from prefs_service import job_queue
from prefs_service.audit import AuditEvent
from prefs_service.cli import main
from prefs_service.extensions import db
from prefs_service.job_kinds import JobKind
from prefs_service.jobs.dispatch import jobs
from prefs_service.notices.models import Notice
from prefs_service.outbox import Job
from tests.failing_jobs import CLOSED_PORT, back_off_passes, job_row, mail_job_that_fails, press, staff_signed_in
from tests.helpers import eventually, jobs_of, jobs_settled

REQUESTER = "ann.private@example.com"


def _job_failed_mails(smtp):
    return [m for m in smtp.messages if m["Subject"].startswith("Job failed")]


def _attempt_over(app, job_id: int, attempts: int):
    def over():
        job = job_row(app, job_id)
        return job if job.attempts == attempts and job.status in ("queued", "failed") else None

    return eventually(over, timeout=20, what=f"attempt {attempts} of job {job_id} to end")


def test_an_export_to_an_unwritable_folder_shows_why_mails_staff_once_and_is_retried_once_fixed(make_app, smtp, tmp_path, capfd):
    blocked = tmp_path / "exports"
    blocked.write_text("a file where the export folder should be")  # root may write anywhere; a file in the way stops even root
    app = make_app(export_dir=blocked)
    client = app.test_client()
    officer = staff_signed_in(app, client)
    with app.app_context():
        from prefs_service.access import service as access

        _, key = access.create_key(name="crm", scopes=["admin"], actor="test")
        db.session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    subject = client.post("/v1/subjects", json={"email": REQUESTER, "name": "Ann Private"}, headers=headers).json
    made = client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=headers).json
    app.extensions["prefs.jobs"].start(threads=2)
    [export] = jobs_of(app, JobKind.RIGHTS_EXPORT)

    first = _attempt_over(app, export.id, 1)
    assert first.status == "queued" and first.max_attempts == 8
    assert first.last_error.startswith(f"FileExistsError: [Errno 17] File exists: '{blocked}'")
    page = client.get(f"/staff/requests/{made['id']}").data.decode()
    assert "In progress" in page and "1 of 8" in page and "Next run" in page
    assert f"File exists: &#39;{blocked}&#39;" in page
    log = capfd.readouterr().err
    assert f"attempt 1 of 8 failed: FileExistsError: [Errno 17] File exists: '{blocked}'" in log
    assert REQUESTER not in log and "Ann" not in first.last_error

    for attempt in range(2, 9):
        back_off_passes(app, export.id)
        _attempt_over(app, export.id, attempt)
    failed = job_row(app, export.id)
    assert failed.status == "failed" and failed.attempts == 8
    assert client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "failed"
    page = client.get(f"/staff/requests/{made['id']}").data.decode()
    assert "8 of 8" in page and "File exists" in page and "Next run" not in page

    # Staff are mailed once: every mail job has ended, so no second one can come.
    eventually(lambda: _job_failed_mails(smtp), timeout=20, what="the job-failed mail")
    eventually(lambda: jobs_settled(app, JobKind.NOTICE_DELIVER), timeout=20, what="every mail job to end")
    [alert] = _job_failed_mails(smtp)
    assert alert["To"] == officer
    assert alert["Subject"] == f"Job failed: requests.export for rights request {made['reference']} (job {export.id})"
    body = alert.get_body(("plain",)).get_content()
    assert f"File exists: '{blocked}'" in body and "after 8 attempts" in body and "/staff/jobs" in body
    assert REQUESTER not in alert.as_string() and "Ann" not in body

    blocked.unlink()  # the operator fixes the folder
    listed = client.get("/staff/jobs?show=failed").data.decode()
    assert f"request {made['reference']}" in listed and "8 of 8" in listed
    retried = press(client, "/staff/jobs?show=failed", f"/staff/jobs/{export.id}/retry")
    assert retried.status_code == 303 and retried.headers["Location"] == "/staff/jobs?show=failed"
    assert f"Job {export.id} is queued again" in client.get(retried.headers["Location"]).data.decode()
    eventually(
        lambda: client.get(f"/v1/requests/{made['id']}", headers=headers).json["status"] == "completed", timeout=30, what="the export"
    )
    assert (blocked / f"{made['reference']}.zip").exists()
    eventually(lambda: [m for m in smtp.messages if "ready to download" in m["Subject"]], timeout=20, what="the download mail")
    done = job_row(app, export.id)
    assert (done.status, done.attempts, done.max_attempts) == ("done", 9, 11)
    timeline = [(e["action"], e["actor"]) for e in client.get(f"/v1/requests/{made['id']}", headers=headers).json["timeline"]]
    assert timeline[-3:] == [("request.failed", "system"), ("request.processing", "staff:1"), ("request.completed", "system")]
    eventually(lambda: jobs_settled(app, JobKind.NOTICE_DELIVER), timeout=20, what="every mail job to end")
    assert len(_job_failed_mails(smtp)) == 1


def _staff_alerts(app) -> list[str]:
    with app.app_context():
        recipients = db.session.scalars(sa.select(Notice.recipient).where(Notice.kind == "staff_job_failed").order_by(Notice.id)).all()
        db.session.rollback()
    return list(recipients)


def test_a_job_failing_for_good_mails_each_staff_member_once_however_often_it_fails(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    staff_signed_in(app, app.test_client(), "first@example.com")
    staff_signed_in(app, app.test_client(), "second@example.com")
    job_id = mail_job_that_fails(app, key="doomed")
    assert _staff_alerts(app) == ["first@example.com", "second@example.com"]

    with app.app_context():
        assert job_queue.retry(job_id=job_id, actor="test").max_attempts == 4
        db.session.commit()
    outcomes = []
    for _ in range(3):  # its three more attempts fail too
        back_off_passes(app, job_id)
        with app.app_context():
            outcomes.append(jobs().execute(job_id))
    assert outcomes == ["queued", "queued", "failed"]
    assert _staff_alerts(app) == ["first@example.com", "second@example.com"]  # no second round

    # The alerts cannot be delivered either (the port is closed); an alert that
    # fails for good mails no alert about itself.
    alert_jobs = [j.id for j in jobs_of(app, "notices.deliver") if j.id != job_id]
    assert len(alert_jobs) == 2
    for alert_job in alert_jobs:
        with app.app_context():
            db.session.execute(sa.update(Job).where(Job.id == alert_job).values(max_attempts=1))
            db.session.commit()
            assert jobs().execute(alert_job) == "failed"
    assert len(_staff_alerts(app)) == 2


def test_a_mail_outage_is_told_once_per_hour_of_mail_not_once_per_mail(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    staff_signed_in(app, app.test_client(), "first@example.com")
    same_hour = [mail_job_that_fails(app, key=f"outage-{n}", for_good=False, recipient=f"reader{n}@example.com") for n in range(3)]
    next_hour = mail_job_that_fails(app, key="outage-later", for_good=False)
    with app.app_context():  # each has failed once; its next attempt is its last
        db.session.execute(sa.update(Job).where(Job.id.in_(same_hour)).values(created_at=datetime(2026, 12, 6, 9, 5, tzinfo=UTC)))
        db.session.execute(sa.update(Job).where(Job.id == next_hour).values(created_at=datetime(2026, 12, 6, 10, 1, tzinfo=UTC)))
        db.session.execute(sa.update(Job).where(Job.id.in_([*same_hour, next_hour])).values(max_attempts=2))
        db.session.commit()
    for job_id in same_hour:
        back_off_passes(app, job_id)
        with app.app_context():
            assert jobs().execute(job_id) == "failed"
    assert _staff_alerts(app) == ["first@example.com"]  # three mails failed for good: one alert
    back_off_passes(app, next_hour)
    with app.app_context():
        assert jobs().execute(next_hour) == "failed"
        contexts = db.session.scalars(sa.select(Notice.context).where(Notice.kind == "staff_job_failed").order_by(Notice.id)).all()
        db.session.rollback()
    assert _staff_alerts(app) == ["first@example.com", "first@example.com"]  # mail of the next hour: one more
    assert [c["mail_hour"] for c in contexts] == ["2026-12-06 09:00 UTC", "2026-12-06 10:00 UTC"]


def test_a_mail_job_error_names_the_mail_server_and_never_the_recipient(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    job_id = mail_job_that_fails(app, key="where", for_good=False, recipient="private.person@example.com")
    error = job_row(app, job_id).last_error
    assert error.startswith("ConnectionRefusedError: [Errno 111] Connection refused; mail server 127.0.0.x:1")
    assert "private" not in error and "127.0.0.1" not in error


def test_cancelling_a_rights_job_leaves_its_request_failed_with_the_reason_and_retry_starts_afresh(app, client, admin, smtp):
    subject = client.post("/v1/subjects", json={"email": "cancel.me@example.com"}, headers=admin).json
    made = client.post(
        "/v1/requests",
        json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "New"}, "verified": True},
        headers=admin,
    ).json
    client.post(f"/v1/requests/{made['id']}/approve", headers=admin)
    [job] = jobs_of(app, JobKind.RIGHTS_CORRECT)
    cancelled = client.post(f"/v1/jobs/{job.id}/cancel", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    item = client.get(f"/v1/requests/{made['id']}", headers=admin).json
    assert item["status"] == "failed"
    [last] = item["timeline"][-1:]
    assert last["action"] == "request.failed" and last["details"]["reason"] == "its job was cancelled"
    assert client.post(f"/v1/jobs/{job.id}/cancel", headers=admin).status_code == 409  # once is enough
    assert client.post(f"/v1/jobs/{job.id}/retry", headers=admin).status_code == 409  # cancelled is final

    retried = client.post(f"/v1/requests/{made['id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json["status"] == "processing"
    assert [j.status for j in jobs_of(app, JobKind.RIGHTS_CORRECT)] == [
        "cancelled",
        "queued",
    ]  # a new job; the cancelled one stays cancelled
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.target_type == "job")).all()
        assert actions == ["job.cancelled"]


def test_a_retry_of_a_job_whose_request_was_rejected_since_is_refused(make_app, app, client, admin, tmp_path):
    blocked = tmp_path / "exports"
    blocked.write_text("in the way")
    broken = make_app(export_dir=blocked)
    subject = client.post("/v1/subjects", json={"email": "rejected@example.com"}, headers=admin).json
    made = client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=admin).json
    [job] = jobs_of(app, JobKind.RIGHTS_EXPORT)
    with broken.app_context():
        db.session.execute(sa.update(Job).where(Job.id == job.id).values(max_attempts=1))
        db.session.commit()
        assert jobs().execute(job.id) == "failed"
    client.post(f"/v1/requests/{made['id']}/reject", json={"reason": "We hold nothing more."}, headers=admin)
    refused = client.post(f"/v1/jobs/{job.id}/retry", headers=admin)
    assert refused.status_code == 409 and "is rejected" in refused.json["detail"]
    assert job_row(app, job.id).status == "failed"  # nothing changed
    assert client.get(f"/v1/requests/{made['id']}", headers=admin).json["status"] == "rejected"


def test_the_cli_lists_retries_and_cancels_jobs(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    failed = mail_job_that_fails(app, key="cli-failed")
    retrying = mail_job_that_fails(app, key="cli-retrying", for_good=False)
    cli = app.test_cli_runner()

    listed = cli.invoke(main, ["jobs", "list"])
    assert listed.exit_code == 0
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(int(r[0]), r[1], r[2], r[3]) for r in rows] == [
        (retrying, "retrying", "notices.deliver", "1/8"),
        (failed, "failed", "notices.deliver", "1/1"),
    ]
    assert all("ConnectionRefusedError" in r[6] and "reader" not in r[6] for r in rows)
    only_failed = cli.invoke(main, ["jobs", "list", "--status", "failed"])
    assert [int(line.split("\t")[0]) for line in only_failed.stdout.splitlines()] == [failed]
    assert cli.invoke(main, ["jobs", "list", "--status", "stuck"]).exit_code == 2

    refused = cli.invoke(main, ["jobs", "retry", str(retrying)])
    assert refused.exit_code == 1 and "Only a failed job can be retried; this one is retrying." in refused.stderr
    retried = cli.invoke(main, ["jobs", "retry", str(failed)])
    assert retried.exit_code == 0 and f"Job {failed} (notices.deliver) is queued again: 1 of 4 attempts used." in retried.stdout
    cancelled = cli.invoke(main, ["jobs", "cancel", str(retrying)])
    assert cancelled.exit_code == 0 and job_row(app, retrying).status == "cancelled"
    assert cli.invoke(main, ["jobs", "cancel", "99999"]).exit_code == 1
    with app.app_context():
        notice = db.session.scalar(sa.select(Notice).where(Notice.idempotency_key == "cli-retrying"))
        assert notice.status == "failed" and notice.failure_reason == "not sent: its delivery was cancelled by cli"
        assert notice.context == {}
        audit = db.session.execute(
            sa.select(AuditEvent.action, AuditEvent.actor, AuditEvent.details).where(AuditEvent.target_type == "job")
        ).all()
        assert [(a, actor) for a, actor, _ in audit] == [("job.retried", "cli"), ("job.cancelled", "cli")]
        assert json.loads(json.dumps(audit[1][2])) == {"kind": "notices.deliver", "from": "retrying"}


def test_jobs_done_or_cancelled_a_month_ago_are_purged_and_failed_ones_stay_for_staff(app):
    from datetime import timedelta

    from prefs_service import outbox
    from prefs_service.clock import utcnow

    with app.app_context():
        made = {status: outbox.defer(JobKind.ORDER_WATCHDOG, {"slot": status}).id for status in ("done", "cancelled", "failed")}
        recent = outbox.defer(JobKind.ORDER_WATCHDOG, {"slot": "recent"}).id
        purge = outbox.defer(JobKind.JOBS_PURGE_FINISHED, {"slot": 1}).id
        long_ago = utcnow() - timedelta(days=31)
        for status, job_id in made.items():
            db.session.execute(sa.update(Job).where(Job.id == job_id).values(status=status, finished_at=long_ago))
        db.session.execute(sa.update(Job).where(Job.id == recent).values(status="cancelled", finished_at=utcnow()))
        db.session.commit()
        assert jobs().execute(purge) == "done"
    left = {job.id for job in jobs_of(app, JobKind.ORDER_WATCHDOG)}
    assert left == {made["failed"], recent}


def test_an_export_that_failed_for_good_is_retried_through_the_api_once_the_folder_is_fixed(make_app, smtp, tmp_path):
    blocked = tmp_path / "exports"
    blocked.write_text("in the way")
    app = make_app(export_dir=blocked)
    client = app.test_client()
    with app.app_context():
        from prefs_service.access import service as access

        _, key = access.create_key(name="ops", scopes=["admin"], actor="test")
        db.session.commit()
    admin = {"Authorization": f"Bearer {key}"}
    subject = client.post("/v1/subjects", json={"email": REQUESTER}, headers=admin).json
    made = client.post("/v1/requests", json={"type": "access", "subject_id": subject["id"], "verified": True}, headers=admin).json
    [export] = jobs_of(app, JobKind.RIGHTS_EXPORT)
    with app.app_context():  # two attempts allowed, both through the worker
        db.session.execute(sa.update(Job).where(Job.id == export.id).values(max_attempts=2))
        db.session.commit()
    app.extensions["prefs.jobs"].start(threads=2)
    _attempt_over(app, export.id, 1)
    back_off_passes(app, export.id)
    assert _attempt_over(app, export.id, 2).status == "failed"
    [listed] = client.get("/v1/jobs?status=failed", headers=admin).json
    assert (listed["id"], listed["request_id"], listed["request_reference"]) == (export.id, made["id"], made["reference"])
    assert listed["last_error"].startswith(f"FileExistsError: [Errno 17] File exists: '{blocked}'")

    blocked.unlink()
    retried = client.post(f"/v1/jobs/{export.id}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json["max_attempts"] == 5
    eventually(lambda: client.get(f"/v1/requests/{made['id']}", headers=admin).json["status"] == "completed", timeout=30, what="the export")
    assert job_row(app, export.id).status == "done"
    # The export is off the list (the periodic purge of exports, which met the same file in the way, may still be on it).
    assert export.id not in [j["id"] for j in client.get("/v1/jobs", headers=admin).json]
