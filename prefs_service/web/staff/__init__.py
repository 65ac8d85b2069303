"""The staff console: sign-in, the dashboard, the rights-request queue, people,
and (for admins) staff accounts, API keys and the audit log. Every form
carries a CSRF token; every page needs a signed-in staff member, and the admin
pages an admin (403 for a reviewer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import TypeVar

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from ...access import service as access
from ...access.models import ADMIN
from ...db.scopes import writes
from ...errors import DomainError
from ...extensions import client_key, db, limiter
from ...rights.models import STATUS_LABELS, STEP_LABELS, TYPE_LABELS
from .. import no_store

bp = Blueprint("staff", __name__, url_prefix="/staff")
T = TypeVar("T")

IDLE_LIMIT = timedelta(hours=8)
SIGN_IN_FAILED = (
    "That email address and password do not match an active staff account. "
    "After five wrong passwords in a row an account is locked for 15 minutes."
)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def staff_required(view):
    """Any active staff member; others are sent to the sign-in page."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        seen = session.get("staff_seen", 0)
        user = access.staff_session_user(session.get("staff_id"), session.get("staff_v"))
        if user is None or time.time() - seen > IDLE_LIMIT.total_seconds():
            session.clear()
            # Back to the page asked for, filters and all; a form sent after the
            # session ended cannot be replayed, so it starts from the dashboard.
            back = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("staff.login", next=back) if back else url_for("staff.login"))
        session["staff_seen"] = int(time.time())
        g.staff = user
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    """An active admin; a reviewer is refused (403)."""

    @wraps(view)
    def admin_only(*args, **kwargs):
        if g.staff.role != ADMIN:
            abort(403, description="Only an admin may use this page. Ask an admin if you need it.")
        return view(*args, **kwargs)

    return staff_required(admin_only)


def actor() -> str:
    """How the audit trail records the signed-in staff member."""
    return f"staff:{g.staff.id}"


_actor = actor  # the name the console used before it became a package


def number_arg(name: str) -> int | None:
    """A positive whole number from the query string, or None for anything else
    (a hand-edited link falls back to the first page, never to a 500)."""
    raw = request.args.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # fits a 64-bit id
        return None
    return int(raw) or None


def flash_error(error: DomainError) -> None:
    details = " ".join(f"{field.replace('_', ' ')}: {', '.join(map(str, messages))}." for field, messages in error.errors.items())
    flash(f"{error.message} {details}".strip(), "error")


def commit(action: Callable[[], T], done: str | Callable[[T], str]) -> bool:
    """Run a staff action and commit it, saying `done` (or what `done` makes of
    its result); a refusal is rolled back and said instead. Returns whether it went through."""
    try:
        result = action()
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash_error(exc)
        return False
    flash(done(result) if callable(done) else done, "ok")
    return True


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " "))


def age(span: timedelta | None) -> str:
    """A duration as people say it: "4 minutes", "3 hours", "2 days"."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "under a minute"


@bp.context_processor
def labels():
    return {"status_label": status_label, "type_labels": TYPE_LABELS, "step_labels": STEP_LABELS, "is_admin": _is_admin(), "age": age}


def _is_admin() -> bool:
    staff = g.get("staff")
    return staff is not None and staff.role == ADMIN


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
            safe = target.startswith("/staff") and not target.startswith("/staff/login")
            return redirect(target if safe else url_for("staff.dashboard"), code=303)
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


from . import accounts, dashboard, jobs, people, reports, requests  # noqa: E402, F401  (their routes join bp)
