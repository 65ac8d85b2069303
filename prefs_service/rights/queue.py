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

# One order for the staff queue and the API's pages: open work by due date
# (unconfirmed requests, with no date yet, after it), then closed requests;
# newest first within each (the id breaks ties). QueueKey is a request's place in it.
NO_DUE_DATE = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class QueueKey:
    closed: bool
    due: datetime  # NO_DUE_DATE for a closed request, or an open one not yet confirmed
    id: int


def queue_key(request: RightsRequest) -> QueueKey:
    closed = request.status not in OPEN
    return QueueKey(closed, NO_DUE_DATE if closed or request.due_at is None else request.due_at, request.id)


def _order_columns() -> tuple[sa.ColumnElement[int], sa.ColumnElement[datetime]]:
    is_open = RightsRequest.status.in_(OPEN)
    no_date = sa.literal(NO_DUE_DATE, UTCDateTime())
    closed = sa.case((is_open, 0), else_=1)
    due = sa.case((is_open, sa.func.coalesce(RightsRequest.due_at, no_date)), else_=no_date)
    return closed, due


def _most_urgent_first() -> tuple[sa.ColumnElement[Any], ...]:
    closed, due = _order_columns()
    return closed, due, RightsRequest.id.desc()


def _after(key: QueueKey) -> sa.ColumnElement[bool]:
    """Every request after `key` in the queue's order (ascending, ascending, descending).
    The id is bound as a bigint: a cursor may name any 18-digit id, past the column's int."""
    closed, due = _order_columns()
    at, when = sa.literal(int(key.closed)), sa.literal(key.due, UTCDateTime())
    return sa.or_(
        closed > at, sa.and_(closed == at, sa.or_(due > when, sa.and_(due == when, RightsRequest.id < sa.literal(key.id, sa.BigInteger()))))
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


def requests_of(*, subject_id: Any, email_hash: bytes | None) -> list[RightsRequest]:
    """A person's requests: named by their subject, or made from their address."""
    match = RightsRequest.subject_id == subject_id
    if email_hash is not None:
        match = sa.or_(match, RightsRequest.email_hash == email_hash)
    return list(db.session.scalars(sa.select(RightsRequest).where(match).order_by(RightsRequest.created_at.desc()).limit(100)))


def by_reference(reference: str) -> RightsRequest | None:
    return db.session.scalar(sa.select(RightsRequest).where(RightsRequest.reference == reference.strip().upper()))


def page_requests(
    *, statuses: list[str] | None = None, after: QueueKey | None = None, limit: int = 200
) -> tuple[list[RightsRequest], QueueKey | None]:
    """One page of the queue after `after`, and the key to read on from (None on
    the last page). The order is total, so pages never overlap; a request whose
    due date or status changes while someone pages moves in it."""
    stmt = _filtered(statuses)
    if after is not None:
        stmt = stmt.where(_after(after))
    rows = list(db.session.scalars(stmt.order_by(*_most_urgent_first()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (queue_key(rows[-1]) if more else None)
