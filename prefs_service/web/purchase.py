"""After payment: commission the system, then choose its password."""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, render_template, request, url_for

from .. import links
from ..db.scopes import writes
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..orders import service as orders
from ..orders.models import COMMISSIONING, DELIVERED, PAID, PAYMENT_FAILED
from . import honour_gpc, no_store

bp = Blueprint("purchase", __name__, url_prefix="/purchase")

NOT_VALID = (
    "This link is not valid or has expired. If you paid, the receipt we mailed you has a link to set up your system; "
    "if no receipt arrived, write to {support} with the date and amount of your payment."
)
SET_UP_LINK_NOT_VALID = "This link is not valid or has expired (it works for 24 hours). Write to {support} for a new one."
CONFIRM_REFRESH_SECONDS = 3
CONFIRM_REFRESHES = 20  # a minute of refreshing; then the page stops and says what to do
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")  # a Stripe Checkout Session id


def _submit(action) -> dict:
    """Run a form's action and commit: the fields to fix ({} when it went through),
    or a 409 page when the order has moved on."""
    try:
        action()
        db.session.commit()
        return {}
    except Invalid as exc:
        db.session.rollback()
        return exc.errors
    except Conflict as exc:
        db.session.rollback()
        abort(409, description=exc.message)


def _honour_gpc(order) -> None:
    """The customer's Global Privacy Control signal, committed at once (a refused form rolls back)."""
    if order is not None and honour_gpc(order.subject_id):
        db.session.commit()


def _page(order):
    """The commissioning page for wherever the order stands; POST takes the form."""
    _honour_gpc(order)
    errors, values = {}, {}
    if order is None or order.status not in (PAID, COMMISSIONING, DELIVERED, PAYMENT_FAILED):
        return _confirming(order, session_id=None)
    if request.method == "POST" and order.status == PAID:
        values = {"username": request.form.get("username", ""), "system_name": request.form.get("system_name", "")}
        errors = _submit(lambda: orders.commission(order=order, **values))
    status = 400 if errors else 200
    return render_template("purchase/commission.html", order=order, errors=errors, values=values), status


@bp.route("/complete", methods=["GET", "POST"])
@writes
@no_store
def complete():
    """Where Stripe sends the customer back (success_url …/purchase/complete?session_id={CHECKOUT_SESSION_ID})."""
    session_id = request.args.get("session_id", "")
    if not SESSION_ID.fullmatch(session_id):
        abort(404, description=_with_support(NOT_VALID))
    order = orders.order_for_session(session_id)
    if order is not None and not orders.returning_from_checkout(order):
        # The session id is not a secret for ever: later, only the mailed link works.
        abort(404, description=_with_support(NOT_VALID))
    if order is None or order.status not in (PAID, COMMISSIONING, DELIVERED, PAYMENT_FAILED):
        return _confirming(order, session_id=session_id)
    return _page(order)


def _confirming(order, *, session_id: str | None):
    """Back from Stripe before its word reached us (no order yet), or a payment
    the bank has not confirmed: refresh for a minute, counting in the URL, then
    stop and say what to do. An order we never heard of by then is a 404."""
    waited = max(0, request.args.get("waited", 0, type=int))
    if session_id and waited < CONFIRM_REFRESHES:
        refresh_url = url_for(".complete", session_id=session_id, waited=waited + 1)
        return render_template("purchase/confirming.html", refresh=CONFIRM_REFRESH_SECONDS, refresh_url=refresh_url), 200
    check_again = url_for(".complete", session_id=session_id) if session_id else None
    if order is None:
        return render_template("purchase/unknown_payment.html", check_again=check_again), 404
    return render_template("purchase/confirming.html", refresh=None, order=order, check_again=check_again), 200


def _with_support(message: str) -> str:
    return message.format(support=current_app.config["PREFS"].support_email)


def _order_or_404(purpose: str, token: str, not_valid: str):
    try:
        return orders.order_from_token(purpose, token)
    except NotFound:
        abort(404, description=_with_support(not_valid))


@bp.route(links.COMMISSION_ROUTE.removeprefix("/purchase"), methods=["GET", "POST"])
@writes
@no_store
def commission(token: str):
    return _page(_order_or_404("commission", token, NOT_VALID))


@bp.route(links.SET_PASSWORD_ROUTE.removeprefix("/purchase"), methods=["GET", "POST"])
@writes
@no_store
def set_password(token: str):
    order = _order_or_404("set-password", token, SET_UP_LINK_NOT_VALID)
    _honour_gpc(order)
    errors, done = {}, order.password_set_at is not None
    if request.method == "POST":
        form = request.form
        errors = _submit(lambda: orders.set_password(order=order, password=form.get("password", ""), confirm=form.get("confirm", "")))
        done = not errors
    return render_template("purchase/set_password.html", order=order, errors=errors, done=done), (400 if errors else 200)
