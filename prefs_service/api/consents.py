from __future__ import annotations

import errno
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson
from flask import current_app, request, stream_with_context
from flask.views import MethodView
from flask_smorest import abort

from .. import consent, metrics
from ..consent import lists
from ..db.scopes import reads, writes
from ..extensions import db
from ..subjects import service as subjects
from ..subjects.refs import SubjectRef
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

log = logging.getLogger(__name__)

blp = Blueprint("consents", __name__, url_prefix="/v1", description="The consent ledger and consent checks.")


@blp.route("/consents")
class ConsentCollection(MethodView):
    @writes
    @require("consent:write")
    @blp.arguments(schemas.ConsentIn())
    @blp.response(201, schemas.ConsentEventOut)
    @blp.problems(404, 409)
    def post(self, data):
        """Record one consent event. An unknown email, phone, fax or external_ref creates the subject."""
        event = consent.build_event(
            channel=data["channel"],
            purpose=data["purpose"],
            status=data["status"],
            source=data["source"],
            occurred_at=data.get("occurred_at"),
            policy_version=data.get("policy_version"),
            evidence=data.get("evidence"),
        )
        subject = subjects.resolve_one(SubjectRef.one_of(data), actor=actor())
        row, applied = consent.record(subject_id=subject.id, event=event, recorded_by=actor())
        db.session.commit()
        row.applied = applied  # type: ignore[attr-defined]  # for the response only: ConsentEventOut.applied
        return row


@blp.route("/consents/batch")
class ConsentBatch(MethodView):
    @writes
    @require("consent:write")
    @blp.arguments(schemas.ConsentBatchIn())
    @blp.response(201, schemas.BatchOut)
    @blp.problems(409)
    def post(self, data):
        """Record up to 10,000 events at once: all valid, or nothing written and the bad ones listed by index.

        Events for people we erased at their request are not recorded: `skipped_erased` lists them by index."""
        recorded, skipped = consent.record_batch(items=data["events"], recorded_by=actor())
        db.session.commit()
        return {"recorded": recorded, "skipped_erased": skipped}


def check_query() -> dict:
    """The single check's query, as CheckQuery loads it. The common shape
    (channel, purpose and one identifier) is read as it is: every field is a
    plain string, so the schema would return the same dict (first values of
    repeated keys included), and the schema cost a sixth of the check. Anything else goes
    through the schema, which names what is wrong. A property test holds the
    two readings equal."""
    common = common_check_query(request.query_string)
    return common if common is not None else blp.ARGUMENTS_PARSER.parse(CHECK_QUERY, request, location="query")


def common_check_query(query_string: bytes) -> dict[str, str] | None:
    """The query as check_query() reads it when it has the common shape; None otherwise.
    Parsed as werkzeug parses request.args, without building its MultiDict;
    a repeated key takes the schema's path."""
    pairs = parse_qsl(query_string.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
    if len(pairs) == 3:
        args = dict(pairs)
        if (
            len(args) == 3
            and "channel" in args
            and "purpose" in args
            and sum(k in args for k in consent.CHECK_KEYS) == 1
            and "\x00" not in "".join(args.values())  # the schema refuses NUL, naming the field
        ):
            return args
    return None


def check_answer(query: dict[str, str]) -> bytes:
    """The single check's answer to a query read by check_query(), counted by reason."""
    key = next(k for k in consent.CHECK_KEYS if k in query)
    result = consent.check(channel=query["channel"], purpose=query["purpose"], key=key, value=query[key])
    metrics.CHECKS[result.reason].inc()
    # Serialised directly (same shape as CheckOut): the hot path of every send.
    answer = {"allowed": result.allowed, "reason": result.reason, "since": result.since}
    return orjson.dumps({**answer, **consent.register_fields(result)} if result.register else answer)


CHECK_QUERY = schemas.CheckQuery()


@blp.route("/consent/check")
class ConsentCheck(MethodView):
    @require("consent:read")
    # One object parameter, so that the document can say which purposes each
    # channel has and that exactly one identifier is given.
    @reads
    @blp.doc(
        parameters=[
            {
                "in": "query",
                "name": "check",
                "required": True,
                "style": "form",
                "explode": True,
                "schema": {"$ref": "#/components/schemas/CheckQuery"},
            }
        ]
    )
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.response(200, schemas.CheckOut)
    def get(self):
        """May we contact this person on this channel for this purpose?

        Phone, fax and mail marketing also consult the national registers
        that were imported (TPS, CTPS, DNC, FPS, MPS): `register` names the
        one the answer concerns (`reason: register`, or a grant that overrides
        it), `reason: register_stale` refuses while its list is past its rule."""
        return current_app.response_class(check_answer(check_query()), mimetype="application/json")

    @reads  # a POST only for the size of its body: let SQLite run it beside others
    @require("consent:read")
    @blp.arguments(schemas.BulkCheckIn())
    @blp.response(200, schemas.BulkCheckOut)
    def post(self, data):
        """Screen up to 10,000 recipients; answers come back in input order.

        An invalid recipient is answered `allowed: false, reason: invalid`.
        Registers are consulted as for a single check."""
        key = lists.identifier_type(channel=data["channel"], purpose=data["purpose"], given=data.get("identifier_type"))
        recipients = data["recipients"]
        results = consent.check_many(channel=data["channel"], purpose=data["purpose"], key=key, values=recipients, with_since=False)
        metrics.count_checks(results)
        # Serialised directly (10,000 results through marshmallow would cost
        # more than the lookup), a slice at a time: the whole answer's dicts and
        # orjson's buffer for it held 4 MB at once. A list of chunks still gets
        # its Content-Length.
        body = [b'{"results":[']
        for start in range(0, len(results), _ANSWER_SLICE):
            if start:
                body.append(b",")
            body.append(_answers(recipients[start : start + _ANSWER_SLICE], results[start : start + _ANSWER_SLICE]))
        body.append(b"]}")
        return current_app.response_class(body, mimetype="application/json")


_ANSWER_SLICE = 1000


def _answers(recipients: list[Any], results: list[consent.CheckResult]) -> bytes:
    """The answers, comma-separated, without the list's brackets."""
    answers = [lists.answer(r, res) for r, res in zip(recipients, results, strict=True)]
    try:
        return orjson.dumps(answers)[1:-1]
    except TypeError:  # an invalid recipient orjson cannot write back: an integer past 64 bits, or one too long to read
        return json.dumps(answers, default=repr, separators=(",", ":")).encode()[1:-1]


SCREEN_DOC = {
    "requestBody": {
        "required": True,
        "description": "The list, of any length (the body-size limit does not apply; a line may hold "
        f"{lists.MAX_LINE_BYTES} bytes). text/csv: one recipient a line, or with `column` a header row and that column. "
        "application/x-ndjson: each line a JSON string, or an object with the recipient in its `column` field "
        "(default `recipient`). UTF-8.",
        "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in lists.MEDIA_TYPES.values()},
    },
    # One object parameter, so that the document can say which purposes each channel has.
    "parameters": [
        {
            "in": "query",
            "name": "screen",
            "required": True,
            "style": "form",
            "explode": True,
            "schema": {"$ref": "#/components/schemas/ScreenQuery"},
        }
    ],
    "responses": {
        "200": {
            "description": "One line a recipient, in the list's format and order: `recipient` (as given), `allowed`, `reason`, "
            "and `register` (and `register_stale`) where a national register had its say. text/csv starts with the header row "
            + ",".join(lists.CSV_COLUMNS)
            + "; application/x-ndjson has one object a line, as the bulk check's results. A line that cannot be read "
            "is answered `invalid`. An answer cut short (the connection closed before its last chunk) means the "
            "screening failed part way: screen the list again.",
            "content": {media: {"schema": {"type": "string"}} for media in lists.MEDIA_TYPES.values()},
        }
    },
}
SCREEN_QUERY = schemas.ScreenQuery()
_SPOOL_BYTES = 1024 * 1024


@blp.route("/consent/screen")
class ConsentScreen(MethodView):
    @reads
    @require("consent:read")
    @blp.doc(**SCREEN_DOC)
    @blp.problems(400, 413, 415, 422)  # as BODY_PROBLEMS, which a body and query documented by hand do not get
    def post(self):
        """Screen a whole mailing list, of any length: answers stream back line by line.

        Each chunk of 10,000 recipients is checked as the bulk check checks them
        (registers included). The channel, purpose, identifier type, content
        type and column are refused before the body is read."""
        query = blp.ARGUMENTS_PARSER.parse(SCREEN_QUERY, request, location="query")
        fmt = lists.FORMAT_OF_MEDIA_TYPE.get(request.mimetype or "")
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if fmt is None or charset not in ("utf-8", "utf8", "us-ascii"):
            abort(415, message=f"Send the list as UTF-8 {' or '.join(lists.MEDIA_TYPES.values())}.")
            raise AssertionError("abort() raises")
        screening = lists.prepare(
            channel=query["channel"],
            purpose=query["purpose"],
            identifier_type_given=query.get("identifier_type"),
            format=fmt,
            column=query.get("column"),
        )
        spool = _spooled_body()
        try:
            items = lists.items(spool, screening)  # reads a CSV header now: a missing column is a 422, not a cut answer
        except BaseException:
            spool.close()
            raise
        response = current_app.response_class(
            stream_with_context(_answer(screening, items)),
            mimetype=lists.MEDIA_TYPES[fmt],
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        response.call_on_close(spool.close)  # also when the answer is never read
        return response


def _spooled_body() -> IO[bytes]:
    """The body, read a block at a time into an unnamed temporary file.

    The whole list is read before the first answer is written: a client that
    sends its whole body before it reads the answer (Python's http.client,
    requests, httpx) would otherwise wait on a server waiting on it, once the
    answers fill the socket's buffers. Disk, not memory, holds the list; the
    file has no name and goes when it is closed. An empty body is an empty list."""
    # Any length: the app-wide body limit is for bodies held in memory (None would fall back to it).
    request.max_content_length = sys.maxsize
    spool = tempfile.TemporaryFile(prefix="prefs-screen-")  # noqa: SIM115 - closed when the answer is (call_on_close)
    try:
        while block := request.stream.read(_SPOOL_BYTES):
            spool.write(block)
    except OSError as error:
        spool.close()
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            abort(413, message="The list is larger than this server can hold while it screens it; send it in parts.")
        raise
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _answer(screening: lists.Screening, items: Iterator[tuple[Any, Any]]) -> Iterator[bytes]:
    """The answer, a chunk at a time. Once it has begun, an error can only cut
    it short (the connection closes without the chunked answer's end): logged
    here, as the error handlers no longer can answer."""
    if head := lists.header(screening):
        yield head
    answered_so_far = 0
    try:
        for answered in lists.screen(screening, items):
            metrics.count_checks(result for _, result in answered)
            answered_so_far += len(answered)
            yield lists.encode(screening, answered)
    except Exception as error:
        log.warning("whole-list screening cut short after %d answers: %s", answered_so_far, type(error).__name__)
        raise


@blp.route("/consent/changes")
class ConsentChanges(MethodView):
    @reads
    @require("consent:read")
    @blp.arguments(schemas.ChangesQuery(), location="query")
    @blp.response(200, schemas.ChangesOut)
    def get(self, query):
        """Follow the ledger: events in a stable order, and a cursor to continue from."""
        events, cursor, more = consent.changes(after=query.get("after"), limit=query["limit"])
        return {"events": events, "next": cursor, "has_more": more}
