"""The dashboard's figures: requests by deadline, jobs that fail or retry,
open delivery escalations, and how long the oldest unsent mail has waited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..extensions import db
from ..notices.models import PENDING, Notice
from ..orders.models import Escalation
from ..outbox import FAILED, QUEUED, Job
from ..rights import queue as request_queue

DUE_SOON = timedelta(days=7)


@dataclass(frozen=True)
class Figures:
    open_requests: int
    due_soon: int
    overdue: int
    failed_jobs: int
    retrying_jobs: int
    open_escalations: int
    oldest_unsent_notice: timedelta | None


def figures(*, now: datetime) -> Figures:
    deadlines = request_queue.deadline_counts(now=now, soon=DUE_SOON)
    failed, retrying = db.session.execute(
        sa.select(
            sa.func.count().filter(Job.status == FAILED),
            sa.func.count().filter(Job.status == QUEUED, Job.attempts > 0),
        ).where(Job.status.in_((FAILED, QUEUED)))
    ).one()
    escalations = db.session.scalar(sa.select(sa.func.count()).select_from(Escalation).where(Escalation.resolved_at.is_(None)))
    oldest = db.session.scalar(sa.select(sa.func.min(Notice.created_at)).where(Notice.status == PENDING))
    return Figures(
        open_requests=deadlines["open"],
        due_soon=deadlines["due_soon"],
        overdue=deadlines["overdue"],
        failed_jobs=failed,
        retrying_jobs=retrying,
        open_escalations=escalations or 0,
        oldest_unsent_notice=max(now - oldest, timedelta(0)) if oldest is not None else None,
    )
