"""Append-only audit trail: who did what, to what, when.

Rows hold ids and outcomes, never personal data, so the trail can outlive an
erasure. Nothing in the code updates or deletes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .clock import utcnow
from .db.types import Base
from .extensions import db


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_target", "target_type", "target_id"), sa.Index("ix_audit_events_feed", "txid", "id"))

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    # As ConsentEvent.txid: the order the ledger's sequencer takes rows in.
    txid: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.FetchedValue())
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str] = mapped_column(sa.String(32))
    target_id: Mapped[str] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


def record(action: str, *, actor: str, target_type: str, target_id: object, details: dict[str, Any] | None = None) -> AuditEvent:
    """Add an audit row to the caller's transaction."""
    event = AuditEvent(actor=actor, action=action, target_type=target_type, target_id=str(target_id), details=details or {})
    db.session.add(event)
    return event


def row(
    action: str, *, actor: str, target_type: str, target_id: object, at: datetime, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One audit row's values, for inserting many in one statement (a batch that creates people)."""
    return {
        "occurred_at": at,
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "details": details or {},
    }


def trail(target_type: str, target_id: object) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.target_type == target_type, AuditEvent.target_id == str(target_id))
            .order_by(AuditEvent.id)
        )
    )


def page(*, action: str | None, actor: str | None, before: int | None, limit: int) -> list[AuditEvent]:
    """The newest `limit` events before id `before`, of one action and one actor if given."""
    stmt = sa.select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    return list(db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))


def actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def actors(limit: int = 500) -> list[str]:
    """The actors the trail names (for a filter), at most `limit` of them."""
    return list(db.session.scalars(sa.select(AuditEvent.actor).distinct().order_by(AuditEvent.actor).limit(limit)))
