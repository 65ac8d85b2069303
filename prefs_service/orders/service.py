"""Purchases: Stripe events in, orders forward, receipts, commissioning,
delivery, the delivery watchdog, partner sales and the purchase profile.

From Stripe we keep an allow-list of fields and never the payload: no card
number, last4, brand, expiry, fingerprint or CVC reaches the database or logs.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import stripe
from flask import current_app

from .. import audit, links, outbox, references, tokens
from ..access import service as access
from ..consent import service as consent
from ..errors import Conflict, DomainError, Invalid, NotFound
from ..extensions import db, dialect_insert, utcnow
from ..notices import service as notices
from ..partners import service as partners
from ..partners.models import Disclosure, Partner
from ..subjects import service as subjects
from ..subjects.models import Subject
from .models import (
    CANCELLED,
    COMMISSIONING,
    DELIVERED,
    PAID,
    PAYMENT_FAILED,
    STATUS_ORDER,
    Escalation,
    Order,
    Payment,
    StripeEvent,
)
from .provisioning import provisioner

WEBHOOK_TOLERANCE_SECONDS = 300
COMMISSION_WITHIN = timedelta(hours=24)
NAME_RULE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,28})[a-z0-9]")
MIN_PASSWORD_LENGTH = 12
PROVISION_JOB = "orders.provision"
APPLY_JOB = "orders.apply_event"
ESCALATION_WEBHOOK_JOB = "orders.escalation_webhook"


class BadSignature(DomainError):
    """The webhook's Stripe-Signature is missing, wrong or too old."""


class NotConfigured(DomainError):
    """STRIPE_WEBHOOK_SECRET is not set."""


# --- webhook ------------------------------------------------------------------------------


def verify_webhook(payload: bytes, header: str | None) -> dict:
    """The event, if the signature over the raw body is right and at most five minutes old."""
    secret = current_app.config["PREFS"].stripe_webhook_secret
    if not secret:
        raise NotConfigured("Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET.")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        raise BadSignature("The Stripe-Signature header does not match this body, or is older than five minutes.") from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise BadSignature("The body is not a Stripe event: it is not JSON.") from None
    except RecursionError:  # signed, but nested past what the parser reads
        raise BadSignature("The body is not a Stripe event: it is nested too deeply.") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise BadSignature("The body is not a Stripe event.")
    if not isinstance(event.get("data", {}), dict):
        raise BadSignature("The body is not a Stripe event: `data` must be an object.")
    # Both are stored as text: PostgreSQL refuses NUL, and UTF-8 cannot hold a lone surrogate.
    if any("\x00" in event[key] or event[key].encode("utf-8", "replace").decode() != event[key] for key in ("id", "type")):
        raise BadSignature("The body is not a Stripe event: its id and type must be plain text.")
    return event


def accept_event(event: dict) -> str:
    """Accept one verified event in the caller's transaction: "accepted",
    "duplicate" or "ignored" (a type we do not act on).

    The event id is the key: when Stripe delivers an event twice, even at the
    same moment, the second insert waits for the first and finds it. What we act
    on is an allow-list of the event's fields, applied by a job (so the answer
    to Stripe is quick); the job clears them in the transaction that applies them."""
    handled = event["type"] in EVENT_HANDLERS
    obj = (event.get("data") or {}).get("object")
    if handled and not isinstance(obj, dict):
        raise Invalid("The event has no data.object.", errors={"data": ["missing object"]})
    inserted = db.session.execute(
        dialect_insert(StripeEvent.__table__)
        .values(id=event["id"], type=event["type"], data=_allowed(obj) if handled else None, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(StripeEvent.__table__.c.id)
    ).scalar()
    if inserted is None:
        return "duplicate"
    if not handled:
        return "ignored"
    outbox.defer(APPLY_JOB, {"event_id": event["id"]})
    return "accepted"


def apply_event(*, event_id: str) -> None:
    """Apply an accepted event once (job)."""
    row = db.session.get(StripeEvent, event_id, with_for_update=True)
    if row is None or row.applied_at is not None:
        return
    EVENT_HANDLERS[row.type](dict(row.data or {}))
    row.applied_at = utcnow()
    row.data = None


# The only fields of a Stripe object we ever read; everything else (card
# details above all) is dropped before anything is stored.
_ALLOWED = {
    "id", "subscription", "customer", "payment_intent", "amount_total", "amount_paid", "currency", "payment_status",
    "mode", "client_reference_id", "customer_email", "customer_name", "billing_reason",
}  # fmt: skip
_ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")
_ALLOWED_NESTED = {
    "metadata": ("plan", "partner"),
    "customer_details": ("email", "name", "address"),
    "customer_address": _ADDRESS,
    "status_transitions": ("paid_at",),
}


def _allowed(obj: dict) -> dict:
    kept = {key: obj[key] for key in _ALLOWED if key in obj and not isinstance(obj[key], dict | list)}
    for key, fields in _ALLOWED_NESTED.items():
        if isinstance(obj.get(key), dict):
            kept[key] = {field: obj[key][field] for field in fields if field in obj[key]}
    details = kept.get("customer_details") or {}
    if isinstance(details.get("address"), dict):
        details["address"] = {field: details["address"].get(field) for field in _ADDRESS}
    subscription = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if subscription and "subscription" not in kept:
        kept["subscription"] = subscription
    return kept


def _lock_purchase(key: str) -> None:
    """Serialise concurrent events about one purchase (SQLite serialises all writers)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def _order_for(*, session_id: str | None = None, subscription_id: str | None = None) -> Order:
    """The order for a checkout session or subscription, created on first sight.
    A subscription's checkout session and its first invoice are one purchase."""
    _lock_purchase(subscription_id or session_id)
    clauses = []
    if session_id:
        clauses.append(Order.stripe_checkout_session_id == session_id)
    if subscription_id:
        clauses.append(Order.stripe_subscription_id == subscription_id)
    order = db.session.scalar(sa.select(Order).where(sa.or_(*clauses)).limit(1))
    if order is None:
        order = Order(reference=references.new("ORD"))
        db.session.add(order)
    order.stripe_checkout_session_id = order.stripe_checkout_session_id or session_id
    order.stripe_subscription_id = order.stripe_subscription_id or subscription_id
    return order


def advance(order: Order, status: str) -> bool:
    """Move the order forward; an event that would move it back is ignored."""
    if STATUS_ORDER.index(status) <= STATUS_ORDER.index(order.status or STATUS_ORDER[0]):
        return False
    audit.record("order.status", actor="stripe", target_type="order", target_id=order.reference, details={"from": order.status, "to": status})
    order.status = status
    return True


def _stamp(seconds) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int) else utcnow()


def _attach_customer(order: Order, *, email: str | None, name: str | None, address: dict | None) -> None:
    if order.subject_id is None and email:
        try:
            subject, _ = subjects.resolve(ref={"email": email}, actor="stripe")
        except DomainError:
            subject = None  # an address we cannot use; the order stands without a person
        order.subject_id = subject.id if subject else None
    if order.subject_id and _keeps_profile(order.subject_id):
        order.billing_name = order.billing_name or (name or None)
        order.billing_address = order.billing_address or _one_line(address)


def _one_line(address: dict | None) -> str | None:
    if not isinstance(address, dict):
        return None
    parts = [address.get(k) for k in _ADDRESS]
    return ", ".join(str(p) for p in parts if p) or None


def _keeps_profile(subject_id: uuid.UUID) -> bool:
    return consent.check(channel="profile", purpose="profile_enrichment", key="subject_id", value=str(subject_id)).allowed


def _partner_of(obj: dict) -> str | None:
    code = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("partner")
    return str(code)[:40] if code else None


def _checkout_session(session: dict, *, force_paid: bool = False) -> None:
    order = _order_for(session_id=session.get("id"), subscription_id=session.get("subscription"))
    order.stripe_customer_id = order.stripe_customer_id or session.get("customer")
    order.stripe_payment_intent_id = order.stripe_payment_intent_id or session.get("payment_intent")
    order.amount = order.amount if order.amount is not None else session.get("amount_total")
    order.currency = order.currency or (session.get("currency") or "").lower() or None
    order.plan = order.plan or (session.get("metadata") or {}).get("plan") or session.get("mode")
    order.partner_code = order.partner_code or _partner_of(session)
    details = session.get("customer_details") or {}
    _attach_customer(order, email=details.get("email") or session.get("customer_email"), name=details.get("name"), address=details.get("address"))
    db.session.flush()
    if force_paid or session.get("payment_status") in ("paid", "no_payment_required"):
        if not session.get("subscription") and session.get("amount_total"):
            _record_payment(order, stripe_id=session["id"], amount=session["amount_total"], currency=order.currency, kind="purchase", paid_at=utcnow())
        _paid(order)


def _async_failed(session: dict) -> None:
    order = _order_for(session_id=session.get("id"), subscription_id=session.get("subscription"))
    db.session.flush()
    advance(order, PAYMENT_FAILED)


def _invoice_paid(invoice: dict) -> None:
    subscription = invoice.get("subscription")  # _allowed() also finds it under parent.subscription_details
    if not subscription:
        return  # a one-off invoice: its checkout session is the purchase
    order = _order_for(subscription_id=subscription)
    first = invoice.get("billing_reason") == "subscription_create"
    if first:
        order.amount = order.amount if order.amount is not None else invoice.get("amount_paid")
        order.currency = order.currency or (invoice.get("currency") or "").lower() or None
        order.stripe_customer_id = order.stripe_customer_id or invoice.get("customer")
        order.partner_code = order.partner_code or (invoice.get("metadata") or {}).get("partner")
        _attach_customer(order, email=invoice.get("customer_email"), name=invoice.get("customer_name"), address=invoice.get("customer_address"))
    db.session.flush()
    paid_at = _stamp((invoice.get("status_transitions") or {}).get("paid_at"))
    _record_payment(
        order, stripe_id=invoice["id"], amount=invoice.get("amount_paid") or 0, currency=(invoice.get("currency") or "").lower(),
        kind="purchase" if first else "renewal", paid_at=paid_at,
    )  # fmt: skip
    if first:
        _paid(order)


def _invoice_failed(invoice: dict) -> None:
    subscription = invoice.get("subscription")  # _allowed() also finds it under parent.subscription_details
    if not subscription:
        return
    order = _order_for(subscription_id=subscription)
    order.last_payment_failed_at = utcnow()
    db.session.flush()
    advance(order, PAYMENT_FAILED)


def _subscription_deleted(subscription: dict) -> None:
    order = _order_for(subscription_id=subscription.get("id"))
    db.session.flush()
    if advance(order, CANCELLED):
        order.cancelled_at = utcnow()


def _record_payment(order: Order, *, stripe_id: str, amount: int, currency: str, kind: str, paid_at: datetime) -> None:
    db.session.execute(
        dialect_insert(Payment.__table__)
        .values(order_id=order.id, stripe_id=stripe_id, amount=amount, currency=currency or "", kind=kind, paid_at=paid_at)
        .on_conflict_do_nothing(index_elements=["stripe_id"])
    )


def _paid(order: Order) -> None:
    if not advance(order, PAID):
        return
    order.paid_at = utcnow()
    email = _email_of(order)
    if email:
        notices.queue(
            kind="receipt",
            recipient=email,
            template="receipt",
            context={
                "reference": order.reference,
                "plan": order.plan,
                "amount": _money(order.amount, order.currency),
                "commission_url": links.commission_url(order.id),
            },
            idempotency_key=f"receipt:{order.id}",
            subject_id=order.subject_id,
        )


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "—"
    return f"{amount / 100:,.2f} {(currency or '').upper()}".strip()


def _email_of(order: Order) -> str | None:
    subject = db.session.get(Subject, order.subject_id) if order.subject_id else None
    held = subject.identifier("email") if subject else None
    return held.value if held else None


EVENT_HANDLERS = {
    "checkout.session.completed": _checkout_session,
    "checkout.session.async_payment_succeeded": lambda session: _checkout_session(session, force_paid=True),
    "checkout.session.async_payment_failed": _async_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_failed,
    "customer.subscription.deleted": _subscription_deleted,
}


# --- commissioning and delivery -----------------------------------------------------------


def order_for_session(session_id: str) -> Order | None:
    if not isinstance(session_id, str) or not session_id or len(session_id) > 255:
        return None
    return db.session.scalar(sa.select(Order).where(Order.stripe_checkout_session_id == session_id))


RETURN_WINDOW = timedelta(hours=2)


def returning_from_checkout(order: Order) -> bool:
    """Stripe's success page may stand in for the signed link for a short while."""
    return order.created_at > utcnow() - RETURN_WINDOW


def order_from_token(purpose: str, token: str) -> Order:
    order = tokens.row_for(purpose, token, Order, "o")
    if order is None:
        raise NotFound("This link is not valid or has expired.")
    return order


def commission(*, order: Order, username: str, system_name: str, actor: str = "customer") -> Order:
    """Take the customer's user name and system name and queue provisioning."""
    db.session.refresh(order, with_for_update=True)  # two submits at once: one system
    username, system_name = (username or "").strip(), (system_name or "").strip()
    errors = {}
    for field, value in (("username", username), ("system_name", system_name)):
        if not NAME_RULE.fullmatch(value):
            errors[field] = ["use 3 to 30 lower-case letters, digits and hyphens, starting and ending with a letter or digit"]
    if errors:
        raise Invalid("Please check the names.", errors=errors)
    if order.status != PAID:
        raise Conflict("This order is not waiting to be commissioned." if order.status != "pending" else "The payment is not confirmed yet.")
    taken = db.session.scalar(sa.select(Order.id).where(Order.system_name == system_name, Order.id != order.id))
    if taken is not None:
        raise Invalid("That system name is taken.", errors={"system_name": ["already taken; choose another"]})
    order.username = username
    order.system_name = system_name
    order.commissioned_at = utcnow()
    advance(order, COMMISSIONING)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        raise Invalid("That system name is taken.", errors={"system_name": ["already taken; choose another"]}) from None
    audit.record("order.commissioned", actor=actor, target_type="order", target_id=order.reference, details={"system": system_name})
    outbox.defer(PROVISION_JOB, {"order_id": order.id})
    return order


def provision(*, order_id: int) -> None:
    """Create the system and mail the delivery notice (job; idempotent)."""
    order = db.session.get(Order, order_id, with_for_update=True)
    if order is None or order.status != COMMISSIONING:
        return
    order.system_url = provisioner().provision(order_id=order.id, system_name=order.system_name, username=order.username)
    order.provisioned_at = order.provisioned_at or utcnow()
    _disclose_to_partner(order)
    email = _email_of(order)
    if email is None:
        raise Conflict(f"Order {order.reference} has nobody to deliver to.")
    notices.queue(
        kind="delivery",
        recipient=email,
        template="delivery",
        context={
            "reference": order.reference,
            "system_url": order.system_url,
            "username": order.username,
            "set_password_url": links.set_password_url(order.id),
            "valid_hours": int(tokens.PURPOSES["set-password"].max_age.total_seconds() // 3600),
        },
        idempotency_key=f"delivery:{order.id}",
        subject_id=order.subject_id,
    )


def _disclose_to_partner(order: Order) -> None:
    """The reseller fulfils the order: log that they received the customer's details."""
    if not order.partner_code or order.subject_id is None:
        return
    if db.session.scalar(sa.select(Partner.id).where(Partner.code == order.partner_code)) is None:
        return
    already = db.session.scalar(
        sa.select(Disclosure.id).where(Disclosure.subject_id == order.subject_id, Disclosure.recorded_by == f"order:{order.reference}")
    )
    if already is None:
        partners.record_disclosure(
            subject_id=order.subject_id,
            partner_code=order.partner_code,
            data_categories=["name", "email", "order"],
            purpose="share_for_fulfilment",
            actor=f"order:{order.reference}",
        )


def _delivered(notice) -> None:
    """Called when the delivery notice has left us: the order is delivered."""
    order_id = int(notice.idempotency_key.split(":", 1)[1])
    order = db.session.get(Order, order_id)
    if order is not None and advance(order, DELIVERED):
        order.delivered_at = utcnow()


notices.AFTER_SENT["delivery"] = _delivered


def set_password(*, order: Order, password: str, confirm: str) -> None:
    """The customer's chosen password goes to the provisioner; the link works once."""
    db.session.refresh(order, with_for_update=True)
    if order.password_set_at is not None:
        raise Conflict("This link was used already. Use your system's own password reset, or contact support.")
    if order.system_url is None:
        raise Conflict("Your system is still being set up; try again in a minute.")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise Invalid("The password is too short.", errors={"password": [f"use at least {MIN_PASSWORD_LENGTH} characters"]})
    if password != confirm:
        raise Invalid("The passwords differ.", errors={"confirm": ["type the same password twice"]})
    provisioner().set_password(order_id=order.id, password=password)
    order.password_set_at = utcnow()
    audit.record("order.password_set", actor="customer", target_type="order", target_id=order.reference)


# --- the delivery watchdog ------------------------------------------------------------------

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
        if db.session.get(Order, order_id).status != WAITING_IN[kind]:
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
    order = db.session.get(Order, escalation.order_id)
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
        outbox.defer(ESCALATION_WEBHOOK_JOB, {"escalation_id": escalation.id, **context})
    audit.record("escalation.notified", actor="system", target_type="escalation", target_id=escalation.id, details={"count": escalation.notified_count})


def post_escalation(payload: dict) -> None:
    """POST the escalation as JSON to PREFS_ESCALATION_WEBHOOK_URL; a failure retries the job."""
    import urllib.request

    url = current_app.config["PREFS"].escalation_webhook_url
    if not url:
        return
    body = json.dumps({"event": "prefs.escalation", "urgent": True, **payload}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (operator-configured URL)
        if response.status >= 300:
            raise RuntimeError(f"escalation webhook answered {response.status}")


def open_escalations() -> list[tuple[Escalation, Order]]:
    stmt = sa.select(Escalation, Order).join(Order, Order.id == Escalation.order_id).where(Escalation.resolved_at.is_(None))
    return [(escalation, order) for escalation, order in db.session.execute(stmt.order_by(Escalation.opened_at))]


def resolve_escalation(*, escalation_id: int, note: str, actor: str) -> Escalation:
    escalation = db.session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound("No such escalation.")
    if escalation.resolved_at is None:
        escalation.resolved_at, escalation.resolved_by, escalation.resolution = utcnow(), actor, (note or "").strip()[:500] or None
        audit.record("escalation.resolved", actor=actor, target_type="escalation", target_id=escalation.id)
    return escalation


# --- partner sales, profile, erasure --------------------------------------------------------


def partner_sales(*, code: str, start: datetime, end: datetime) -> tuple[list[dict], dict[str, int]]:
    """Payments on orders the partner brought, in [start, end), and totals per currency."""
    partners.get_partner(code)
    if end <= start:
        raise Invalid("The period is empty.", errors={"to": ["must be after from"]})
    rows = db.session.execute(
        sa.select(Order.reference, Order.plan, Payment.kind, Payment.amount, Payment.currency, Payment.paid_at, Payment.stripe_id)
        .join(Order, Order.id == Payment.order_id)
        .where(Order.partner_code == code, Payment.paid_at >= start, Payment.paid_at < end)
        .order_by(Payment.paid_at, Payment.id)
    ).all()
    sales = [dict(row._mapping) for row in rows]
    totals: dict[str, int] = {}
    for sale in sales:
        totals[sale["currency"]] = totals.get(sale["currency"], 0) + sale["amount"]
    return sales, totals


def clear_profile(*, subject_id: uuid.UUID) -> int:
    """profile_enrichment was withdrawn: keep only what accounting needs
    (references, amounts, dates, Stripe ids) on the person's orders."""
    if _keeps_profile(subject_id):
        return 0  # granted again since the withdrawal
    return scrub_orders(subject_id=subject_id)


def scrub_orders(*, subject_id: uuid.UUID) -> int:
    """Remove names and addresses from a person's orders (erasure, profile withdrawal)."""
    return db.session.execute(
        sa.update(Order).where(Order.subject_id == subject_id).values(billing_name=None, billing_address=None)
    ).rowcount
