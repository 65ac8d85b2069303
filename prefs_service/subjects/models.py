from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..db.types import Base, HashBytes


class Subject(Base):
    """A person we may contact. Plain-text identifiers live on `Identifier` rows."""

    __tablename__ = "subjects"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    external_ref: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None]
    # GB, EU, US-CA or other (subjects/jurisdictions.py); None: the default setting.
    jurisdiction: Mapped[str | None] = mapped_column(sa.String(8))
    # CCPA: after an opt-out of sale/sharing, do not ask them to opt back in before this.
    ask_again_after: Mapped[datetime | None]

    identifiers: Mapped[list[Identifier]] = relationship(back_populates="subject", cascade="all, delete-orphan")

    def identifier(self, kind: str) -> Identifier | None:
        return next((i for i in self.identifiers if i.kind == kind), None)


class Identifier(Base):
    """One contact identifier of a subject, found by its keyed hash.

    `value_hash` is HMAC-SHA256(identifier key, "kind:canonical value"): lookups
    and suppressions use it, so a bulk check never needs the plain value.
    """

    __tablename__ = "identifiers"
    __table_args__ = (sa.UniqueConstraint("subject_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.String(500))
    value_hash: Mapped[bytes] = mapped_column(HashBytes, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="identifiers")


class Suppression(Base):
    """An identifier that must not be contacted, kept by hash only: a bounce,
    a complaint or an objection (consent/suppressions.py), or a key of a person
    erased at their request (reason `erasure`)."""

    __tablename__ = "suppressions"

    value_hash: Mapped[bytes] = mapped_column(HashBytes, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(40))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64))
