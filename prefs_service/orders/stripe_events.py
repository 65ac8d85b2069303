"""Stripe events in: verified, stored once by their id with an allow-list of
their fields, and applied by a job, moving an order forward and mailing its receipt.

From Stripe we keep an allow-list of fields and never the payload: no card
number, last4, brand, expiry, fingerprint or CVC reaches the database or logs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import links, outbox, references
from ..clock import utcnow
from ..db.backend import backend
from ..errors import DomainError, Invalid
from ..extensions import db
from ..job_kinds import JobKind
from ..notices import service as notices
from ..subjects import service as subjects
from ..subjects.refs import SubjectRef
from .models import CANCELLED, PAID, PAYMENT_FAILED, Order, Payment, StripeEvent
from .plans import plan_label
from .service import advance, email_of, keeps_profile, money

WEBHOOK_TOLERANCE_SECONDS = 300


class BadSignature(DomainError):
    """The webhook's Stripe-Signature is missing, wrong or too old."""


class NotConfigured(DomainError):
    """STRIPE_WEBHOOK_SECRET is not set."""


# --- webhook ------------------------------------------------------------------------------


def verify_webhook(payload: bytes, header: str | None) -> dict[str, Any]:
    """The event, if the signature over the raw body is right and at most five minutes old."""
    secret = current_app.config["PREFS"].stripe_webhook_secret
    if not secret:
        raise NotConfigured("Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET.")
    import stripe  # here, not at the top: a web worker that never gets a webhook need not hold the SDK (about 6 MB)

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


def accept_event(event: dict[str, Any]) -> str:
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
        backend()
        .insert(StripeEvent.__table__)
        .values(id=event["id"], type=event["type"], data=_allowed(obj) if handled and isinstance(obj, dict) else None, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(StripeEvent.__table__.c.id)
    ).scalar()
    if inserted is None:
        return "duplicate"
    if not handled:
        return "ignored"
    outbox.defer(JobKind.ORDER_APPLY_STRIPE_EVENT, {"event_id": event["id"]})
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
    "metadata": ("plan", "plan_label", "partner"),
    "customer_details": ("email", "name", "address"),
    "customer_address": _ADDRESS,
    "status_transitions": ("paid_at",),
}


def _allowed(obj: dict[str, Any]) -> dict[str, Any]:
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


def _order_for(*, session_id: str | None = None, subscription_id: str | None = None) -> Order:
    """The order for a checkout session or subscription, created on first sight.
    A subscription's checkout session and its first invoice are one purchase."""
    key = subscription_id or session_id
    assert key, "an event names its session or subscription"
    backend().lock_key(key)  # concurrent events about one purchase, one at a time
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


def _stamp(seconds: object) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int) else utcnow()


def _attach_customer(order: Order, *, email: str | None, name: str | None, address: dict[str, Any] | None) -> None:
    if order.subject_id is None and email:
        try:
            subject = subjects.resolve_one(SubjectRef.parse("email", email), actor="stripe")
        except DomainError:
            subject = None  # an address we cannot use; the order stands without a person
        order.subject_id = subject.id if subject else None
    if order.subject_id and keeps_profile(order.subject_id):
        order.billing_name = order.billing_name or (name or None)
        order.billing_address = order.billing_address or _one_line(address)


def _one_line(address: dict[str, Any] | None) -> str | None:
    if not isinstance(address, dict):
        return None
    parts = [address.get(k) for k in _ADDRESS]
    return ", ".join(str(p) for p in parts if p) or None


def _partner_of(obj: dict[str, Any]) -> str | None:
    code = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("partner")
    return str(code)[:40] if code else None


def _checkout_session(session: dict[str, Any], *, force_paid: bool = False) -> None:
    order = _order_for(session_id=session.get("id"), subscription_id=session.get("subscription"))
    _details_from_session(order, session)
    db.session.flush()
    if force_paid or session.get("payment_status") in ("paid", "no_payment_required"):
        if not session.get("subscription") and session.get("amount_total"):
            _record_payment(
                order, stripe_id=session["id"], amount=session["amount_total"], currency=order.currency, kind="purchase", paid_at=utcnow()
            )
        _paid(order, stripe_plan_label=(session.get("metadata") or {}).get("plan_label"))


def _details_from_session(order: Order, session: dict[str, Any]) -> None:
    order.stripe_customer_id = order.stripe_customer_id or session.get("customer")
    order.stripe_payment_intent_id = order.stripe_payment_intent_id or session.get("payment_intent")
    order.amount = order.amount if order.amount is not None else session.get("amount_total")
    order.currency = order.currency or (session.get("currency") or "").lower() or None
    order.plan = order.plan or (session.get("metadata") or {}).get("plan") or session.get("mode")
    order.partner_code = order.partner_code or _partner_of(session)
    details = session.get("customer_details") or {}
    _attach_customer(
        order, email=details.get("email") or session.get("customer_email"), name=details.get("name"), address=details.get("address")
    )


def _async_failed(session: dict[str, Any]) -> None:
    order = _order_for(session_id=session.get("id"), subscription_id=session.get("subscription"))
    _details_from_session(order, session)  # it may be the first we hear of the purchase: the mail needs the buyer
    db.session.flush()
    if not advance(order, PAYMENT_FAILED):
        return  # paid already (an invoice came first), or failed before: nothing new to tell
    email = email_of(order)
    if email:
        notices.queue(
            kind="payment_failed",
            recipient=email,
            template="payment_failed",
            context={
                "reference": order.reference,
                "plan": plan_label(order.plan, stripe_label=(session.get("metadata") or {}).get("plan_label")),
                "amount": money(order.amount, order.currency),
            },
            idempotency_key=f"payment-failed:{session.get('id') or order.id}",  # once per checkout session
            subject_id=order.subject_id,
        )


def _invoice_paid(invoice: dict[str, Any]) -> None:
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
        _attach_customer(
            order, email=invoice.get("customer_email"), name=invoice.get("customer_name"), address=invoice.get("customer_address")
        )
    db.session.flush()
    paid_at = _stamp((invoice.get("status_transitions") or {}).get("paid_at"))
    _record_payment(
        order, stripe_id=invoice["id"], amount=invoice.get("amount_paid") or 0, currency=(invoice.get("currency") or "").lower(),
        kind="purchase" if first else "renewal", paid_at=paid_at,
    )  # fmt: skip
    if first:
        _paid(order, stripe_plan_label=(invoice.get("metadata") or {}).get("plan_label"))


def _invoice_failed(invoice: dict[str, Any]) -> None:
    subscription = invoice.get("subscription")  # _allowed() also finds it under parent.subscription_details
    if not subscription:
        return
    order = _order_for(subscription_id=subscription)
    order.last_payment_failed_at = utcnow()
    db.session.flush()
    advance(order, PAYMENT_FAILED)


def _subscription_deleted(subscription: dict[str, Any]) -> None:
    order = _order_for(subscription_id=subscription.get("id"))
    db.session.flush()
    if advance(order, CANCELLED):
        order.cancelled_at = utcnow()


def _record_payment(order: Order, *, stripe_id: str, amount: int, currency: str | None, kind: str, paid_at: datetime) -> None:
    db.session.execute(
        backend()
        .insert(Payment.__table__)
        .values(order_id=order.id, stripe_id=stripe_id, amount=amount, currency=currency or "", kind=kind, paid_at=paid_at)
        .on_conflict_do_nothing(index_elements=["stripe_id"])
    )


def _paid(order: Order, *, stripe_plan_label: object = None) -> None:
    if not advance(order, PAID):
        return
    order.paid_at = utcnow()
    email = email_of(order)
    if email:
        notices.queue(
            kind="receipt",
            recipient=email,
            template="receipt",
            context={
                "reference": order.reference,
                "plan": plan_label(order.plan, stripe_label=stripe_plan_label),
                "paid_on": f"{order.paid_at:%-d %B %Y}",
                "amount": money(order.amount, order.currency),
                "commission_url": links.commission_url(order.id),
            },
            idempotency_key=f"receipt:{order.id}",
            subject_id=order.subject_id,
        )


EVENT_HANDLERS = {
    "checkout.session.completed": _checkout_session,
    "checkout.session.async_payment_succeeded": lambda session: _checkout_session(session, force_paid=True),
    "checkout.session.async_payment_failed": _async_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_failed,
    "customer.subscription.deleted": _subscription_deleted,
}
