"""register_mail_records: who keeps each Mail Preference Service address
listed (registers/models.py, MailRecord), so that a delta removing one
resident leaves the address listed for the others. Lists imported before have
no records: a delta removal there still takes the address away, as it did,
until the next full MPS import.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "register_mail_records",
        sa.Column("list_id", BIGINT, sa.ForeignKey("register_lists.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key_hash", sa.LargeBinary(length=32), primary_key=True),
        sa.Column("record_hash", sa.LargeBinary(length=32), primary_key=True),
        sqlite_with_rowid=False,
    )


def downgrade():
    op.drop_table("register_mail_records")
