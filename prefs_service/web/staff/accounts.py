"""Admin pages: staff accounts (create, disable, enable, unlock, reset the
password, change the role), API keys (list, revoke) and the audit log."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from ... import audit
from ...access import service as access
from ...access.models import ADMIN, ROLES
from ...clock import utcnow
from ...db.scopes import reads, writes
from ...errors import DomainError
from ...extensions import db
from .. import no_store
from . import actor, admin_required, bp, commit, flash_error, number_arg

AUDIT_PAGE = 50


@bp.get("/accounts")
@reads
@admin_required
@no_store
def accounts():
    return render_template("staff/accounts.html", users=access.list_staff(), roles=ROLES, now=utcnow())


@bp.post("/accounts")
@writes
@admin_required
@no_store
def create_account():
    password = access.new_password()
    try:
        user = access.create_staff(email=request.form.get("email", ""), password=password, role=request.form.get("role", ""), actor=actor())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash_error(exc)
        return redirect(url_for("staff.accounts"), code=303)
    # Shown on this answer only (never in a redirect's cookie), for the admin to hand over.
    return render_template("staff/password.html", user=user, password=password, created=True)


def _account_action(user_id: int, change, done: str):
    def act():
        user = access.staff_by_id(user_id)
        return user, change(user)

    commit(act, lambda outcome: done.format(email=outcome[0].email) if outcome[1] else f"Nothing to change for {outcome[0].email}.")
    # An admin who just made themselves a reviewer may no longer see the accounts.
    return redirect(url_for("staff.accounts" if g.staff.role == ADMIN else "staff.dashboard"), code=303)


@bp.post("/accounts/<int:user_id>/disable")
@writes
@admin_required
def disable_account(user_id: int):
    return _account_action(
        user_id, lambda user: access.disable_staff(user=user, actor=actor()), "{email} is disabled and signed out everywhere."
    )


@bp.post("/accounts/<int:user_id>/enable")
@writes
@admin_required
def enable_account(user_id: int):
    return _account_action(user_id, lambda user: access.enable_staff(user=user, actor=actor()), "{email} may sign in again.")


@bp.post("/accounts/<int:user_id>/unlock")
@writes
@admin_required
def unlock_account(user_id: int):
    return _account_action(user_id, lambda user: access.unlock_staff(user=user, actor=actor()), "{email} is unlocked.")


@bp.post("/accounts/<int:user_id>/role")
@writes
@admin_required
def change_role(user_id: int):
    role = request.form.get("role", "")
    return _account_action(
        user_id, lambda user: access.set_role(user=user, role=role, actor=actor()), "{email} is now " + role.replace("_", " ") + "."
    )


@bp.post("/accounts/<int:user_id>/reset-password")
@writes
@admin_required
@no_store
def reset_account_password(user_id: int):
    password = access.new_password()
    try:
        user = access.staff_by_id(user_id)
        access.reset_password(user=user, password=password, actor=actor())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash_error(exc)
        return redirect(url_for("staff.accounts"), code=303)
    return render_template("staff/password.html", user=user, password=password, created=False)


@bp.get("/api-keys")
@reads
@admin_required
@no_store
def api_keys():
    return render_template("staff/api_keys.html", keys=access.list_keys())


@bp.post("/api-keys/<prefix>/revoke")
@writes
@admin_required
def revoke_api_key(prefix: str):
    commit(lambda: access.revoke(prefix=prefix, actor=actor()), lambda key: f"The key “{key.name}” is revoked.")
    return redirect(url_for("staff.api_keys"), code=303)


@bp.get("/audit")
@reads
@admin_required
@no_store
def audit_log():
    action, who = request.args.get("action", ""), request.args.get("actor", "")
    events = audit.page(action=action or None, actor=who or None, before=number_arg("before"), limit=AUDIT_PAGE + 1)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    actors = audit.actors()
    names = access.actor_names([e.actor for e in events] + actors)
    return render_template(
        "staff/audit.html",
        events=events,
        names=names,
        actions=audit.actions(),
        actors=sorted(actors, key=lambda a: names[a].lower()),
        action=action,
        actor=who,
        older=events[-1].id if more else None,
    )
