from __future__ import annotations

import json

import orjson
from flask import current_app, request
from flask.views import MethodView

from .. import consent, metrics
from ..db.scopes import reads, writes
from ..errors import Invalid
from ..extensions import db
from ..subjects import service as subjects
from ..subjects.refs import SubjectRef
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("consents", __name__, url_prefix="/v1", description="The consent ledger and consent checks.")

# Default identifier for bulk checks, by channel; partner has none of its own.
DEFAULT_IDENTIFIER = {"email": "email", "phone": "phone", "fax": "fax", "mail": "postal_address"}


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
    args = request.args
    if (
        len(args) == 3
        and "channel" in args
        and "purpose" in args
        and sum(k in args for k in consent.CHECK_KEYS) == 1
        and "\x00" not in "".join(args.values())  # the schema refuses NUL, naming the field
    ):
        return args.to_dict()
    return blp.ARGUMENTS_PARSER.parse(CHECK_QUERY, request, location="query")


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
        query = check_query()
        key = next(k for k in consent.CHECK_KEYS if k in query)
        result = consent.check(channel=query["channel"], purpose=query["purpose"], key=key, value=query[key])
        metrics.CHECKS[result.reason].inc()
        # Serialised directly (same shape as CheckOut): the hot path of every send.
        answer = {"allowed": result.allowed, "reason": result.reason, "since": result.since}
        body = orjson.dumps({**answer, **consent.register_fields(result)} if result.register else answer)
        return current_app.response_class(body, mimetype="application/json")

    @reads  # a POST only for the size of its body: let SQLite run it beside others
    @require("consent:read")
    @blp.arguments(schemas.BulkCheckIn())
    @blp.response(200, schemas.BulkCheckOut)
    def post(self, data):
        """Screen up to 10,000 recipients; answers come back in input order.

        An invalid recipient is answered `allowed: false, reason: invalid`.
        Registers are consulted as for a single check."""
        channel = data["channel"]
        key = data.get("identifier_type") or DEFAULT_IDENTIFIER.get(channel)
        if key is None:
            consent.require_channel_purpose(channel, data["purpose"])
            raise Invalid(
                "Say what the recipients are.",
                errors={"identifier_type": [f"required for the {channel} channel; one of: {', '.join(consent.CHECK_KEYS)}"]},
            )
        recipients = data["recipients"]
        results = consent.check_many(channel=channel, purpose=data["purpose"], key=key, values=recipients, with_since=False)
        metrics.count_checks(results)
        # Serialised directly: 10,000 results through marshmallow would cost more than the lookup.
        answer = {
            "results": [
                {"recipient": r, "allowed": res.allowed, "reason": res.reason, **consent.register_fields(res)}
                if res.register
                else {"recipient": r, "allowed": res.allowed, "reason": res.reason}
                for r, res in zip(recipients, results, strict=True)
            ]
        }
        try:
            body = orjson.dumps(answer)
        except TypeError:  # an invalid recipient orjson cannot write back: an integer past 64 bits, or one too long to read
            body = json.dumps(answer, default=repr).encode()
        return current_app.response_class(body, mimetype="application/json")


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
