"""decisions: the read model a check probes, one row per key × channel × purpose
(consent/decisions.py), filled here from the ledger's state, the identifiers
and the suppressions a database holds. Unlike the other migrations this one
runs the service's own code: the rows are derived data, computed by today's
rules (and the identifier key, for external refs) exactly as `prefs screening
rebuild` computes them at any time.

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
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT EXISTS (SELECT 1 FROM subjects) OR EXISTS (SELECT 1 FROM suppressions)")).scalar()
    if held:
        from sqlalchemy.orm import Session

        from prefs_service.consent import decisions

        decisions.rebuild(session=Session(bind=bind))  # in the migration's transaction


def downgrade():
    op.drop_index("ix_decisions_subject_id", table_name="decisions")
    op.drop_table("decisions")
