"""subjects.jurisdiction: whose law a person falls under (GB, EU, US-CA, other);
empty means PREFS_DEFAULT_JURISDICTION

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("jurisdiction", sa.String(8), nullable=True))


def downgrade():
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("jurisdiction")
