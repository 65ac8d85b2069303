"""A mail server's permanent refusal (5xx) fails the notice at once, with the
server's reason minus the address; a temporary one (4xx) is retried."""

from __future__ import annotations

import sqlalchemy as sa

from prefs_service.clock import utcnow
from prefs_service.extensions import db
from prefs_service.jobs.dispatch import jobs
from prefs_service.outbox import Job
from tests.helpers import jobs_of, notice, queue_preferences_mail

GONE = "gone.person@example.com"


def test_a_recipient_refused_with_550_fails_the_notice_without_a_retry(app, smtp, worker, capfd):
    smtp.refuse_recipients[GONE] = f"550 5.1.1 <{GONE}>: Recipient address rejected: User unknown"
    notice_id = queue_preferences_mail(app, key="gone", recipient=GONE)
    worker.wait()  # fails if the job failed an attempt and waits to retry

    [job] = jobs_of(app, "notices.deliver")
    assert (job.status, job.attempts, job.last_error) == ("done", 1, None)
    refused = notice(app, notice_id)
    assert refused.status == "failed" and refused.sent_at is None and refused.context == {}
    assert refused.failure_reason == "recipient refused: 550 5.1.1 <recipient>: Recipient address rejected: User unknown"
    assert smtp.messages == []
    err = capfd.readouterr().err
    assert "refused for good" in err and GONE not in err


def test_a_message_refused_at_data_with_554_fails_with_the_address_scrubbed(app, smtp):
    smtp.refuse_data = f"554 5.7.1 Message to {GONE.upper()} refused by policy"
    notice_id = queue_preferences_mail(app, key="policy", recipient=GONE)
    [job] = jobs_of(app, "notices.deliver")
    with app.app_context():
        assert jobs().execute(job.id) == "done"
    refused = notice(app, notice_id)
    assert refused.status == "failed"
    assert refused.failure_reason == "message refused: 554 5.7.1 Message to recipient refused by policy"


def test_a_4xx_refusal_is_retried_and_goes_through_once_accepted(app, smtp):
    smtp.refuse_recipients[GONE] = f"450 4.2.1 <{GONE}>: Mailbox busy, try later"
    notice_id = queue_preferences_mail(app, key="busy", recipient=GONE)
    [job] = jobs_of(app, "notices.deliver")
    with app.app_context():
        assert jobs().execute(job.id) == "queued"
    [job] = jobs_of(app, "notices.deliver")
    assert job.attempts == 1 and job.run_after > job.updated_at  # backed off
    assert "SMTPRecipientsRefused" in job.last_error and "gone" not in job.last_error
    assert "450 4.2.1 <<recipient>>: Mailbox busy" in job.last_error and "example.com" not in job.last_error  # not even masked
    assert notice(app, notice_id).status == "pending" and notice(app, notice_id).failure_reason is None

    del smtp.refuse_recipients[GONE]
    with app.app_context():  # the back-off has passed
        db.session.execute(sa.update(Job).where(Job.id == job.id).values(run_after=utcnow()))
        db.session.commit()
        assert jobs().execute(job.id) == "done"
    assert notice(app, notice_id).status == "sent"
    assert [m["To"] for m in smtp.wait_for(1)] == [GONE]


def test_a_mail_accepted_before_a_failed_goodbye_is_sent_once(app, smtp, worker):
    smtp.quit_reply = "421 4.3.2 Service shutting down"
    notice_id = queue_preferences_mail(app, key="goodbye")
    worker.wait()  # fails if the job failed an attempt and waits to retry
    assert notice(app, notice_id).status == "sent"
    [job] = jobs_of(app, "notices.deliver")
    assert (job.status, job.attempts) == ("done", 1)
    assert len(smtp.messages) == 1
