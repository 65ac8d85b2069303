"""rights requests, partners, disclosures, staff accounts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:19:08.509645

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("code", name=op.f("uq_partners_code")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_login_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_table(
        "disclosures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("data_categories", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_disclosures_partner_id_partners")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_disclosures_subject_id_subjects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosures")),
    )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.create_index("ix_disclosures_subject", ["subject_id", "occurred_at"], unique=False)

    op.create_table(
        "rights_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("extension_months", sa.Integer(), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("export_file", sa.String(length=500), nullable=True),
        sa.Column("export_expires_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("verified_at", UTC_DATETIME, nullable=True),
        sa.Column("due_at", UTC_DATETIME, nullable=True),
        sa.Column("reminder_sent_at", UTC_DATETIME, nullable=True),
        sa.Column("overdue_alerted_at", UTC_DATETIME, nullable=True),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('awaiting_verification', 'verified', 'awaiting_review', 'processing', 'completed', 'rejected', 'expired', 'failed')",
            name=op.f("ck_rights_requests_status"),
        ),
        sa.CheckConstraint("type IN ('access', 'erasure', 'correction')", name=op.f("ck_rights_requests_type")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_rights_requests_subject_id_subjects"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_requests")),
        sa.UniqueConstraint("reference", name=op.f("uq_rights_requests_reference")),
    )
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rights_requests_email_hash"), ["email_hash"], unique=False)
        batch_op.create_index("ix_rights_requests_status_due", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rights_requests_subject_id"), ["subject_id"], unique=False)

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forget_after_send", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("forget_after_send")

    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rights_requests_subject_id"))
        batch_op.drop_index("ix_rights_requests_status_due")
        batch_op.drop_index(batch_op.f("ix_rights_requests_email_hash"))

    op.drop_table("rights_requests")
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_index("ix_disclosures_subject")

    op.drop_table("disclosures")
    op.drop_table("staff_users")
    op.drop_table("partners")
