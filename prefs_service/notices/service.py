"""Queue, render and deliver notices.

Queueing writes a notice row and a delivery job in the caller's transaction;
delivery renders the template and hands the message to the email channel.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import sqlalchemy as sa
from flask import current_app
from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from .. import hooks, outbox
from ..channels import email as email_channel
from ..clock import utcnow
from ..db.backend import backend
from ..extensions import db
from ..job_kinds import JobKind
from .models import FAILED, MARKETING, PENDING, SENT, TRANSACTIONAL, Notice

log = logging.getLogger(__name__)


_templates = Environment(
    loader=PackageLoader("prefs_service.notices", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def queue(
    *,
    kind: str,
    recipient: str,
    template: str,
    context: dict[str, Any],
    idempotency_key: str,
    subject_id: uuid.UUID | None = None,
    sender: str = TRANSACTIONAL,
    forget_after_send: bool = False,
) -> int:
    """Queue one message; a second call with the same key changes nothing.

    Returns the notice id (the existing one for a repeated key).
    """
    _templates.get_template(f"{template}.txt")  # fail now, not in a job, on a typo
    now = utcnow()
    notice_id = db.session.execute(
        backend()
        .insert(Notice.__table__)
        .values(
            kind=kind,
            idempotency_key=idempotency_key,
            subject_id=subject_id,
            recipient=recipient,
            sender=sender,
            template=template,
            context=context,
            status=PENDING,
            forget_after_send=forget_after_send,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Notice.__table__.c.id)
    ).scalar()
    if notice_id is None:  # queued before: the first one stands
        existing = db.session.scalar(sa.select(Notice.id).where(Notice.idempotency_key == idempotency_key))
        assert existing is not None
        return existing
    outbox.defer(JobKind.NOTICE_DELIVER, {"notice_id": notice_id})
    return int(notice_id)


def render(notice: Notice) -> EmailMessage:
    settings = current_app.config["PREFS"]
    # Every template may name the organisation and its support address; every mail ends with them.
    context = dict(notice.context, base_url=settings.base_url, **settings.public_face)
    subject = _templates.get_template(f"{notice.template}.subject.txt").render(context).strip()
    body = _templates.get_template(f"{notice.template}.txt").render(context)
    text = body.rstrip("\n") + "\n\n" + _templates.get_template("_footer.txt").render(context)
    try:  # an HTML part of its own includes _footer.html, as _layout.html does
        html = _templates.get_template(f"{notice.template}.html").render(context)
    except TemplateNotFound:  # most mails are plain text; give them a plain HTML twin
        html = _templates.get_template("_layout.html").render(context, paragraphs=[p for p in body.split("\n\n") if p.strip()])

    sender = settings.mail_from_marketing if notice.sender == MARKETING else settings.mail_from_transactional
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = notice.recipient
    message["Date"] = format_datetime(notice.created_at)
    # Stable across retries, so a receiver can drop a duplicate of the same notice.
    key_digest = hashlib.sha256(notice.idempotency_key.encode()).hexdigest()[:16]
    message["Message-ID"] = f"<notice-{notice.id}.{key_digest}@{domain}>"
    message["Auto-Submitted"] = "auto-generated" if notice.sender == TRANSACTIONAL else "no"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def deliver(*, notice_id: int) -> bool:
    """Send a pending notice and mark it sent; True if it went out.

    A permanent refusal by the mail server marks the notice failed, with the
    server's reason, and ends there: sending again would be refused again."""
    notice = db.session.get(Notice, notice_id, populate_existing=True, with_for_update=True)
    if notice is None or notice.status != PENDING:
        return False
    if not notice.recipient:
        raise ValueError(f"notice {notice_id} has no recipient")
    message = render(notice)
    try:
        email_channel.send(message, mail_url=current_app.config["PREFS"].mail_url)
    except email_channel.Refused as refusal:
        log.warning("notice %s (%s) refused for good: %s", notice.id, notice.kind, refusal.reason)
        notice.status = FAILED
        notice.failure_reason = refusal.reason
        _forget_what_was_for_sending(notice)
        return False
    notice.status = SENT
    notice.sent_at = utcnow()
    notice.message_id = message["Message-ID"]
    _forget_what_was_for_sending(notice)
    hooks.emit(hooks.NOTICE_SENT, notice=notice)  # in this transaction: orders mark a delivery done
    return True


def _forget_what_was_for_sending(notice: Notice) -> None:
    # The context held the body's links (download, set-password, verify…); once
    # the notice is settled, nobody with database access should be able to use them.
    notice.context = {}
    if notice.forget_after_send:
        notice.recipient = None


def oldest_unsent_at() -> datetime | None:
    """When the oldest notice still waiting to be sent was queued (None when none waits)."""
    oldest = db.session.scalar(sa.select(sa.func.min(Notice.created_at)).where(Notice.status == PENDING))
    return oldest if oldest is None or oldest.tzinfo is not None else oldest.replace(tzinfo=UTC)


def job_cancelled(*, job: Any, actor: str) -> None:
    """Hook: staff cancelled a delivery job, so its notice will not be sent:
    it ends failed, saying so, and forgets its links."""
    if job.kind != JobKind.NOTICE_DELIVER:
        return
    notice = db.session.get(Notice, job.payload.get("notice_id"), with_for_update=True)
    if notice is not None and notice.status == PENDING:
        notice.status = FAILED
        notice.failure_reason = f"not sent: its delivery was cancelled by {actor}"
        _forget_what_was_for_sending(notice)
