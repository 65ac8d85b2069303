"""The staff jobs page: failed and retrying jobs, with Retry and Cancel."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from .. import job_queue
from ..db.scopes import reads, writes
from ..errors import DomainError
from ..extensions import db
from . import no_store
from .staff import staff_required

bp = Blueprint("staff_jobs", __name__, url_prefix="/staff/jobs")

PAGE_SIZE = 25
SHOWN = {"failed": ("failed",), "retrying": ("retrying",), "all": job_queue.STATES}


def _actor() -> str:
    return f"staff:{g.staff.id}"


@bp.get("")
@reads
@staff_required
@no_store
def index():
    show = request.args.get("show", "all")
    before = request.args.get("before", "")
    if show not in SHOWN or (before and not (before.isascii() and before.isdigit() and len(before) <= 19)):
        flash("That list does not exist; here are all failing jobs.", "error")
        return redirect(url_for("staff_jobs.index"), code=303)
    items, next_before = job_queue.list_jobs(states=SHOWN[show], before=int(before) if before else None, limit=PAGE_SIZE)
    return render_template(
        "staff/jobs.html", items=items, show=show, next_before=next_before, first_page=not before, counts=job_queue.counts()
    )


def _back():
    """To the list the form was on (its own query string only)."""
    target = request.form.get("back", "")
    safe = target.startswith("/staff/jobs") and "//" not in target and "\\" not in target
    return redirect(target if safe else url_for("staff_jobs.index"), code=303)


def _act(action, done: str):
    try:
        action()
        db.session.commit()
        flash(done, "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return _back()


@bp.post("/<int:job_id>/retry")
@writes
@staff_required
def retry(job_id: int):
    return _act(lambda: job_queue.retry(job_id=job_id, actor=_actor()), f"Job {job_id} is queued again, with three more attempts.")


@bp.post("/<int:job_id>/cancel")
@writes
@staff_required
def cancel(job_id: int):
    return _act(lambda: job_queue.cancel(job_id=job_id, actor=_actor()), f"Job {job_id} is cancelled; it will not run again.")
