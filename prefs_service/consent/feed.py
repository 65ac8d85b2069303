"""Reading the ledger: one person's history, and the change feed other systems follow.

The feed orders events by (writing transaction, id). On PostgreSQL it hands
out only events of transactions older than every running one (see
ConsentEvent.txid), so a slow writer can never commit an event behind a cursor
a follower already holds.
"""

from __future__ import annotations

from ..errors import Invalid
from ..subjects.models import Subject
from . import queries
from .models import ConsentEvent

_NOT_A_CURSOR = {"after": ["use the `next` value of a previous page"]}


def history(*, subject: Subject, limit: int = 500, before: int | None = None) -> list[ConsentEvent]:
    """The person's ledger, newest first, `limit` at a time before event id `before`."""
    return queries.history(subject.id, limit=limit, before=before)


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, 0)
    try:
        txid, _, event_id = cursor.partition(".")
        parsed = int(txid), int(event_id)
    except ValueError:
        raise Invalid("Not a change-feed cursor.", errors=_NOT_A_CURSOR) from None
    if parsed[0] < 0 or parsed[1] < 0:
        raise Invalid("Not a change-feed cursor.", errors=_NOT_A_CURSOR)
    return parsed


def cursor_of(event: ConsentEvent) -> str:
    return f"{event.txid}.{event.id}"


def changes(*, after: str | None, limit: int) -> tuple[list[ConsentEvent], str | None, bool]:
    """Up to `limit` ledger entries after `after`, the cursor to continue from,
    and whether more are waiting."""
    events = queries.feed(parse_cursor(after), limit=limit + 1)
    more = len(events) > limit
    events = events[:limit]
    return events, (cursor_of(events[-1]) if events else after), more
