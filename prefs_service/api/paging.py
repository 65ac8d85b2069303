"""Cursor pages for list endpoints: the body is the page (a JSON array, as
before pages existed), and a `Link: <…>; rel="next"` header (RFC 8288) names
the next one. A cursor is opaque to clients: base64url of the position the
next page starts after. One that does not decode is a 400."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import request
from flask_smorest import abort
from marshmallow import fields

from ..rights.service import QueueKey
from .blueprint import PATH_ID_MAX

INT64_MAX = 2**63 - 1
MAX_CURSOR_LENGTH = 200

LINK_HEADER = {
    "Link": {
        "description": 'The next page, as `<URL>; rel="next"` (RFC 8288); absent on the last page. '
        "Follow it as it is: its `cursor` is opaque.",
        "schema": {"type": "string"},
    }
}


def cursor_field() -> fields.String:
    return fields.String(metadata={"description": 'From the `Link: <…>; rel="next"` header of the previous page; omit for the first page.'})


def encode(position: list[Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise ValueError("too long")
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a cursor") from exc


def _bad_cursor() -> None:
    abort(400, message="The cursor is not valid.", errors={"cursor": ["use the cursor of the previous page's Link header as it is"]})


def _whole(value: Any, maximum: int) -> bool:
    return type(value) is int and 0 <= value <= maximum


def queue_position(cursor: str | None) -> QueueKey | None:
    """The rights-request queue's position a cursor names."""
    if cursor is None:
        return None
    try:
        closed, due, request_id = _decode(cursor)
        moment = datetime.fromisoformat(due)
        if type(closed) is not bool or moment.tzinfo is None or not _whole(request_id, PATH_ID_MAX):
            raise ValueError("out of range")
    except (ValueError, TypeError):
        _bad_cursor()
    return QueueKey(closed, moment, request_id)


def queue_cursor(key: QueueKey) -> str:
    return encode([key.closed, key.due.isoformat(), key.id])


def id_position(cursor: str | None) -> int | None:
    """The id a cursor of an id-ordered list names."""
    if cursor is None:
        return None
    try:
        [before] = _decode(cursor)
        if not _whole(before, INT64_MAX):
            raise ValueError("out of range")
    except (ValueError, TypeError):
        _bad_cursor()
    return before


def id_cursor(before: int) -> str:
    return encode([before])


def next_link(cursor: str | None) -> dict[str, str]:
    """The Link header naming the next page: this request's query with `cursor` replaced."""
    if cursor is None:
        return {}
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"] + [("cursor", cursor)]
    return {"Link": f'<{request.path}?{urlencode(query)}>; rel="next"'}
