"""decisions: the read model a check probes, one row per key × channel × purpose
(consent/decisions.py). `prefs db upgrade` fills it from the ledger, the
identifiers and the suppressions when it upgrades a database past this
revision; `prefs screening rebuild` does the same at any time.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 23:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "decisions",
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=True),
        sa.Column("since", UTC_DATETIME, nullable=True),
        sa.Column("silenced_since", UTC_DATETIME, nullable=True),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("key_hash", "channel", "purpose", name=op.f("pk_decisions")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_decisions_subject_id", "decisions", ["subject_id"], unique=False)


def downgrade():
    op.drop_index("ix_decisions_subject_id", table_name="decisions")
    op.drop_table("decisions")
