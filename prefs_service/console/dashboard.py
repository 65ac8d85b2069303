"""The dashboard's figures: requests by deadline, jobs that fail or retry,
open delivery escalations, and how long the oldest unsent mail has waited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import job_queue, outbox
from ..notices import service as notices
from ..orders import watchdog
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
    jobs = job_queue.counts()
    oldest = notices.oldest_unsent_at()
    return Figures(
        open_requests=deadlines["open"],
        due_soon=deadlines["due_soon"],
        overdue=deadlines["overdue"],
        failed_jobs=jobs[outbox.FAILED],
        retrying_jobs=jobs[job_queue.RETRYING],
        open_escalations=sum(watchdog.open_escalation_counts().values()),
        oldest_unsent_notice=max(now - oldest, timedelta(0)) if oldest is not None else None,
    )
