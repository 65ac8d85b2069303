"""enquiries: a person's enquiry, which with a purchase makes the established
business relationship that lifts the US Do Not Call registry

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 21:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "enquiries",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("subject_id", sa.Uuid(), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_enquiries_subject_occurred", "enquiries", ["subject_id", "occurred_at"])


def downgrade():
    op.drop_index("ix_enquiries_subject_occurred", table_name="enquiries")
    op.drop_table("enquiries")
