"""notices: why a failed notice was not sent (a mail server's permanent refusal)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("failure_reason")
