"""The staff console: the rights-request queue, one request's timeline, and the
decisions staff take on it. Every form carries a CSRF token."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import wraps

from flask import (
    Blueprint,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, PasswordField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from .. import job_queue
from ..access import service as access
from ..clock import utcnow
from ..db.scopes import reads, writes
from ..errors import DomainError
from ..extensions import client_key, db, limiter
from ..orders import watchdog
from ..rights import service as rights
from ..rights.models import FAILED, OPEN, PROCESSING, STATUSES
from . import no_store

bp = Blueprint("staff", __name__, url_prefix="/staff")

IDLE_LIMIT = timedelta(hours=8)
SIGN_IN_FAILED = (
    "That email address and password do not match an active staff account. "
    "After five wrong passwords in a row an account is locked for 15 minutes."
)
DUE_SOON = timedelta(days=7)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason (the requester is told)", validators=[DataRequired(), Length(max=2000)])


class ExtendForm(ReasonForm):
    months = IntegerField("Extend by (months)", validators=[DataRequired(), NumberRange(min=1, max=2)])


def staff_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        seen = session.get("staff_seen", 0)
        user = access.staff_session_user(session.get("staff_id"), session.get("staff_v"))
        if user is None or time.time() - seen > IDLE_LIMIT.total_seconds():
            session.clear()
            return redirect(url_for("staff.login", next=request.path))
        session["staff_seen"] = int(time.time())
        g.staff = user
        return view(*args, **kwargs)

    return wrapped


def _actor() -> str:
    return f"staff:{g.staff.id}"


@bp.route("/login", methods=["GET", "POST"])
@writes
@limiter.limit(
    "20 per minute", methods=["POST"], key_func=client_key, error_message="Too many sign-in attempts from here. Please wait a minute."
)
@no_store
def login():
    form = LoginForm()
    message = None
    if form.validate_on_submit():
        try:
            user = access.staff_login(email=form.email.data, password=form.password.data)
        except access.LockedOut:
            user = None
        db.session.commit()  # failed-attempt counters count too
        if user is not None:
            session.clear()
            session.update(staff_id=user.id, staff_v=user.session_version, staff_seen=int(time.time()))
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/staff") else url_for("staff.queue"), code=303)
        # One answer for a wrong password, an unknown address and a locked
        # account alike: the page must not tell who has an account.
        message = SIGN_IN_FAILED
    status = 401 if request.method == "POST" else 200
    return render_template("staff/login.html", form=form, message=message), status


@bp.post("/logout")
@writes
@staff_required
def logout():
    access.staff_logout(g.staff)
    db.session.commit()
    session.clear()
    return redirect(url_for("staff.login"), code=303)


@bp.get("")
@reads
@staff_required
@no_store
def queue():
    chosen = [s for s in request.args.getlist("status") if s in STATUSES] or list(OPEN)
    items = rights.list_requests(statuses=chosen)
    now = utcnow()
    return render_template("staff/queue.html", items=items, chosen=chosen, statuses=STATUSES, now=now, soon=now + DUE_SOON)


@bp.get("/requests/<int:request_id>")
@reads
@staff_required
@no_store
def detail(request_id: int):
    item = rights.get(request_id)
    current = rights.current_values(item)
    job = job_queue.latest_for_request(item.id) if item.status in (PROCESSING, FAILED) else None
    return render_template(
        "staff/request.html",
        item=item,
        job=job_queue.summary(job) if job else None,
        current=current,
        timeline=rights.timeline(item),
        reason_form=ReasonForm(),
        extend_form=ExtendForm(),
        now=utcnow(),
        soon=utcnow() + DUE_SOON,
    )


def _act(request_id: int, action, done: str):
    try:
        action()
        db.session.commit()
        flash(done, "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message + (" " + " ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items()) if exc.errors else ""), "error")
    return redirect(url_for("staff.detail", request_id=request_id), code=303)


@bp.post("/requests/<int:request_id>/approve")
@writes
@staff_required
def approve(request_id: int):
    return _act(request_id, lambda: rights.approve(request_id=request_id, actor=_actor()), "Approved: the correction is being applied.")


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
        lambda: rights.reject(request_id=request_id, reason=form.reason.data, actor=_actor()),
        "Rejected; the requester is told why.",
    )


@bp.post("/requests/<int:request_id>/extend")
@writes
@staff_required
def extend(request_id: int):
    form = ExtendForm()
    if not form.validate():
        flash("Extend by 1 or 2 months, with the reason the requester will be told.", "error")
        return redirect(url_for("staff.detail", request_id=request_id), code=303)
    return _act(
        request_id,
        lambda: rights.extend(request_id=request_id, months=form.months.data, reason=form.reason.data, actor=_actor()),
        "Extended; the requester is told the new date.",
    )


@bp.post("/requests/<int:request_id>/retry")
@writes
@staff_required
def retry(request_id: int):
    return _act(request_id, lambda: rights.retry(request_id=request_id, actor=_actor()), "Retrying.")


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
    try:
        watchdog.resolve_escalation(escalation_id=escalation_id, note=request.form.get("reason", ""), actor=_actor())
        db.session.commit()
        flash("Resolved.", "ok")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("staff.escalations"), code=303)
