"""The unsubscribe URL in every marketing mail (RFC 8058 one-click included).

GET only shows what would stop: corporate link scanners open every link, so a
GET must never change anything. POST withdraws at once, with no cookie, session,
CSRF token or login: the signed token in the URL is the whole authority.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, render_template, request

from .. import channels, consent, links, tokens
from ..db.scopes import writes
from ..errors import NotFound
from ..extensions import csrf, db
from ..subjects.models import Subject
from . import LinkNotValid, evidence, honour_gpc, no_store

bp = Blueprint("unsubscribe", __name__)

NOT_VALID = "This unsubscribe link is not valid: it may have been cut short or changed. Nothing was changed."
ONE_CLICK_BODY = ("List-Unsubscribe", "One-Click")


def _target(token: str) -> tuple[uuid.UUID, channels.Channel, channels.Purpose]:
    """What a link names, from the token alone (whether the person exists is the service's to say)."""
    try:
        payload = tokens.verify("unsubscribe", token)
        subject_id = uuid.UUID(str(payload.get("s")))
    except (tokens.InvalidToken, ValueError):
        raise LinkNotValid(NOT_VALID) from None
    named_channel, named_purpose = payload.get("c"), payload.get("p")
    channel = channels.CHANNELS.get(named_channel) if isinstance(named_channel, str) else None
    purpose = channel.purpose(named_purpose) if channel is not None and isinstance(named_purpose, str) else None
    if channel is None or purpose is None:
        raise LinkNotValid(NOT_VALID)
    return subject_id, channel, purpose


@bp.get(links.UNSUBSCRIBE_ROUTE)
@writes  # a Global Privacy Control signal is recorded; the unsubscribe itself needs the POST
@no_store
def confirm(token: str):
    return _confirm_page(*_target(token))


def _confirm_page(subject_id: uuid.UUID, channel: channels.Channel, purpose: channels.Purpose, *, not_yet: bool = False):
    """The page with the Unsubscribe button; `not_yet` when a POST could not be taken as a choice."""
    subject = db.session.get(Subject, subject_id)
    if subject is None or subject.erased_at is not None:
        raise LinkNotValid(NOT_VALID)
    if honour_gpc(subject):
        db.session.commit()
    page = render_template(
        "unsubscribe.html", channel=channel, purpose=purpose, done=False, not_yet=not_yet, preferences_url=links.preferences_url(subject_id)
    )
    return page, (400 if not_yet else 200)


@bp.post(links.UNSUBSCRIBE_ROUTE)
@writes
@csrf.exempt
@no_store
def unsubscribe(token: str):
    subject_id, channel, purpose = _target(token)
    form = request.form  # application/x-www-form-urlencoded and multipart/form-data alike
    if form.get(ONE_CLICK_BODY[0]) == ONE_CLICK_BODY[1]:
        source = "one_click"
    elif form.get("confirm") == "unsubscribe":
        source = "unsubscribe_page"
    else:
        # Neither a mailbox provider's one-click (RFC 8058) nor our button: a mail program
        # that left out the body, or a browser re-sending a form. A person sees the button;
        # a program reads the 400 and the line addressed to it. Nothing changes.
        return _confirm_page(subject_id, channel, purpose, not_yet=True)
    try:
        consent.unsubscribe(subject_id=subject_id, channel=channel.name, purpose=purpose.name, source=source, evidence=evidence())
    except NotFound:
        raise LinkNotValid(NOT_VALID) from None
    honour_gpc(subject_id)
    db.session.commit()
    if source == "one_click":
        # A mailbox provider's request, not a person's: a short answer is all it reads.
        return current_app.response_class(f"Unsubscribed from {purpose.label.lower()}.\n", mimetype="text/plain")
    return render_template(
        "unsubscribe.html", channel=channel, purpose=purpose, done=True, preferences_url=links.preferences_url(subject_id)
    )
