"""The staff jobs page: failed and retrying jobs, paged, with Retry and Cancel."""

from __future__ import annotations

import re

import sqlalchemy as sa

from prefs_service.audit import AuditEvent
from prefs_service.extensions import db
from prefs_service.notices.models import Notice
from tests.failing_jobs import CLOSED_PORT, csrf_of, job_row, mail_job_that_fails, press, staff_signed_in


def _listed_ids(page) -> list[int]:
    return [int(i) for i in re.findall(rb"<td>(\d+): notices\.deliver", page.data)]


def test_the_jobs_page_needs_a_sign_in(client):
    response = client.get("/staff/jobs")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert client.post("/staff/jobs/1/retry").status_code == 400  # no CSRF token: refused before anything else


def test_the_page_lists_failed_and_retrying_jobs_with_their_attempts_and_errors(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    client = app.test_client()
    staff_signed_in(app, client, role="admin")
    failed = mail_job_that_fails(app, key="page-failed", recipient="hidden.person@example.com")
    retrying = mail_job_that_fails(app, key="page-retrying", for_good=False)

    page = client.get("/staff/jobs")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = page.data.decode()
    assert _listed_ids(page) == [retrying, failed]  # newest first
    assert "1 of 1" in text and "1 of 8" in text
    assert "ConnectionRefusedError: [Errno 111] Connection refused; mail server 127.0.0.x:1" in text
    assert "hidden.person" not in text
    assert f'action="/staff/jobs/{failed}/retry"' in text and f'action="/staff/jobs/{retrying}/retry"' not in text
    assert f'action="/staff/jobs/{retrying}/cancel"' in text
    assert _listed_ids(client.get("/staff/jobs?show=retrying")) == [retrying]
    assert _listed_ids(client.get("/staff/jobs?show=failed")) == [failed]
    assert "Failed (1)" in text and "Retrying (1)" in text and "All (2)" in text
    assert '<a href="/staff/jobs">Jobs</a>' in text  # in the staff navigation


def test_a_reviewer_may_retry_but_only_an_admin_may_cancel(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    client = app.test_client()
    staff_signed_in(app, client, "reviewer@example.com")
    retrying = mail_job_that_fails(app, key="keep-me", for_good=False)
    page = client.get("/staff/jobs").data.decode()
    assert f"Cancel job {retrying}" not in page and "an admin may cancel" in page
    refused = client.post(f"/staff/jobs/{retrying}/cancel", data={"csrf_token": csrf_of(client.get("/staff/jobs"))})
    assert refused.status_code == 403 and job_row(app, retrying).status == "queued"


def test_the_page_is_paged_newest_first_without_gaps_or_repeats(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    client = app.test_client()
    made = [mail_job_that_fails(app, key=f"many-{i}") for i in range(27)]
    staff_signed_in(app, client)  # after the failures: no alert mails among the jobs
    first = client.get("/staff/jobs?show=failed")
    assert _listed_ids(first) == made[::-1][:25]
    older = re.search(rb'href="(/staff/jobs\?show=failed&amp;before=\d+)">Older jobs', first.data).group(1).decode().replace("&amp;", "&")
    second = client.get(older)
    assert _listed_ids(second) == made[::-1][25:]
    assert b"Older jobs" not in second.data and b">Newest</a>" in second.data


def test_bad_list_parameters_lead_back_to_the_whole_list(make_app, smtp):
    app = make_app()
    client = app.test_client()
    staff_signed_in(app, client)
    for query in ("show=stuck", "before=abc", "before=-1", "before=" + "9" * 30):
        response = client.get(f"/staff/jobs?{query}")
        assert response.status_code == 303 and response.headers["Location"] == "/staff/jobs", query
    assert "That list does not exist" in client.get("/staff/jobs").data.decode()


def test_cancel_on_the_page_stops_a_retrying_mail_and_marks_it_not_sent(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    client = app.test_client()
    staff_signed_in(app, client, role="admin")
    retrying = mail_job_that_fails(app, key="cancel-me", for_good=False)

    cancelled = press(client, "/staff/jobs?show=retrying", f"/staff/jobs/{retrying}/cancel")
    assert cancelled.status_code == 303 and cancelled.headers["Location"] == "/staff/jobs?show=retrying"
    after = client.get(cancelled.headers["Location"]).data.decode()
    assert f"Job {retrying} is cancelled; it will not run again." in after
    assert retrying not in _listed_ids(client.get("/staff/jobs"))
    assert job_row(app, retrying).status == "cancelled"
    with app.app_context():
        notice = db.session.scalar(sa.select(Notice).where(Notice.idempotency_key == "cancel-me"))
        assert (notice.status, notice.failure_reason) == ("failed", "not sent: its delivery was cancelled by staff:1")
        assert db.session.execute(sa.select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.target_type == "job")).all() == [
            ("job.cancelled", "staff:1")
        ]


def test_retry_and_cancel_that_no_longer_apply_say_why(make_app, smtp):
    app = make_app(mail_url=CLOSED_PORT)
    client = app.test_client()
    staff_signed_in(app, client, role="admin")
    retrying = mail_job_that_fails(app, key="not-failed", for_good=False)
    token = csrf_of(client.get("/staff/jobs"))

    refused = client.post(f"/staff/jobs/{retrying}/retry", data={"csrf_token": token, "back": "/staff/jobs"}, follow_redirects=True)
    assert "Only a failed job can be retried; this one is retrying." in refused.data.decode()
    client.post(f"/staff/jobs/{retrying}/cancel", data={"csrf_token": token})
    again = client.post(f"/staff/jobs/{retrying}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert "Only a failed or queued job can be cancelled; this one is cancelled." in again.data.decode()
    missing = client.post("/staff/jobs/99999/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "No job with that id." in missing.data.decode()
    elsewhere = client.post(f"/staff/jobs/{retrying}/cancel", data={"csrf_token": token, "back": "https://evil.example/staff/jobs"})
    assert elsewhere.headers["Location"] == "/staff/jobs"
    forged = client.post(f"/staff/jobs/{retrying}/retry", data={})
    assert forged.status_code == 400 and b"This form has expired" in forged.data


def test_the_request_page_shows_its_job_only_while_it_matters(app, client, admin):
    staff_signed_in(app, client)
    subject = client.post("/v1/subjects", json={"email": "shown@example.com"}, headers=admin).json
    made = client.post(
        "/v1/requests", json={"type": "correction", "subject_id": subject["id"], "changes": {"name": "B"}, "verified": True}, headers=admin
    ).json
    assert "Its job" not in client.get(f"/staff/requests/{made['id']}").data.decode()  # awaiting review: no job yet
    client.post(f"/v1/requests/{made['id']}/approve", headers=admin)
    page = client.get(f"/staff/requests/{made['id']}").data.decode()
    assert "Its job" in page and "requests.correct), queued" in page and "0 of 8" in page and "Last error" not in page
