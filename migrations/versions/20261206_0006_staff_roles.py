"""staff_users: a role, reviewer (handles requests) or admin (also manages staff and API keys)

Accounts that exist already become admins, so nobody is locked out of the
pages that manage accounts; new ones are reviewers unless made admins.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 08:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=16), nullable=False, server_default="reviewer"))
        batch_op.create_check_constraint(op.f("ck_staff_users_role"), "role IN ('reviewer', 'admin')")
    staff_users = sa.table("staff_users", sa.column("role", sa.String))
    op.execute(staff_users.update().values(role="admin"))


def downgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.drop_column("role")
