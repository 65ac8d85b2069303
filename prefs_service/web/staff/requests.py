"""The rights-request queue, one request's page and staff decisions on it,
and the delivery escalations."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ... import job_queue
from ...access import service as access
from ...clock import utcnow
from ...console.dashboard import DUE_SOON
from ...db.scopes import reads, writes
from ...orders import watchdog
from ...rights import agents
from ...rights import queue as request_queue
from ...rights import service as rights
from ...rights.models import FAILED, OPEN, PROCESSING, STATUSES, TYPES
from ...subjects import jurisdictions
from .. import no_store
from . import actor, bp, commit, number_arg, staff_required

PER_PAGE = 50


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason (the requester is told)", validators=[DataRequired(), Length(max=2000)])


class ExtendForm(ReasonForm):
    # Left out for a US-CA request, which extends by 45 days (rights/clocks.py decides).
    months = IntegerField("Extend by (months)", validators=[Optional(), NumberRange(min=1, max=2)])


def _page_number() -> int:
    page = number_arg("page")
    return page if page is not None and page < 100_000 else 1


@bp.get("")
@reads
@staff_required
@no_store
def queue():
    chosen = [s for s in request.args.getlist("status") if s in STATUSES] or list(OPEN)
    types = [t for t in request.args.getlist("type") if t in TYPES]
    page = _page_number()
    items, total = request_queue.queue_page(statuses=chosen, types=types, page=page, per_page=PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    now = utcnow()
    return render_template(
        "staff/queue.html",
        items=items,
        total=total,
        page=page,
        pages=pages,
        chosen=chosen,
        chosen_types=types,
        statuses=STATUSES,
        types=TYPES,
        now=now,
        soon=now + DUE_SOON,
    )


@bp.get("/requests/<int:request_id>")
@reads
@staff_required
@no_store
def detail(request_id: int):
    item = rights.get(request_id)
    current = rights.current_values(item)
    timeline = rights.timeline(item)
    now = utcnow()
    job = job_queue.latest_for_request(item.id) if item.status in (PROCESSING, FAILED) else None
    return render_template(
        "staff/request.html",
        item=item,
        job=job_queue.summary(job) if job else None,
        current=current,
        timeline=timeline,
        names=access.actor_names(event.actor for event in timeline),
        reason_form=ReasonForm(),
        extend_form=ExtendForm(),
        jurisdiction_labels=jurisdictions.LABELS,
        now=now,
        soon=now + DUE_SOON,
    )


def _act(request_id: int, action, done: str):
    commit(action, done)
    return redirect(url_for("staff.detail", request_id=request_id), code=303)


@bp.post("/requests/<int:request_id>/approve")
@writes
@staff_required
def approve(request_id: int):
    return _act(request_id, lambda: rights.approve(request_id=request_id, actor=actor()), "Approved: the correction is being applied.")


@bp.post("/requests/<int:request_id>/reject")
@writes
@staff_required
def reject(request_id: int):
    form = ReasonForm()
    if not form.validate():
        flash("Give the reason the requester will be told.", "error")
        return redirect(url_for("staff.detail", request_id=request_id), code=303)
    return _act(
        request_id,
        lambda: rights.reject(request_id=request_id, reason=form.reason.data, actor=actor()),
        "Rejected; the requester is told why.",
    )


@bp.post("/requests/<int:request_id>/extend")
@writes
@staff_required
def extend(request_id: int):
    form = ExtendForm()
    if not form.validate():
        flash("Give the reason the requester will be told (and, outside California, extend by 1 or 2 months).", "error")
        return redirect(url_for("staff.detail", request_id=request_id), code=303)
    return _act(
        request_id,
        lambda: rights.extend(request_id=request_id, months=form.months.data, reason=form.reason.data, actor=actor()),
        "Extended; the requester is told the new date.",
    )


@bp.post("/requests/<int:request_id>/power-of-attorney")
@writes
@staff_required
def power_of_attorney(request_id: int):
    return _act(
        request_id,
        lambda: rights.record_power_of_attorney(request_id=request_id, actor=actor()),
        "Power of attorney recorded: the request proceeds without the person's confirmation.",
    )


@bp.get("/requests/<int:request_id>/agent-permission")
@reads
@staff_required
@no_store
def agent_permission(request_id: int):
    """The agent's signed permission, for staff only, as a download (never shown inline)."""
    item = rights.get(request_id)
    agent = item.agent
    path = agents.permission_path(agent) if agent is not None else None
    if agent is None or path is None:
        abort(404, description="No permission is held for this request: there was no agent, or it was erased with the request's data.")
    name = f"permission-{item.reference}.{agents.EXTENSIONS.get(agent.permission_type, 'bin')}"
    return send_file(path, mimetype=agent.permission_type, as_attachment=True, download_name=name)


@bp.post("/requests/<int:request_id>/retry")
@writes
@staff_required
def retry(request_id: int):
    return _act(request_id, lambda: rights.retry(request_id=request_id, actor=actor()), "Retrying.")


@bp.get("/escalations")
@reads
@staff_required
@no_store
def escalations():
    return render_template("staff/escalations.html", items=watchdog.open_escalations(), form=ReasonForm())


@bp.post("/escalations/<int:escalation_id>/resolve")
@writes
@staff_required
def resolve_escalation(escalation_id: int):
    commit(
        lambda: watchdog.resolve_escalation(escalation_id=escalation_id, note=request.form.get("reason", ""), actor=actor()), "Resolved."
    )
    return redirect(url_for("staff.escalations"), code=303)
