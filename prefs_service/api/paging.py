"""Cursor pages for list endpoints: the body is the page (a JSON array, as
before pages existed), and a `Link: <…>; rel="next"` header (RFC 8288) names
the next one. Clients pass a cursor back as they got it; every value of the
documented pattern names a position (so a fuzzer's cursor reads some page),
and anything else is a 400."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import request
from flask_smorest import abort
from marshmallow import fields

from ..rights.queue import NO_DUE_DATE, QueueKey

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# The queue's position: closed (0 or 1), the due date in microseconds since 1970, the id.
QUEUE_CURSOR = "^[01]\\.[0-9]{1,18}\\.[0-9]{1,18}$"
# An id-ordered list's position: the last id seen.
ID_CURSOR = "^[0-9]{1,18}$"

LINK_HEADER = {
    "Link": {
        "description": 'The next page, as `<URL>; rel="next"` (RFC 8288); absent on the last page. '
        "Follow it as it is: its `cursor` is opaque.",
        "schema": {"type": "string"},
    }
}


def cursor_field(pattern: str) -> fields.String:
    # Checked by the view (a 400 naming the cursor), not by the schema (a 422).
    return fields.String(
        metadata={
            "description": 'From the `Link: <…>; rel="next"` header of the previous page, as it is; omit for the first page.',
            "pattern": pattern,
        }
    )


def _matching(cursor: str, pattern: str) -> str:
    if not re.fullmatch(pattern.strip("^$"), cursor, re.ASCII):
        abort(400, message="The cursor is not valid.", errors={"cursor": ["use the cursor of the previous page's Link header as it is"]})
    return cursor


def queue_position(cursor: str | None) -> QueueKey | None:
    """The rights-request queue's position a cursor names."""
    if cursor is None:
        return None
    closed, micros, request_id = _matching(cursor, QUEUE_CURSOR).split(".")
    latest = (NO_DUE_DATE - EPOCH) // MICROSECOND
    return QueueKey(closed == "1", EPOCH + min(int(micros), latest) * MICROSECOND, int(request_id))


def queue_cursor(key: QueueKey) -> str:
    return f"{int(key.closed)}.{max((key.due - EPOCH) // MICROSECOND, 0)}.{key.id}"


def id_position(cursor: str | None) -> int | None:
    """The id a cursor of an id-ordered list names: the page holds smaller ones."""
    return None if cursor is None else int(_matching(cursor, ID_CURSOR))


def id_cursor(before: int) -> str:
    return str(before)


def next_link(cursor: str | None) -> dict[str, str]:
    """The Link header naming the next page: this request's query with `cursor` replaced."""
    if cursor is None:
        return {}
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"] + [("cursor", cursor)]
    return {"Link": f'<{request.path}?{urlencode(query)}>; rel="next"'}
