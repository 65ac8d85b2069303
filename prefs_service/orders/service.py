"""Orders: moving forward, commissioning, delivery, the password link, partner
sales and the purchase profile. Stripe events arrive through stripe_events.py;
late deliveries are escalated by watchdog.py.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .. import audit, links, outbox, tokens
from ..clock import utcnow
from ..consent import check
from ..db.backend import affected_rows
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..job_kinds import JobKind
from ..notices import service as notices
from ..notices.models import Notice
from ..partners import service as partners
from ..partners.models import Disclosure, Partner
from ..subjects.models import Subject
from .models import COMMISSIONING, DELIVERED, PAID, STATUS_ORDER, Order, Payment
from .provisioning import provisioner

NAME_RULE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,28})[a-z0-9]")
MIN_PASSWORD_LENGTH = 12
PROFILE = ("profile", "profile_enrichment")  # the purpose that lets us keep billing names and addresses


def advance(order: Order, status: str) -> bool:
    """Move the order forward; an event that would move it back is ignored."""
    if STATUS_ORDER.index(status) <= STATUS_ORDER.index(order.status or STATUS_ORDER[0]):
        return False
    audit.record(
        "order.status", actor="stripe", target_type="order", target_id=order.reference, details={"from": order.status, "to": status}
    )
    order.status = status
    return True


def keeps_profile(subject_id: uuid.UUID) -> bool:
    return check(channel="profile", purpose="profile_enrichment", key="subject_id", value=str(subject_id)).allowed


def email_of(order: Order) -> str | None:
    subject = db.session.get(Subject, order.subject_id) if order.subject_id else None
    held = subject.identifier("email") if subject else None
    return held.value if held else None


def money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "—"
    return f"{amount / 100:,.2f} {(currency or '').upper()}".strip()


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
        raise Conflict(
            "This order is not waiting to be commissioned." if order.status != "pending" else "The payment is not confirmed yet."
        )
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
    outbox.defer(JobKind.ORDER_PROVISION, {"order_id": order.id})
    return order


def provision(*, order_id: int) -> None:
    """Create the system and mail the delivery notice (job; idempotent)."""
    order = db.session.get(Order, order_id, with_for_update=True)
    if order is None or order.status != COMMISSIONING:
        return
    assert order.system_name is not None and order.username is not None  # chosen when it was commissioned
    order.system_url = provisioner().provision(order_id=order.id, system_name=order.system_name, username=order.username)
    order.provisioned_at = order.provisioned_at or utcnow()
    _disclose_to_partner(order)
    email = email_of(order)
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


# --- reacting to other domains (wired in create_app) ------------------------------------------


def notice_sent(*, notice: Notice) -> None:
    """A delivery notice has left us: its order is delivered."""
    if notice.kind != "delivery":
        return
    order_id = int(notice.idempotency_key.split(":", 1)[1])
    order = db.session.get(Order, order_id)
    if order is not None and advance(order, DELIVERED):
        order.delivered_at = utcnow()


def consent_withdrawn(*, subject_id: uuid.UUID, channel: str, purpose: str) -> None:
    """Without profile_enrichment we keep no billing names or addresses: a job clears them."""
    if (channel, purpose) == PROFILE:
        outbox.defer(JobKind.ORDER_CLEAR_PROFILE, {"subject_id": str(subject_id)})


# --- partner sales, profile, erasure --------------------------------------------------------


def partner_sales(*, code: str, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], dict[str, int]]:
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
    if keeps_profile(subject_id):
        return 0  # granted again since the withdrawal
    return scrub_orders(subject_id=subject_id)


def scrub_orders(*, subject_id: uuid.UUID) -> int:
    """Remove names and addresses from a person's orders (erasure, profile withdrawal)."""
    return affected_rows(sa.update(Order).where(Order.subject_id == subject_id).values(billing_name=None, billing_address=None))
