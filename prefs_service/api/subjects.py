from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView

from .. import consent
from ..db.scopes import reads, writes
from ..extensions import db
from ..registers.enquiries import record_enquiry
from ..subjects import service as subjects
from . import schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("subjects", __name__, url_prefix="/v1/subjects", description="People and their identifiers.")


def subject_body(subject) -> dict:
    return {
        "id": subject.id,
        "external_ref": subject.external_ref,
        "name": subject.name,
        "created_at": subject.created_at,
        "updated_at": subject.updated_at,
        **subjects.identifiers_of(subject),
    }


@blp.route("")
class SubjectCollection(MethodView):
    @writes
    @require("subjects:write")
    @blp.arguments(schemas.SubjectFields())
    @blp.response(201, schemas.SubjectOut, description="Created.")
    @blp.alt_response(200, schema=schemas.SubjectOut, description="An existing subject matched by external_ref or email.")
    @blp.problems(409)
    def post(self, values):
        """Create a subject, or return the one whose external_ref or email matches."""
        subject, created = subjects.find_or_create(values=values, actor=actor())
        db.session.commit()
        headers = {"Location": url_for("subjects.SubjectItem", subject_id=subject.id)}
        return subject_body(subject), (201 if created else 200), headers


@blp.route("/<subject_id>")
class SubjectItem(MethodView):
    @reads
    @require("subjects:read")
    @blp.response(200, schemas.SubjectOut)
    @blp.problems(404)
    def get(self, subject_id):
        """A subject and their identifiers."""
        return subject_body(subjects.get(subject_id))

    @writes
    @require("subjects:write")
    @blp.arguments(schemas.SubjectFields())
    @blp.response(200, schemas.SubjectOut)
    @blp.problems(404, 409)
    def patch(self, values, subject_id):
        """Change fields; null clears one. Consent stays with the person."""
        subject = subjects.update(subjects.get(subject_id), values=values, actor=actor())
        db.session.commit()
        return subject_body(subject)


@blp.route("/<subject_id>/consents")
class SubjectConsents(MethodView):
    @reads
    @require("consent:read")
    @blp.arguments(schemas.SubjectConsentsQuery(), location="query")
    @blp.response(200, schemas.SubjectConsentsOut)
    @blp.problems(404)
    def get(self, query, subject_id):
        """Current state for every channel and purpose; `?history=1` adds the ledger, newest first."""
        subject = subjects.get(subject_id)
        body: dict[str, Any] = {
            "subject_id": subject.id,
            "ask_again_after": subject.ask_again_after,
            "consents": consent.current(subject=subject),
        }
        if query["history"]:
            events = consent.history(subject=subject, limit=query["limit"] + 1, before=query.get("before"))
            more = len(events) > query["limit"]
            body["history"] = events[: query["limit"]]
            body["history_before"] = body["history"][-1].id if more else None
        return body


@blp.route("/<subject_id>/enquiries")
class SubjectEnquiries(MethodView):
    @writes
    @require("subjects:write")
    @blp.arguments(schemas.EnquiryIn())
    @blp.response(201, schemas.EnquiryOut)
    @blp.problems(404, 409)
    def post(self, values, subject_id):
        """Record that the person enquired. For 3 months after it, an established
        business relationship lifts the US Do Not Call registry for them
        (their own withdrawals and suppressions still win)."""
        enquiry = record_enquiry(subject=subjects.get(subject_id), occurred_at=values.get("occurred_at"), actor=actor())
        db.session.commit()
        return enquiry
