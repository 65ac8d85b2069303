"""request_agents: the authorised agent who made a rights request on a person's
behalf, their signed permission (a file under the var dir) and any power of
attorney staff recorded

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 20:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "request_agents",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("organisation", sa.String(length=255), nullable=True),
        sa.Column("registration", sa.String(length=100), nullable=True),
        sa.Column("permission_file", sa.String(length=200), nullable=True),
        sa.Column("permission_type", sa.String(length=40), nullable=False),
        sa.Column("permission_bytes", sa.Integer(), nullable=False),
        sa.Column("power_of_attorney_at", UTC_DATETIME, nullable=True),
        sa.Column("power_of_attorney_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["rights_requests.id"], name=op.f("fk_request_agents_request_id_rights_requests"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_request_agents")),
    )


def downgrade():
    op.drop_table("request_agents")
