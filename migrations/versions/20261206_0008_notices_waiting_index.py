"""notices: an index on (status, created_at), so the oldest unsent notice is
found without reading the whole table (the staff dashboard, /metrics)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:40:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_notices_status_created_at", "notices", ["status", "created_at"])


def downgrade():
    op.drop_index("ix_notices_status_created_at", table_name="notices")
