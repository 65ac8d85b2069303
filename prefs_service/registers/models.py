"""The registers' tables.

Each import is a `RegisterList`. A full import writes its entries under its own
list id while checks keep reading the register's current list; one short
transaction then makes the new list current and the old one replaced, so a
check sees the old list or the new, never half. A delta import adds and removes
entries of the current full list and is recorded beside it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db.types import Base, HashBytes

FULL = "full"
DELTA = "delta"
# A full list is loading until it is complete, then current, then replaced by
# the next; a failed import stays failed; a delta is applied in its transaction.
LOADING, CURRENT, REPLACED, FAILED, APPLIED = "loading", "current", "replaced", "failed", "applied"
LIST_STATUSES = (LOADING, CURRENT, REPLACED, FAILED, APPLIED)

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class RegisterList(Base):
    """One imported file of a register (registers/__init__.py names them)."""

    __tablename__ = "register_lists"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('full', 'delta')", name="kind"),
        sa.CheckConstraint("status IN ('loading', 'current', 'replaced', 'failed', 'applied')", name="status"),
        sa.Index("ix_register_lists_register_status", "register", "status"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    register: Mapped[str] = mapped_column(sa.String(8))
    kind: Mapped[str] = mapped_column(sa.String(8))
    # The date the register's operator published the file (--list-date).
    list_date: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(10), default=LOADING)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # Entries written (a full list: entries it holds, a line repeating a number is
    # not another; a delta: entries it added that were not listed), lines
    # rejected (the import's report names each) and, for a delta, listed
    # entries it took away. registers/status.py counts a register from these.
    accepted: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    # Who ran it: "cli" or "api_key:<id>".
    imported_by: Mapped[str] = mapped_column(sa.String(64))


class RegisterEntry(Base):
    """One listed identifier, as the keyed hash every other identifier is kept as.

    A delta's entries are written under the current full list's id, so a check
    probes one list per register. Keyed by (list, hash) without a rowid on
    SQLite: a probe is one primary-key lookup.
    """

    __tablename__ = "register_entries"
    __table_args__ = ({"sqlite_with_rowid": False},)

    list_id: Mapped[int] = mapped_column(_BIGINT, sa.ForeignKey("register_lists.id", ondelete="CASCADE"), primary_key=True)
    key_hash: Mapped[bytes] = mapped_column(HashBytes, primary_key=True)
    # MPS only: "P" (do not mail) or "X" (deceased); None for the number registers.
    flag: Mapped[str | None] = mapped_column(sa.String(1))


class MailRecord(Base):
    """One record of a Mail Preference Service list: a person (by a keyed hash
    of their name and address) at an address. Checks match an address, so the
    entry is per address (RegisterEntry); these say who keeps it listed, so
    that a delta taking one resident away leaves the entry while another
    resident of the address is still listed."""

    __tablename__ = "register_mail_records"
    __table_args__ = ({"sqlite_with_rowid": False},)

    list_id: Mapped[int] = mapped_column(_BIGINT, sa.ForeignKey("register_lists.id", ondelete="CASCADE"), primary_key=True)
    key_hash: Mapped[bytes] = mapped_column(HashBytes, primary_key=True)  # the address's entry
    record_hash: Mapped[bytes] = mapped_column(HashBytes, primary_key=True)


class Enquiry(Base):
    """A person's enquiry to us: with a purchase, what makes an established
    business relationship, the DNC exemption (registers/screening.py). Holds
    when and who recorded it, nothing of what was asked."""

    __tablename__ = "enquiries"
    __table_args__ = (sa.Index("ix_enquiries_subject_occurred", "subject_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who recorded it: "api_key:<id>", "staff:<id>", "cli".
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
