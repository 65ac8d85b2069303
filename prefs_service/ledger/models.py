"""The log's tables: which row each leaf is, the tree's nodes, checkpoints, keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db.types import Base

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class LedgerLeaf(Base):
    """Leaf `idx` of the tree is row `source_id` of the table `kind` names
    (leaves.CONSENT_EVENT, leaves.AUDIT_EVENT). Written by the sequencer only."""

    __tablename__ = "ledger_leaves"
    __table_args__ = (
        sa.UniqueConstraint("kind", "source_id"),
        sa.Index("ix_ledger_leaves_position", "kind", "source_txid", "source_id"),  # where the sequencer takes up again
    )

    idx: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=False)
    kind: Mapped[int] = mapped_column(sa.SmallInteger)
    source_id: Mapped[int] = mapped_column(sa.BigInteger)
    source_txid: Mapped[int] = mapped_column(sa.BigInteger)  # where the sequencer takes up again


class LedgerNode(Base):
    """The hash of one perfect subtree (a leaf hash at level 0), keyed by
    tree.node_key(level, index): the order the tree creates them in."""

    __tablename__ = "ledger_nodes"

    key: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))


class LedgerKey(Base):
    """Every public key that ever signed a checkpoint: old ones stay listed."""

    __tablename__ = "ledger_keys"

    key_id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    first_used_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerCheckpoint(Base):
    """A signed statement of the tree's size and root at a time (checkpoints.body)."""

    __tablename__ = "ledger_checkpoints"
    __table_args__ = (sa.Index("ix_ledger_checkpoints_tree_size", "tree_size"),)

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True)
    tree_size: Mapped[int] = mapped_column(sa.BigInteger)
    root_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    timestamp_ms: Mapped[int] = mapped_column(sa.BigInteger)
    key_id: Mapped[str] = mapped_column(sa.String(16), sa.ForeignKey("ledger_keys.key_id"))
    signature: Mapped[bytes] = mapped_column(sa.LargeBinary(64))
