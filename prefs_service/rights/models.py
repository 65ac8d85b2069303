from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..db.types import Base, HashBytes

if TYPE_CHECKING:
    from .agents import RequestAgent

TYPES = ("access", "erasure", "correction", "opt_out_sale_sharing", "limit_sensitive")
AWAITING_VERIFICATION = "awaiting_verification"
VERIFIED = "verified"
AWAITING_REVIEW = "awaiting_review"
PROCESSING = "processing"
COMPLETED = "completed"
REJECTED = "rejected"
EXPIRED = "expired"
FAILED = "failed"
STATUSES = (AWAITING_VERIFICATION, VERIFIED, AWAITING_REVIEW, PROCESSING, COMPLETED, REJECTED, EXPIRED, FAILED)
OPEN = (AWAITING_VERIFICATION, VERIFIED, AWAITING_REVIEW, PROCESSING, FAILED)
CORRECTABLE_FIELDS = ("name", "email", "phone", "fax", "postal_address")

# How staff read each status, and each step of a request's timeline ("… by <who>").
STATUS_LABELS = {
    AWAITING_VERIFICATION: "Waiting for the requester to confirm",
    VERIFIED: "Confirmed",
    AWAITING_REVIEW: "Waiting for staff review",
    PROCESSING: "In progress",
    COMPLETED: "Completed",
    REJECTED: "Rejected",
    EXPIRED: "Expired unconfirmed",
    FAILED: "Failed",
}
STEP_LABELS = {
    "request.submitted": "Received",
    f"request.{VERIFIED}": "Identity confirmed",
    f"request.{AWAITING_REVIEW}": "Sent for staff review",
    f"request.{PROCESSING}": "Work started",
    f"request.{COMPLETED}": "Completed",
    f"request.{REJECTED}": "Rejected",
    f"request.{EXPIRED}": "Expired unconfirmed",
    f"request.{FAILED}": "Failed",
    "request.extended": "Deadline extended",
    "request.acknowledged": "Acknowledged",
    "request.power_of_attorney": "Agent's power of attorney recorded",
}
TYPE_LABELS = {
    "access": "Access",
    "erasure": "Erasure",
    "correction": "Correction",
    "opt_out_sale_sharing": "Opt-out of sale/sharing",
    "limit_sensitive": "Limit sensitive data",
}


class RightsRequest(Base):
    """A person's request to see, correct or remove their data, and its deadline."""

    __tablename__ = "rights_requests"
    __table_args__ = (
        sa.CheckConstraint(f"type IN {TYPES}", name="type"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="status"),
        sa.Index("ix_rights_requests_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True)
    type: Mapped[str] = mapped_column(sa.String(24))
    status: Mapped[str] = mapped_column(sa.String(24), default=AWAITING_VERIFICATION)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("subjects.id", ondelete="SET NULL"), index=True)
    # Where we answer the requester; blanked once an erasure is confirmed.
    email: Mapped[str | None] = mapped_column(sa.String(320))
    email_hash: Mapped[bytes] = mapped_column(HashBytes, index=True)
    # Correction only: proposed values, and the requester's reason.
    changes: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    explanation: Mapped[str | None] = mapped_column(sa.Text)
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    extension_months: Mapped[int | None]
    extension_reason: Mapped[str | None] = mapped_column(sa.Text)
    # The law whose clock the request follows (subjects/jurisdictions.py); empty
    # for requests made before jurisdictions: GDPR's month, weekends only.
    jurisdiction: Mapped[str | None] = mapped_column(sa.String(8))
    extension_days: Mapped[int | None]  # CCPA's one extension of 45 days
    acknowledge_by: Mapped[datetime | None]  # CCPA: the acknowledgement is owed by then
    acknowledged_at: Mapped[datetime | None]  # when the acknowledgement mail left
    export_file: Mapped[str | None] = mapped_column(sa.String(500))
    export_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    verified_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    reminder_sent_at: Mapped[datetime | None]
    three_day_alert_sent_at: Mapped[datetime | None]
    overdue_alerted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Who made it on the person's behalf, if an authorised agent did (agents.py).
    agent: Mapped[RequestAgent | None] = relationship(viewonly=True, lazy="select")
