"""The rights requests' periodic duties: expire requests never confirmed, and
remind and alert staff as a due date nears and passes (jobs/rights.py runs them)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ..access import service as access
from ..clock import utcnow
from ..extensions import db
from ..notices import service as notices
from .models import AWAITING_VERIFICATION, EXPIRED, OPEN, RightsRequest
from .service import transition

VERIFY_WITHIN = timedelta(days=14)
REMIND_BEFORE = timedelta(days=7)
ALERT_BEFORE = timedelta(days=3)


def expire_unverified(now: datetime | None = None) -> int:
    now = now or utcnow()
    stale = db.session.scalars(
        sa.select(RightsRequest).where(RightsRequest.status == AWAITING_VERIFICATION, RightsRequest.created_at < now - VERIFY_WITHIN)
    ).all()
    for request in stale:
        transition(request, EXPIRED, actor="system")
    return len(stale)


def alert_deadlines(now: datetime | None = None) -> int:
    """Remind staff seven days before a due date, alert them three days before,
    and once it has passed: each once per due date (an extension starts over)."""
    now = now or utcnow()
    staff = access.active_staff_emails()
    sent = 0
    open_requests = sa.select(RightsRequest).where(RightsRequest.status.in_(OPEN), RightsRequest.due_at.is_not(None))
    # The most pressing first: a request past due is not also "due in 3 days".
    for request in db.session.scalars(open_requests.where(RightsRequest.overdue_alerted_at.is_(None), RightsRequest.due_at < now)):
        _tell_staff(staff, request, "staff_overdue")
        request.overdue_alerted_at = request.three_day_alert_sent_at = request.reminder_sent_at = now
        sent += 1
    for request in db.session.scalars(
        open_requests.where(RightsRequest.three_day_alert_sent_at.is_(None), RightsRequest.due_at < now + ALERT_BEFORE)
    ):
        _tell_staff(staff, request, "staff_due_soon")
        request.three_day_alert_sent_at = request.reminder_sent_at = now
        sent += 1
    for request in db.session.scalars(
        open_requests.where(RightsRequest.reminder_sent_at.is_(None), RightsRequest.due_at < now + REMIND_BEFORE)
    ):
        _tell_staff(staff, request, "staff_reminder")
        request.reminder_sent_at = now
        sent += 1
    return sent


def _tell_staff(staff: list[str], request: RightsRequest, kind: str) -> None:
    assert request.due_at is not None  # only verified requests have deadlines to tell of
    for address in staff:
        notices.queue(
            kind=kind,
            recipient=address,
            template=kind,
            context={
                "reference": request.reference,
                "type": request.type,
                "status": request.status,
                "due_at": request.due_at.strftime("%-d %B %Y"),
                "url": f"{current_app.config['PREFS'].base_url}/staff/requests/{request.id}",
            },
            idempotency_key=f"{kind}:{request.reference}:{request.due_at.date().isoformat()}:{address}",
        )
