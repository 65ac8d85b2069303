"""registers: register_lists (one row per imported file) and register_entries
(the listed identifiers as keyed hashes, keyed by list and hash)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "register_lists",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("register", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("list_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.CheckConstraint("kind IN ('full', 'delta')", name="kind"),
        sa.CheckConstraint("status IN ('loading', 'current', 'replaced', 'failed', 'applied')", name="status"),
    )
    op.create_index("ix_register_lists_register_status", "register_lists", ["register", "status"])
    op.create_table(
        "register_entries",
        sa.Column("list_id", BIGINT, sa.ForeignKey("register_lists.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key_hash", sa.LargeBinary(length=32), primary_key=True),
        sa.Column("flag", sa.String(1), nullable=True),
        sqlite_with_rowid=False,
    )


def downgrade():
    op.drop_table("register_entries")
    op.drop_index("ix_register_lists_register_status", table_name="register_lists")
    op.drop_table("register_lists")
