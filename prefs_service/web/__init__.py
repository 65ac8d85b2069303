"""HTML pages: what a person sees after clicking a link in a mail."""

from __future__ import annotations

import hashlib
from functools import wraps

from flask import Blueprint, Flask, abort, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .. import channels, consent, tokens
from ..extensions import client_key, limiter
from ..subjects.identifiers import identifier_hash
from ..subjects.models import Subject

FRIENDLY = {
    400: "We could not understand that request.",
    404: "There is nothing at this address.",
    405: "That action is not available here.",
    413: "That was more than we can accept in one go.",
    429: "Too many attempts. Please wait a few minutes and try again.",
    500: "Something went wrong on our side and nothing was changed. Please try again later.",
    503: "We cannot reach our records for a moment. Please try again in a few seconds.",
}


def error_page(error: HTTPException):
    status = error.code or 500
    message: str | None
    if isinstance(error, CSRFError):
        message = "This form has expired or was sent from elsewhere. Please reload the page and try again."
    elif status in (400, 404, 409, 429) and error.description and error.description != type(error).description:
        message = error.description  # a message written for people, passed to abort()
    else:
        message = FRIENDLY.get(status, error.description)
    return render_template("error.html", status=status, title=HTTP_STATUS_CODES.get(status, "Error"), message=message), status


# Shared templates (base layout, error page) and the stylesheet for every page
# blueprint. Not under /static: the app's own (empty) static route holds that.
pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")


def subject_from_token(purpose: str, token: str, not_valid: str) -> Subject:
    """The person a signed link names, or a 404 page saying the link is not valid."""
    subject = tokens.row_for(purpose, token, Subject, "s")
    if subject is None or subject.erased_at is not None:
        abort(404, description=not_valid)
    return subject


def evidence() -> consent.Evidence:
    return consent.evidence_from(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))


def address_key() -> str:
    """Rate-limit key per address, by keyed hash: limiter storage never sees it."""
    raw = (request.form.get("email") or "").strip()
    try:
        canonical = channels.normalize("email", raw)
    except channels.InvalidIdentifier:
        canonical = raw.lower()
    return "address:" + hashlib.sha256(identifier_hash("email", canonical)).hexdigest()[:32]


def public_form_limits(view):
    """The limits every public form carries: per client (its address kept only
    as a keyed hash) and per email address given."""
    view = limiter.limit(
        "5 per hour", methods=["POST"], key_func=address_key, error_message="Too many requests for this address. Please try again later."
    )(view)
    return limiter.limit(
        "10 per hour", methods=["POST"], key_func=client_key, error_message="Too many requests from here. Please try again in an hour."
    )(view)


def no_store(view):
    """Pages behind signed links are personal: never cached. (Like every page, they
    send their URL as a referrer to their own origin only: see security_headers.)"""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = make_response(view(*args, **kwargs))
        response.headers["Cache-Control"] = "no-store"
        return response

    return wrapped


def init_app(app: Flask) -> None:
    from . import preferences, privacy_requests, problems, purchase, staff, staff_jobs, unsubscribe

    app.register_blueprint(pages)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(preferences.bp)
    app.register_blueprint(privacy_requests.bp)
    app.register_blueprint(purchase.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(staff_jobs.bp)
    app.register_blueprint(problems.bp)
