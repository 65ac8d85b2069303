"""jobs: staff may cancel a job (status `cancelled`); rights_requests: the
three-day deadline alert's own marker

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_jobs_status"), "status IN ('queued', 'running', 'done', 'failed', 'cancelled')")
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("three_day_alert_sent_at", UTC_DATETIME, nullable=True))


def downgrade():
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_column("three_day_alert_sent_at")
    # A cancelled job ends as failed, the nearest status the old constraint allows.
    jobs = sa.table("jobs", sa.column("status", sa.String))
    op.execute(jobs.update().where(jobs.c.status == "cancelled").values(status="failed"))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_jobs_status"), "status IN ('queued', 'running', 'done', 'failed')")
