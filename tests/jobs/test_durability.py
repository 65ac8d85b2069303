"""Durable jobs: a lost broker, a duplicated message, a failing job and a
worker killed with -9 all end with exactly one effect."""

from __future__ import annotations

import signal
import threading

import pytest

from prefs_service import job_queue
from prefs_service.errors import Conflict
from prefs_service.job_kinds import JobKind
from prefs_service.jobs.dispatch import jobs
from tests.conftest import InProcessWorker
from tests.helpers import eventually, jobs_of, jobs_settled, notice, queue_preferences_mail, worker_process


def test_a_job_queued_while_the_broker_is_down_runs_once_it_is_back(make_app, smtp, caplog):
    broken = make_app(broker_url="redis://127.0.0.1:1/0")
    notice_id = queue_preferences_mail(broken, key="outage")
    [job] = jobs_of(broken, JobKind.NOTICE_DELIVER)
    assert job.status == "queued"
    assert "left for the sweeper" in caplog.text

    recovered = make_app()
    recovered.extensions["prefs.jobs"].start(threads=1)  # its sweeper finds the row
    InProcessWorker(recovered).wait()
    assert len(smtp.wait_for(1)) == 1
    assert notice(recovered, notice_id).status == "sent"
    [job] = jobs_of(recovered, JobKind.NOTICE_DELIVER)
    assert job.status == "done" and job.attempts == 1


def test_a_duplicated_message_has_one_effect(app, smtp, worker):
    queue_preferences_mail(app, key="dup")
    [job] = jobs_of(app, JobKind.NOTICE_DELIVER)
    with app.app_context():
        jobs().send([job.id, job.id, job.id])
    worker.wait()
    worker.drain()  # the two duplicate messages were handled too: each claim refused
    assert len(smtp.messages) == 1
    [job] = jobs_of(app, JobKind.NOTICE_DELIVER)
    assert job.status == "done" and job.attempts == 1


def test_a_failing_job_is_retried_later_with_a_safe_error(make_app, smtp):
    closed_port = "smtp://127.0.0.1:1"
    app = make_app(mail_url=closed_port)
    queue_preferences_mail(app, key="retry", recipient="private.person@example.com")
    [job] = jobs_of(app, JobKind.NOTICE_DELIVER)
    with app.app_context():
        assert jobs().execute(job.id) == "queued"
    [job] = jobs_of(app, JobKind.NOTICE_DELIVER)
    assert job.attempts == 1 and job.status == "queued"
    assert job.run_after > job.updated_at  # backed off
    assert "ConnectionRefusedError" in job.last_error and "example.com" not in job.last_error
    with app.app_context():
        assert jobs().execute(job.id) is None  # not due yet: nothing happens


def test_a_job_that_keeps_failing_ends_failed_and_staff_can_retry_it(make_app, app, smtp):
    broken = make_app(mail_url="smtp://127.0.0.1:1")
    queue_preferences_mail(broken, key="give-up")
    [job] = jobs_of(broken, JobKind.NOTICE_DELIVER)
    from prefs_service.extensions import db
    from prefs_service.outbox import Job

    with broken.app_context():
        db.session.get(Job, job.id).max_attempts = 1
        db.session.commit()
        assert jobs().execute(job.id) == "failed"
    with app.app_context():
        job_queue.retry(job_id=job.id, actor="test")
        db.session.commit()
        with pytest.raises(Conflict):  # no longer failed
            job_queue.retry(job_id=job.id, actor="test")
        db.session.rollback()
        assert jobs().execute(job.id) == "done"
    assert len(smtp.wait_for(1)) == 1


def test_a_worker_killed_mid_job_leaves_it_to_another_and_one_mail_goes_out(app, smtp, base_settings, tmp_path, worker_processes):
    smtp.hold = threading.Event()  # the first delivery stalls inside DATA
    notice_id = queue_preferences_mail(app, key="crash")

    first = worker_process(base_settings, tmp_path)
    worker_processes.append(first)
    assert smtp.holding.wait(30), "the first worker never started delivering"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    smtp.hold.set()  # the stalled session ends without a 250: nothing was delivered

    second = worker_process(base_settings, tmp_path)
    worker_processes.append(second)
    assert len(smtp.wait_for(1, timeout=30)) == 1
    eventually(lambda: jobs_settled(app, JobKind.NOTICE_DELIVER), timeout=30, what="the delivery job to finish")
    assert len(smtp.messages) == 1  # nothing is left that could send it again
    assert notice(app, notice_id).status == "sent"
    [job] = jobs_of(app, JobKind.NOTICE_DELIVER)
    assert job.status == "done" and job.attempts == 2

    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
