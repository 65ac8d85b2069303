"""Durable job rows. `defer()` joins the caller's transaction, so a job exists
exactly when the change that needs it was committed.

Sending the job to the broker happens after commit (see jobs/dispatch.py); the
domain only ever writes a row here and never imports jobs/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .clock import utcnow
from .db.backend import backend
from .db.types import Base
from .extensions import db
from .job_kinds import JobKind

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CANCELLED = "cancelled"  # by staff (job_queue.cancel): never runs again
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
# Job ids written in this session's transaction, sent to the broker after commit.
PENDING_KEY = "prefs.pending_job_ids"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"),
        sa.Index("ix_jobs_status_run_after", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(10), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    # A claim is a random token plus a lease; an expired lease may be taken over,
    # and a worker that lost its claim cannot mark the job done.
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    lease_expires_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    # Optional uniqueness for jobs that must exist once (e.g. one periodic run per slot).
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]


def defer(kind: JobKind, payload: dict[str, Any], *, run_after: datetime | None = None, max_attempts: int = 8) -> Job:
    """Queue `kind` with `payload` in the caller's transaction."""
    kind = JobKind(kind)  # a kind nobody handles would wait for ever
    now = utcnow()
    # Marked dispatched now: the after-commit hook sends it, so the sweeper
    # only steps in if that message never arrives.
    job = Job(kind=kind.value, payload=payload, run_after=run_after or now, max_attempts=max_attempts, dispatched_at=now)
    db.session.add(job)
    db.session.flush()
    db.session.info.setdefault(PENDING_KEY, []).append(job.id)
    return job


def defer_once(kind: JobKind, payload: dict[str, Any], *, dedupe_key: str, run_after: datetime | None = None) -> int | None:
    """Queue a job unless one with `dedupe_key` already exists; returns the new id or None.

    Safe when several processes race for the same key: the database keeps one.
    """
    kind = JobKind(kind)
    now = utcnow()
    stmt = (
        backend()
        .insert(Job.__table__)
        .values(
            kind=kind.value,
            payload=payload,
            status=QUEUED,
            attempts=0,
            max_attempts=8,
            run_after=run_after or now,
            dedupe_key=dedupe_key,
            dispatched_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Job.__table__.c.id)
    )
    job_id = db.session.execute(stmt).scalar()
    if job_id is not None:
        db.session.info.setdefault(PENDING_KEY, []).append(job_id)
    return job_id


# Set by the job runner while a job's work runs: renews the job's lease.
_keep_alive: ContextVar[Callable[[], None] | None] = ContextVar("prefs_keep_alive", default=None)


def keep_alive() -> None:
    """Long work (an export) calls this at every step so that its job keeps its
    lease: no second worker starts the same work while this one still makes
    progress, and a worker that died is replaced once it stops calling. Cheap:
    the renewal itself goes to the database only once a third of the lease has
    passed."""
    renew = _keep_alive.get()
    if renew is not None:
        renew()


@contextmanager
def renewing_with(renew: Callable[[], None]) -> Iterator[None]:
    token = _keep_alive.set(renew)
    try:
        yield
    finally:
        _keep_alive.reset(token)
