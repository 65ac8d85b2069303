"""Housekeeping of the job table itself."""

from datetime import timedelta

import sqlalchemy as sa

from ..clock import utcnow
from ..extensions import db
from ..job_kinds import JobKind
from ..outbox import CANCELLED, DONE, Job
from .dispatch import every, handler

KEEP_FINISHED = timedelta(days=30)

every(timedelta(hours=1), name="purge-finished-jobs", kind=JobKind.JOBS_PURGE_FINISHED)


@handler(JobKind.JOBS_PURGE_FINISHED)
def purge_finished(payload: dict) -> None:
    """Drop jobs done or cancelled more than 30 days ago; failed ones stay for staff."""
    db.session.execute(sa.delete(Job).where(Job.status.in_((DONE, CANCELLED)), Job.finished_at < utcnow() - KEEP_FINISHED))
