from __future__ import annotations

from flask.views import MethodView

from ..db.scopes import reads, writes
from ..extensions import db
from ..rights import agents
from ..rights import queue as request_queue
from ..rights import service as rights
from . import job_schemas, paging, request_schemas
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("requests", __name__, url_prefix="/v1/requests", description="Data-subject rights requests.")


def with_timeline(item):
    item.timeline = rights.timeline(item)
    return item


@blp.route("")
class Requests(MethodView):
    @reads
    @require("requests:read")
    @blp.arguments(job_schemas.RequestPageQuery(), location="query")
    @blp.response(200, request_schemas.RequestOut(many=True), headers=paging.LINK_HEADER)
    @blp.problems(400)
    def get(self, query):
        """The queue, one page at a time, in the staff queue's order: open requests by due date (unconfirmed
        ones, with no date yet, after them), then closed ones, newest first within each; `status` filters (repeat it for several). While there is more, the `Link`
        header names the next page."""
        items, next_key = request_queue.page_requests(
            statuses=query.get("status"), after=paging.queue_position(query.get("cursor")), limit=query["limit"]
        )
        return items, paging.next_link(paging.queue_cursor(next_key) if next_key else None)

    @writes
    @require("requests:write")
    @blp.arguments(request_schemas.RequestIn())
    @blp.response(201, request_schemas.RequestOut)
    @blp.problems(404, 409)
    def post(self, data):
        """Take a request. Without `verified: true` the requester gets a mail to confirm it first."""
        item = rights.submit(
            type=data["type"],
            email=data.get("email"),
            subject_id=data.get("subject_id"),
            changes=data.get("changes"),
            explanation=data.get("explanation"),
            verified=data["verified"],
            jurisdiction=data.get("jurisdiction"),
            agent=agents.AgentInput(**data["agent"]) if "agent" in data else None,
            actor=actor(),
        )
        db.session.commit()
        return with_timeline(item)


@blp.route("/<id:request_id>")
class RequestItem(MethodView):
    @reads
    @require("requests:read")
    @blp.response(200, request_schemas.RequestOut)
    @blp.problems(404, 422)
    def get(self, request_id):
        """One request with its timeline."""
        return with_timeline(rights.get(request_id))


@blp.route("/<id:request_id>/approve")
class Approve(MethodView):
    @writes
    @require("requests:write")
    @blp.response(200, request_schemas.RequestOut)
    @blp.problems(404, 409, 422)
    def post(self, request_id):
        """Approve a correction awaiting review: a job applies it."""
        item = rights.approve(request_id=request_id, actor=actor())
        db.session.commit()
        return with_timeline(item)


@blp.route("/<id:request_id>/reject")
class Reject(MethodView):
    @writes
    @require("requests:write")
    @blp.arguments(request_schemas.RejectIn())
    @blp.response(200, request_schemas.RequestOut)
    @blp.problems(404, 409)
    def post(self, data, request_id):
        """Reject with the reason the requester is told."""
        item = rights.reject(request_id=request_id, reason=data["reason"], actor=actor())
        db.session.commit()
        return with_timeline(item)


@blp.route("/<id:request_id>/extend")
class Extend(MethodView):
    @writes
    @require("requests:write")
    @blp.arguments(request_schemas.ExtendIn())
    @blp.response(200, request_schemas.RequestOut)
    @blp.problems(404, 409)
    def post(self, data, request_id):
        """Extend the deadline once, as the request's law allows: GDPR by one or two months, within the first month;
        CCPA (US-CA) by 45 days, within the first 45. The requester is told."""
        item = rights.extend(request_id=request_id, months=data.get("months"), reason=data["reason"], actor=actor())
        db.session.commit()
        return with_timeline(item)


@blp.route("/<id:request_id>/retry")
class Retry(MethodView):
    @writes
    @require("requests:write")
    @blp.response(200, request_schemas.RequestOut)
    @blp.problems(404, 409, 422)
    def post(self, request_id):
        """Run a failed request's job again."""
        item = rights.retry(request_id=request_id, actor=actor())
        db.session.commit()
        return with_timeline(item)
