"""The request queue read in order: staff's pages, the API's cursor pages, the
dashboard's deadline counts, and a person's or a reference's requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..db.types import UTCDateTime
from ..extensions import db
from .models import OPEN, RightsRequest


def _most_urgent_first() -> tuple[sa.ColumnElement[Any], ...]:
    """Open work by due date (unverified ones, with no date yet, after it), then
    finished requests, most recent first."""
    is_open = RightsRequest.status.in_(OPEN)
    open_due = sa.case((is_open, RightsRequest.due_at), else_=None)
    return (
        sa.case((is_open, 0), else_=1),
        sa.case((is_open, RightsRequest.due_at.is_(None)), else_=False),
        open_due,
        RightsRequest.created_at.desc(),
        RightsRequest.id.desc(),
    )


def _filtered(statuses: list[str] | None, types: list[str] | None = None) -> sa.Select[RightsRequest]:
    stmt = sa.select(RightsRequest)
    if statuses:
        stmt = stmt.where(RightsRequest.status.in_(statuses))
    if types:
        stmt = stmt.where(RightsRequest.type.in_(types))
    return stmt


def queue_page(*, statuses: list[str], types: list[str], page: int, per_page: int) -> tuple[list[RightsRequest], int]:
    """One page (counted from 1) of the staff queue, most urgent first, and how many match in all."""
    stmt = _filtered(statuses, types)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(stmt.order_by(*_most_urgent_first()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


def deadline_counts(*, now: datetime, soon: timedelta) -> dict[str, int]:
    """Open requests, and how many of them are due within `soon` or overdue."""
    is_open = RightsRequest.status.in_(OPEN)
    due = RightsRequest.due_at
    row = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(due >= now, due < now + soon),
            sa.func.count().filter(due < now),
        ).where(is_open)
    ).one()
    return {"open": row[0], "due_soon": row[1], "overdue": row[2]}


def overdue_count(*, now: datetime) -> int:
    stmt = sa.select(sa.func.count()).select_from(RightsRequest).where(RightsRequest.status.in_(OPEN), RightsRequest.due_at < now)
    return db.session.scalar(stmt) or 0


def requests_of(*, subject_id: Any, email_hash: bytes | None) -> list[RightsRequest]:
    """A person's requests: named by their subject, or made from their address."""
    match = RightsRequest.subject_id == subject_id
    if email_hash is not None:
        match = sa.or_(match, RightsRequest.email_hash == email_hash)
    return list(db.session.scalars(sa.select(RightsRequest).where(match).order_by(RightsRequest.created_at.desc()).limit(100)))


def by_reference(reference: str) -> RightsRequest | None:
    return db.session.scalar(sa.select(RightsRequest).where(RightsRequest.reference == reference.strip().upper()))


@dataclass(frozen=True)
class QueueKey:
    """Where a request stands in the queue's order: open ones first (by due date,
    unverified ones without a date after them), then closed ones; the id breaks ties."""

    closed: bool
    due: datetime
    id: int


NO_DUE_DATE = datetime(9999, 12, 31, tzinfo=UTC)  # sorts unverified requests after every date


def queue_key(request: RightsRequest) -> QueueKey:
    return QueueKey(request.status not in OPEN, request.due_at or NO_DUE_DATE, request.id)


def page_requests(
    *, statuses: list[str] | None = None, after: QueueKey | None = None, limit: int = 200
) -> tuple[list[RightsRequest], QueueKey | None]:
    """One page of the queue after `after`, and the key to read on from (None on
    the last page). The order is total, so pages never overlap; a request whose
    due date or status changes while someone pages moves in it."""
    closed = sa.case((RightsRequest.status.in_(OPEN), 0), else_=1)
    due = sa.func.coalesce(RightsRequest.due_at, sa.literal(NO_DUE_DATE, UTCDateTime()))
    stmt = sa.select(RightsRequest)
    if statuses:
        stmt = stmt.where(RightsRequest.status.in_(statuses))
    if after is not None:
        stmt = stmt.where(
            sa.tuple_(closed, due, RightsRequest.id)
            > sa.tuple_(sa.literal(int(after.closed)), sa.literal(after.due, UTCDateTime()), sa.literal(after.id))
        )
    rows = list(db.session.scalars(stmt.order_by(closed, due, RightsRequest.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (queue_key(rows[-1]) if more else None)
