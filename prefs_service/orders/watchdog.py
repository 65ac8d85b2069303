"""The delivery watchdog: an order paid but not commissioned within a day, or
commissioned but not delivered within PREFS_DELIVERY_SLA_SECONDS, is escalated
(an URGENT mail, and a webhook if configured) again and again, at any hour,
until staff resolve it or the order moves on."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import audit, outbox
from ..access import service as access
from ..clock import utcnow
from ..errors import NotFound
from ..extensions import db
from ..job_kinds import JobKind
from ..notices import service as notices
from .models import COMMISSIONING, PAID, Escalation, Order

COMMISSION_WITHIN = timedelta(hours=24)

LATE, NOT_COMMISSIONED = "delivery_late", "not_commissioned"
# The status an order is stuck in for each kind; once it leaves it, the escalation closes.
WAITING_IN = {LATE: COMMISSIONING, NOT_COMMISSIONED: PAID}


def watchdog(now: datetime | None = None) -> dict[str, int]:
    """Open escalations for late deliveries and uncommissioned payments, close
    the ones that resolved themselves, and notify again every
    PREFS_ESCALATION_REPEAT_SECONDS until staff resolve them, day or night."""
    now = now or utcnow()
    settings = current_app.config["PREFS"]
    problems = {
        LATE: sa.and_(Order.status == COMMISSIONING, Order.commissioned_at < now - timedelta(seconds=settings.delivery_sla_seconds)),
        NOT_COMMISSIONED: sa.and_(Order.status == PAID, Order.paid_at < now - COMMISSION_WITHIN),
    }
    open_ = {(e.order_id, e.kind): e for e in db.session.scalars(sa.select(Escalation).where(Escalation.resolved_at.is_(None)))}
    counts = {"opened": 0, "resolved": 0, "notified": 0}
    for kind, condition in problems.items():
        # One escalation per order and problem: once staff resolve it, it stays resolved.
        known = sa.select(Escalation.id).where(Escalation.order_id == Order.id, Escalation.kind == kind)
        for order_id in db.session.scalars(sa.select(Order.id).where(condition, ~sa.exists(known))):
            escalation = Escalation(order_id=order_id, kind=kind, opened_at=now)
            db.session.add(escalation)
            open_[(order_id, kind)] = escalation
            counts["opened"] += 1
    db.session.flush()
    repeat = timedelta(seconds=settings.escalation_repeat_seconds)
    for (order_id, kind), escalation in open_.items():
        if db.session.get_one(Order, order_id).status != WAITING_IN[kind]:
            escalation.resolved_at, escalation.resolved_by, escalation.resolution = now, "system", "the order moved on"
            counts["resolved"] += 1
        elif escalation.last_notified_at is None or escalation.last_notified_at <= now - repeat:
            _notify(escalation, now)
            counts["notified"] += 1
    return counts


def _notify(escalation: Escalation, now: datetime) -> None:
    settings = current_app.config["PREFS"]
    escalation.notified_count += 1
    escalation.last_notified_at = now
    order = db.session.get_one(Order, escalation.order_id)
    context = {
        "kind": escalation.kind,
        "reference": order.reference,
        "status": order.status,
        "system_name": order.system_name,
        "since": escalation.opened_at.strftime("%Y-%m-%d %H:%M UTC"),
        "count": escalation.notified_count,
        "url": f"{settings.base_url}/staff/escalations",
    }
    recipients = settings.escalation_emails or access.active_staff_emails()
    for address in recipients:
        notices.queue(
            kind="escalation",
            recipient=address,
            template="escalation",
            context=context,
            idempotency_key=f"escalation:{escalation.id}:{escalation.notified_count}:{address}",
        )
    if settings.escalation_webhook_url:
        outbox.defer(JobKind.ORDER_ESCALATION_WEBHOOK, {"escalation_id": escalation.id, **context})
    audit.record(
        "escalation.notified",
        actor="system",
        target_type="escalation",
        target_id=escalation.id,
        details={"count": escalation.notified_count},
    )


def post_escalation(payload: dict[str, Any]) -> None:
    """POST the escalation as JSON to PREFS_ESCALATION_WEBHOOK_URL; a failure retries the job."""
    import urllib.request

    url = current_app.config["PREFS"].escalation_webhook_url
    if not url:
        return
    body = json.dumps({"event": "prefs.escalation", "urgent": True, **payload}).encode()
    # The URL is an operator's setting, checked to be http(s) at start-up.
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status >= 300:
            raise RuntimeError(f"escalation webhook answered {response.status}")


def open_escalations() -> list[tuple[Escalation, Order]]:
    stmt = sa.select(Escalation, Order).join(Order, Order.id == Escalation.order_id).where(Escalation.resolved_at.is_(None))
    return [(escalation, order) for escalation, order in db.session.execute(stmt.order_by(Escalation.opened_at))]


def open_escalation_counts() -> dict[str, int]:
    """Open escalations by kind, every kind listed (the dashboard sums them; /metrics shows each)."""
    counts = dict.fromkeys(WAITING_IN, 0)
    rows = db.session.execute(sa.select(Escalation.kind, sa.func.count()).where(Escalation.resolved_at.is_(None)).group_by(Escalation.kind))
    for kind, count in rows:
        counts[kind] = count
    return counts


def resolve_escalation(*, escalation_id: int, note: str, actor: str) -> Escalation:
    escalation = db.session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound("No such escalation.")
    if escalation.resolved_at is None:
        escalation.resolved_at, escalation.resolved_by, escalation.resolution = utcnow(), actor, (note or "").strip()[:500] or None
        audit.record("escalation.resolved", actor=actor, target_type="escalation", target_id=escalation.id)
    return escalation
