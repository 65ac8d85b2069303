"""HTML pages: what a person sees after clicking a link in a mail."""

from __future__ import annotations

import hashlib
import uuid
from functools import wraps

from flask import Blueprint, Flask, current_app, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from wtforms.validators import ValidationError

from .. import channels, consent, tokens
from ..extensions import client_key, db, limiter
from ..orders import plans
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


# Page headings (and titles) for people, where the HTTP reason phrase would not do.
HEADINGS = {
    400: "We could not use that",
    404: "Page not found",
    405: "Not available here",
    409: "This cannot be done now",
    413: "Too much at once",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Please try again in a moment",
}


class LinkNotValid(NotFound):
    """A link from one of our mails that does not work: its page offers the way on
    (by default, a fresh link to the person's preferences by email)."""

    def __init__(self, description: str, *, next_step: tuple[str, str, str] | None = None) -> None:
        super().__init__(description)
        # (what to say, the button's words, the endpoint it leads to)
        self.next_step = next_step or (
            "We can email you a new link to manage what we send you.",
            "Email me a new link",
            "preferences.request_link",
        )


def error_page(error: HTTPException):
    status = error.code or 500
    message: str | None
    title = "This link does not work" if isinstance(error, LinkNotValid) else HEADINGS.get(status, HTTP_STATUS_CODES.get(status, "Error"))
    if isinstance(error, CSRFError):
        message = "This form has expired or was sent from elsewhere. Please reload the page and try again."
    elif status in (400, 404, 409, 429) and error.description and error.description != type(error).description:
        message = error.description  # a message written for people, passed to abort()
    else:
        message = FRIENDLY.get(status, error.description)
    next_step = error.next_step if isinstance(error, LinkNotValid) else None
    page = render_template("error.html", status=status, title=title, message=message, next_step=next_step)
    return page, status


# Shared templates (base layout, error page) and the stylesheet for every page
# blueprint. Not under /static: the app's own (empty) static route holds that.
pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")


@pages.app_context_processor
def public_face() -> dict[str, str]:
    """The organisation's name, support address and privacy policy, for every template (staff pages too)."""
    return current_app.config["PREFS"].public_face


# Every template (staff pages too) names channels, purposes and plans by the labels people read.
@pages.app_template_global()
def channel_label(channel: str) -> str:
    known = channels.CHANNELS.get(channel)
    return known.label if known else channel


@pages.app_template_global()
def purpose_label(channel: str, purpose: str) -> str:
    known = channels.CHANNELS.get(channel)
    spec = known.purpose(purpose) if known else None
    return spec.label if spec else purpose.replace("_", " ").capitalize()


@pages.app_template_global()
def plan_label(code: str | None) -> str | None:
    return plans.plan_label(code)


def subject_from_token(purpose: str, token: str, not_valid: str) -> Subject:
    """The person a signed link names, or a 404 page saying the link is not valid."""
    subject = tokens.row_for(purpose, token, Subject, "s")
    if subject is None or subject.erased_at is not None:
        raise LinkNotValid(not_valid)
    return subject


def an_email_address(form, field) -> None:
    """WTForms validator: an address the email channel accepts (an empty optional field passes)."""
    if not field.data:
        return
    try:
        channels.normalize("email", field.data)
    except channels.InvalidIdentifier:
        raise ValidationError("That is not an email address. Check it and try again: it looks like name@example.com.") from None


def evidence() -> consent.Evidence:
    return consent.evidence_from(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))


def gpc_signal() -> bool:
    return request.headers.get("Sec-GPC", "").strip() == "1"


def honour_gpc(person: Subject | uuid.UUID | None) -> bool:
    """Every page that knows the person (or their id) honours their browser's
    Global Privacy Control signal (the rule is consent.honour_gpc's); the
    caller commits. Without the header nothing is read."""
    if person is None or "Sec-GPC" not in request.headers:
        return False
    subject = db.session.get(Subject, person) if isinstance(person, uuid.UUID) else person
    if subject is None or subject.erased_at is not None:
        return False
    return consent.honour_gpc(subject=subject, header=request.headers["Sec-GPC"], evidence=evidence())


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
    from . import home, preferences, privacy_requests, problems, purchase, staff, unsubscribe, well_known

    app.register_blueprint(pages)
    app.register_blueprint(home.bp)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(preferences.bp)
    app.register_blueprint(privacy_requests.bp)
    app.register_blueprint(purchase.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(problems.bp)
    app.register_blueprint(well_known.bp)
