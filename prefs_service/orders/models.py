from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db.types import Base

# An order only moves forward through these (see service.advance).
PENDING, PAYMENT_FAILED, PAID, COMMISSIONING, DELIVERED, CANCELLED = (
    "pending", "payment_failed", "paid", "commissioning", "delivered", "cancelled",
)  # fmt: skip
STATUS_ORDER = (PENDING, PAYMENT_FAILED, PAID, COMMISSIONING, DELIVERED, CANCELLED)


class StripeEvent(Base):
    """A Stripe event we accepted. `data` holds the allow-listed fields a job
    applies; it is cleared in the same transaction that applies them."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]


class Order(Base):
    """One purchase. An allow-list of fields: never the raw payload, never card data."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {STATUS_ORDER}", name="status"),
        sa.Index("ix_orders_partner_paid", "partner_code", "paid_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("subjects.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    plan: Mapped[str | None] = mapped_column(sa.String(200))
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # minor units, as Stripe sends them
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    partner_code: Mapped[str | None] = mapped_column(sa.String(40))
    # Kept only while the person lets us (profile_enrichment); erasure removes them.
    billing_name: Mapped[str | None] = mapped_column(sa.String(255))
    billing_address: Mapped[str | None] = mapped_column(sa.String(500))
    system_name: Mapped[str | None] = mapped_column(sa.String(30), unique=True)
    username: Mapped[str | None] = mapped_column(sa.String(30))
    system_url: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    commissioned_at: Mapped[datetime | None]
    provisioned_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    password_set_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    last_payment_failed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Payment(Base):
    """Money received for an order (the first payment and each renewal): what partners are owed on."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    # The Stripe object that paid: an invoice, or a checkout session without one.
    stripe_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    kind: Mapped[str] = mapped_column(sa.String(16))  # purchase | renewal
    paid_at: Mapped[datetime]


class ProvisionedSystem(Base):
    """What the local provisioner created (a real one would call out instead)."""

    __tablename__ = "provisioned_systems"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), unique=True)
    system_name: Mapped[str] = mapped_column(sa.String(30), unique=True)
    username: Mapped[str] = mapped_column(sa.String(30))
    url: Mapped[str] = mapped_column(sa.String(300))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Escalation(Base):
    """A delivery problem staff must look at, notified again until resolved.
    One per order and kind: once resolved, it stays resolved."""

    __tablename__ = "escalations"
    __table_args__ = (sa.UniqueConstraint("order_id", "kind"), sa.Index("ix_escalations_open", "resolved_at", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))  # delivery_late | not_commissioned
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_count: Mapped[int] = mapped_column(default=0)
    last_notified_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(sa.String(64))
    resolution: Mapped[str | None] = mapped_column(sa.String(500))
