"""Job administration: which durable jobs fail or wait to retry, and what staff
may do about one. The runner (jobs/dispatch.py) runs jobs; the rules of what
may happen to a job from outside live here, each staff action audited.

- A job *fails for good* when its last attempt fails (or the input breaks a
  rule): staff are mailed once per job.
- A *retrying* job is a queued one that has failed an attempt already.
- Staff may retry a failed job (three more attempts, starting now) and cancel
  a failed or queued one (it never runs again). A running job is left to end
  its attempt. The domain that owns the job's object reacts through hooks
  (a rights request goes back to processing, or is marked failed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from . import audit, hooks, outbox
from .access import service as access
from .clock import utcnow
from .db.backend import affected_rows
from .errors import Conflict, NotFound
from .extensions import db
from .job_kinds import JobKind
from .notices import service as notices
from .notices.models import Notice
from .outbox import CANCELLED, FAILED, QUEUED, RUNNING, Job

log = logging.getLogger(__name__)

RETRYING = "retrying"
STATES = (FAILED, RETRYING)
EXTRA_ATTEMPTS = 3
# The jobs that do a rights request's work; their payload names the request.
REQUEST_KINDS = (JobKind.RIGHTS_EXPORT, JobKind.RIGHTS_ERASE, JobKind.RIGHTS_CORRECT, JobKind.RIGHTS_OPT_OUT)
FAILURE_ALERT = "staff_job_failed"
MAX_PAGE = 200


@dataclass(frozen=True)
class JobSummary:
    """A job as staff see it: no payload beyond the ids it names."""

    id: int
    kind: str
    state: str
    attempts: int
    max_attempts: int
    next_run_at: datetime | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    request_id: int | None
    request_reference: str | None


def state_of(job: Job) -> str:
    return RETRYING if job.status == QUEUED and job.attempts > 0 else job.status


def summary(job: Job) -> JobSummary:
    payload = job.payload if isinstance(job.payload, dict) else {}
    request_id = payload.get("request_id") if job.kind in REQUEST_KINDS else None
    reference = payload.get("reference")
    return JobSummary(
        id=job.id,
        kind=job.kind,
        state=state_of(job),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        next_run_at=job.run_after if job.status == QUEUED else None,
        last_error=job.last_error,
        created_at=job.created_at,
        finished_at=job.finished_at,
        request_id=request_id if isinstance(request_id, int) else None,
        request_reference=reference if isinstance(reference, str) else None,
    )


def _in_state(state: str) -> sa.ColumnElement[bool]:
    if state == RETRYING:
        return sa.and_(Job.status == QUEUED, Job.attempts > 0)
    return Job.status == state


def list_jobs(*, states: tuple[str, ...] = STATES, before: int | None = None, limit: int = 50) -> tuple[list[JobSummary], int | None]:
    """Jobs in `states`, newest first, at most `limit`; and the id to pass as
    `before` for the next page (None on the last). Ids never change, so a page
    never repeats or skips a job that stays in its state."""
    unknown = set(states) - set(STATES)
    if unknown or not states:
        raise ValueError(f"states must be some of {STATES}")
    limit = max(1, min(limit, MAX_PAGE))
    stmt = sa.select(Job).where(sa.or_(*(_in_state(s) for s in states)))
    if before is not None:
        stmt = stmt.where(Job.id < before)
    rows = list(db.session.scalars(stmt.order_by(Job.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return [summary(job) for job in rows], (rows[-1].id if more else None)


def counts() -> dict[str, int]:
    """How many jobs are failed and retrying now."""
    return {state: db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(_in_state(state))) or 0 for state in STATES}


def get(job_id: object) -> Job:
    job = db.session.get(Job, job_id) if str(job_id).isdigit() else None
    if job is None:
        raise NotFound("No job with that id.")
    return job


def latest_for_request(request_id: int) -> Job | None:
    """The newest job doing a rights request's work (their payload names it)."""
    return db.session.scalars(
        sa.select(Job)
        .where(Job.kind.in_([k.value for k in REQUEST_KINDS]), Job.payload["request_id"].as_integer() == request_id)
        .order_by(Job.id.desc())
        .limit(1)
    ).first()


def retry(*, job_id: object, actor: str) -> Job:
    """Put a failed job back in the queue with three more attempts, starting now."""
    job = get(job_id)
    if job.status != FAILED:
        raise Conflict(f"Only a failed job can be retried; this one is {state_of(job)}.")
    hooks.emit(hooks.JOB_RETRIED, job=job, actor=actor)  # the owner may refuse (a request rejected since)
    now = utcnow()
    updated = affected_rows(
        sa.update(Job)
        .where(Job.id == job.id, Job.status == FAILED)
        .values(
            status=QUEUED,
            run_after=now,
            dispatched_at=now,
            max_attempts=Job.attempts + EXTRA_ATTEMPTS,
            finished_at=None,
            updated_at=now,
        ),
        synchronize_session=False,
    )
    if not updated:
        raise Conflict("Someone else retried or cancelled this job just now.")
    db.session.info.setdefault(outbox.PENDING_KEY, []).append(job.id)  # sent to the broker after commit
    audit.record("job.retried", actor=actor, target_type="job", target_id=job.id, details={"kind": job.kind, "attempts": job.attempts})
    db.session.refresh(job)
    return job


def cancel(*, job_id: object, actor: str) -> Job:
    """Stop a failed or queued job for good. A running attempt is not
    interrupted: cancel it once the attempt has ended."""
    job = get(job_id)
    if job.status not in (FAILED, QUEUED):
        if job.status == RUNNING:
            raise Conflict("This job is running now; cancel it once this attempt has ended.")
        raise Conflict(f"Only a failed or queued job can be cancelled; this one is {job.status}.")
    previous = state_of(job)
    now = utcnow()
    updated = affected_rows(
        sa.update(Job)
        .where(Job.id == job.id, Job.status.in_((FAILED, QUEUED)))
        .values(status=CANCELLED, finished_at=now, updated_at=now, lease_expires_at=None, claim_token=None),
        synchronize_session=False,
    )
    if not updated:
        raise Conflict("This job started running just now; cancel it once this attempt has ended.")
    db.session.refresh(job)
    hooks.emit(hooks.JOB_CANCELLED, job=job, actor=actor)  # e.g. its rights request is marked failed
    audit.record("job.cancelled", actor=actor, target_type="job", target_id=job.id, details={"kind": job.kind, "from": previous})
    return job


def tell_staff_of_failure(*, job_id: int) -> int:
    """The job failed for good: mail each active staff account once (however
    often this runs for the job). Failing mail deliveries are told once for all
    the mail queued in the same hour: an outage must not become one alert per
    undelivered mail.
    Returns how many mails were queued."""
    job = db.session.get(Job, job_id)
    if job is None or _is_staff_mail_delivery(job):
        return 0  # a failing alert about failing staff mail would never end
    item = summary(job)
    mail_hour = f"{job.created_at:%Y-%m-%d %H}:00 UTC" if job.kind == JobKind.NOTICE_DELIVER else None
    context: dict[str, Any] = {
        "job_id": job.id,
        "kind": job.kind,
        "attempts": job.attempts,
        "reference": item.request_reference,
        "error": job.last_error or "(no error recorded)",
        "url": f"{current_app.config['PREFS'].base_url}/staff/jobs",
        "mail_hour": mail_hour,
    }
    staff = access.active_staff_emails()
    for address in staff:
        notices.queue(
            kind=FAILURE_ALERT,
            recipient=address,
            template=FAILURE_ALERT,
            context=context,
            idempotency_key=f"{FAILURE_ALERT}:{f'mail:{mail_hour}' if mail_hour else job.id}:{address}",
        )
    if not staff:
        log.warning("job %s (%s) failed for good and no active staff account can be told", job.id, job.kind)
    return len(staff)


STAFF_MAIL_KINDS = ("staff_", "escalation")  # notice kinds that go to staff, by prefix


def _is_staff_mail_delivery(job: Job) -> bool:
    if job.kind != JobKind.NOTICE_DELIVER:
        return False
    notice_id = job.payload.get("notice_id") if isinstance(job.payload, dict) else None
    kind = db.session.scalar(sa.select(Notice.kind).where(Notice.id == notice_id))
    return kind is not None and kind.startswith(STAFF_MAIL_KINDS)
