"""Durable jobs for operators: which fail or wait to retry; retry and cancel (admin keys)."""

from __future__ import annotations

from flask.views import MethodView

from .. import job_queue
from ..db.scopes import reads, writes
from ..extensions import db
from . import job_schemas, paging
from .auth import actor, require
from .blueprint import Blueprint

blp = Blueprint("jobs", __name__, url_prefix="/v1/jobs", description="Durable jobs that failed or wait to retry.")


@blp.route("")
class Jobs(MethodView):
    @reads
    @require("admin")
    @blp.arguments(job_schemas.JobListQuery(), location="query")
    @blp.response(200, job_schemas.JobOut(many=True), headers=paging.LINK_HEADER)
    @blp.problems(400)
    def get(self, query):
        """Failed and retrying jobs, newest first; `status` filters. While there is more, the `Link` header
        names the next page."""
        items, before = job_queue.list_jobs(
            states=tuple(query.get("status") or job_queue.STATES),
            before=paging.id_position(query.get("cursor")),
            limit=query["limit"],
        )
        return items, paging.next_link(paging.id_cursor(before) if before else None)


@blp.route("/<id:job_id>/retry")
class Retry(MethodView):
    @writes
    @require("admin")
    @blp.response(200, job_schemas.JobOut)
    @blp.problems(404, 409, 422)
    def post(self, job_id):
        """Queue a failed job again with three more attempts, starting now. A rights request it works for goes
        back to processing (409 if that request was closed since)."""
        job = job_queue.retry(job_id=job_id, actor=actor())
        db.session.commit()
        return job_queue.summary(job)


@blp.route("/<id:job_id>/cancel")
class Cancel(MethodView):
    @writes
    @require("admin")
    @blp.response(200, job_schemas.JobOut)
    @blp.problems(404, 409, 422)
    def post(self, job_id):
        """Stop a failed or queued job for good (409 while an attempt runs). A rights request it worked for is
        marked failed, to be retried or rejected; an unsent mail is marked not sent."""
        job = job_queue.cancel(job_id=job_id, actor=actor())
        db.session.commit()
        return job_queue.summary(job)
