from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db.types import Base, HashBytes


class Purpose(Base):
    """The channel × purpose pairs consent can be given for.

    Declared in `channels/` and written here by migrations, so that every ledger
    row points at a purpose that exists.
    """

    __tablename__ = "purposes"

    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(200))
    marketing: Mapped[bool]


class PolicyVersion(Base):
    """A published privacy policy; its "last updated" date is what people see."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(40), unique=True)
    last_updated: Mapped[date]
    url: Mapped[str | None] = mapped_column(sa.String(500))
    effective_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    """One immutable entry of the consent ledger.

    `txid` orders the change feed: on PostgreSQL it is the writing transaction's
    id (set by the database), so a reader never skips a row that a slower
    transaction commits later with a smaller `id`. On SQLite writers are
    serialised and it stays 0.
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        sa.ForeignKeyConstraint(["channel", "purpose"], ["purposes.channel", "purposes.name"]),
        sa.CheckConstraint("status IN ('granted', 'withdrawn')", name="status"),
        sa.Index("ix_consent_events_subject_occurred", "subject_id", "occurred_at"),
        sa.Index("ix_consent_events_feed", "txid", "id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    txid: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.FetchedValue())
    subject_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    purpose: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(10))
    source: Mapped[str] = mapped_column(sa.String(32))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    policy_version: Mapped[str | None] = mapped_column(sa.String(40))
    evidence_ip: Mapped[str | None] = mapped_column(sa.String(64))
    evidence_user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    evidence_note: Mapped[str | None] = mapped_column(sa.Text)
    # The log's commitment to the three evidence fields (ledger/leaves.py); the
    # salt goes with them at erasure, the commitment stays in the leaf.
    evidence_salt: Mapped[bytes | None] = mapped_column(sa.LargeBinary(16))
    evidence_commitment: Mapped[bytes | None] = mapped_column(sa.LargeBinary(32))
    # Who recorded it: "api_key:<id>", "staff:<id>", "subject", "system", "cli".
    recorded_by: Mapped[str] = mapped_column(sa.String(64))


class ConsentState(Base):
    """The current answer per subject × channel × purpose, kept with the ledger."""

    __tablename__ = "consent_state"
    __table_args__ = (
        sa.ForeignKeyConstraint(["channel", "purpose"], ["purposes.channel", "purposes.name"]),
        sa.CheckConstraint("status IN ('granted', 'withdrawn')", name="status"),
    )

    subject_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(10))
    occurred_at: Mapped[datetime]
    event_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("consent_events.id"))
    source: Mapped[str] = mapped_column(sa.String(32))


class Decision(Base):
    """The decisions read model: what a check answers, one row per key ×
    channel × purpose, kept in the transaction of every change that affects it
    (consent/decisions.py). A key is an identifier's keyed hash, the keyed hash
    of an external ref, or a subject id's 16 bytes; a key without a row holds
    nothing (no choice, no suppression). A check is one primary-key probe."""

    __tablename__ = "decisions"
    __table_args__ = (sa.Index("ix_decisions_subject_id", "subject_id"), {"sqlite_with_rowid": False})

    key_hash: Mapped[bytes] = mapped_column(HashBytes, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    # The consent state, for a purpose that needs consent (None: never chose).
    status: Mapped[str | None] = mapped_column(sa.String(10))
    since: Mapped[datetime | None]
    # When a suppression that silences the channel began, or the person was erased.
    silenced_since: Mapped[datetime | None]
    erased: Mapped[bool]
    # The person the key names; None for a suppressed key nobody holds.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
