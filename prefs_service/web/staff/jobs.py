"""The staff jobs page: failed and retrying jobs, with Retry and Cancel."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ... import job_queue
from ...db.scopes import reads, writes
from .. import no_store
from . import actor, admin_required, bp, commit, number_arg, staff_required

PAGE_SIZE = 25
SHOWN = {"failed": ("failed",), "retrying": ("retrying",), "all": job_queue.STATES}


@bp.get("/jobs")
@reads
@staff_required
@no_store
def jobs():
    show = request.args.get("show", "all")
    before = number_arg("before")
    if show not in SHOWN or (request.args.get("before") and before is None):
        flash("That list does not exist; here are all failing jobs.", "error")
        return redirect(url_for("staff.jobs"), code=303)
    items, next_before = job_queue.list_jobs(states=SHOWN[show], before=before, limit=PAGE_SIZE)
    return render_template(
        "staff/jobs.html", items=items, show=show, next_before=next_before, first_page=before is None, counts=job_queue.counts()
    )


def _back():
    """To the list the form was on (its own query string only)."""
    target = request.form.get("back", "")
    safe = target.startswith("/staff/jobs") and "//" not in target and "\\" not in target
    return redirect(target if safe else url_for("staff.jobs"), code=303)


def _act(action, done: str):
    commit(action, done)
    return _back()


@bp.post("/jobs/<int:job_id>/retry")
@writes
@staff_required
def retry_job(job_id: int):
    return _act(lambda: job_queue.retry(job_id=job_id, actor=actor()), f"Job {job_id} is queued again, with three more attempts.")


@bp.post("/jobs/<int:job_id>/cancel")
@writes
@admin_required  # a cancelled erasure or notification never happens: as in the API, admins only
def cancel_job(job_id: int):
    return _act(lambda: job_queue.cancel(job_id=job_id, actor=actor()), f"Job {job_id} is cancelled; it will not run again.")
