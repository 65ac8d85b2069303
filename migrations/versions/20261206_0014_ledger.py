"""ledger: the transparency log over the consent ledger and the audit trail
(salted evidence commitments, leaves, tree nodes, signed checkpoints, keys)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 20:00:00.000000

"""

import hashlib
import os

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
PERSONAL = ("evidence_ip", "evidence_user_agent", "evidence_note")


def txid_default():
    """As consent_events.txid: the writing transaction's id on PostgreSQL."""
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("(pg_current_xact_id()::text::bigint)")
    return sa.text("0")


def _commitment(salt, values):
    """ledger/leaves.py commitment(), frozen here (a migration imports no app code)."""
    parts = []
    for name, value in zip(PERSONAL, values, strict=True):
        key = hashlib.sha256(salt + name.encode()).digest()
        encoded = b"\x00" if value is None else b"\x01" + value.encode()
        parts.append(hashlib.sha256(key + encoded).digest())
    return hashlib.sha256(b"".join(parts)).digest()


def upgrade():
    with op.batch_alter_table("consent_events") as batch:
        batch.add_column(sa.Column("evidence_salt", sa.LargeBinary(length=16), nullable=True))
        batch.add_column(sa.Column("evidence_commitment", sa.LargeBinary(length=32), nullable=True))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("txid", sa.BigInteger(), server_default=txid_default(), nullable=False))
        batch.create_index("ix_audit_events_feed", ["txid", "id"], unique=False)
    # Events recorded before the log: commit to their evidence now, with a fresh salt each.
    bind = op.get_bind()
    events = sa.table(
        "consent_events", sa.column("id", sa.BigInteger), *(sa.column(n, sa.String) for n in PERSONAL),
        sa.column("evidence_salt", sa.LargeBinary), sa.column("evidence_commitment", sa.LargeBinary),
    )  # fmt: skip
    rows = bind.execute(sa.select(events.c.id, *(events.c[n] for n in PERSONAL)).where(events.c.evidence_commitment.is_(None))).all()
    update = (
        sa.update(events)
        .where(events.c.id == sa.bindparam("event_id"))
        .values(evidence_salt=sa.bindparam("salt"), evidence_commitment=sa.bindparam("commitment"))
    )
    params = []
    for event_id, *values in rows:
        salt = os.urandom(16)
        params.append({"event_id": event_id, "salt": salt, "commitment": _commitment(salt, values)})
    for start in range(0, len(params), 5000):
        bind.execute(update, params[start : start + 5000])

    op.create_table(
        "ledger_leaves",
        sa.Column("idx", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("source_txid", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("kind", "source_id"),
    )
    op.create_index("ix_ledger_leaves_position", "ledger_leaves", ["kind", "source_txid", "source_id"])
    op.create_table(
        "ledger_nodes",
        sa.Column("key", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
    )
    op.create_table(
        "ledger_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("first_used_at", UTC_DATETIME, nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(16), sa.ForeignKey("ledger_keys.key_id"), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
    )
    op.create_index("ix_ledger_checkpoints_tree_size", "ledger_checkpoints", ["tree_size"])


def downgrade():
    op.drop_index("ix_ledger_checkpoints_tree_size", table_name="ledger_checkpoints")
    op.drop_table("ledger_checkpoints")
    op.drop_table("ledger_keys")
    op.drop_table("ledger_nodes")
    op.drop_index("ix_ledger_leaves_position", table_name="ledger_leaves")
    op.drop_table("ledger_leaves")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_events_feed")
        batch.drop_column("txid")
    with op.batch_alter_table("consent_events") as batch:
        batch.drop_column("evidence_commitment")
        batch.drop_column("evidence_salt")
