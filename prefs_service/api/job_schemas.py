"""Shapes of the paged lists: the rights-request queue's query, and durable
jobs as staff administer them (schemas.py holds the rest)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from .. import job_queue
from ..rights.models import STATUSES as REQUEST_STATUSES
from .fields import QueryInteger, one_of
from .paging import ID_CURSOR, QUEUE_CURSOR, cursor_field
from .schemas import Strict


class RequestPageQuery(Strict):
    status = fields.List(one_of(*REQUEST_STATUSES))
    limit = QueryInteger(load_default=200, validate=validate.Range(min=1, max=1000), metadata={"description": "Requests per page."})
    cursor = cursor_field(QUEUE_CURSOR)


class JobListQuery(Strict):
    status = fields.List(
        one_of(*job_queue.STATES),
        metadata={"description": "`failed` (gave up; staff may retry) or `retrying` (failed an attempt, will try again); "
                  "repeat for both, the default."},
    )  # fmt: skip
    limit = QueryInteger(load_default=50, validate=validate.Range(min=1, max=job_queue.MAX_PAGE))
    cursor = cursor_field(ID_CURSOR)


class JobOut(ma.Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "What the job does, e.g. `requests.export`."})
    status = fields.String(
        attribute="state",
        metadata={"description": "`failed`, `retrying` (queued after a failed attempt), `queued`, `running`, `done` or `cancelled`."},
    )
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    next_run_at = fields.DateTime(allow_none=True, metadata={"description": "When it runs next; null unless queued."})
    last_error = fields.String(
        allow_none=True,
        metadata={"description": "The exception class and a message naming the folder or host involved; never personal data."},
    )
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    request_id = fields.Integer(allow_none=True, metadata={"description": "The rights request whose work this is, if any."})
    request_reference = fields.String(allow_none=True)
