from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db.types import Base

PENDING, SENT, FAILED = "pending", "sent", "failed"
TRANSACTIONAL, MARKETING = "transactional", "marketing"


class Notice(Base):
    """One message to one recipient. The idempotency key makes it one mail,
    however often the job that sends it runs."""

    __tablename__ = "notices"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        sa.CheckConstraint("sender IN ('transactional', 'marketing')", name="sender"),
        # The oldest mail still waiting (the staff dashboard, /metrics) without reading every notice.
        sa.Index("ix_notices_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("subjects.id", ondelete="SET NULL"), index=True)
    # Plain address while the message may still be sent; erasure blanks it.
    recipient: Mapped[str | None] = mapped_column(sa.String(320))
    sender: Mapped[str] = mapped_column(sa.String(16), default=TRANSACTIONAL)
    template: Mapped[str] = mapped_column(sa.String(64))
    # What the template needs, until the notice is sent; emptied then.
    context: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(10), default=PENDING)
    # Erasure confirmations: once sent, the address and body are forgotten too.
    forget_after_send: Mapped[bool] = mapped_column(default=False)
    message_id: Mapped[str | None] = mapped_column(sa.String(255))
    # Why a failed notice was not sent (the mail server's refusal), without the address.
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
