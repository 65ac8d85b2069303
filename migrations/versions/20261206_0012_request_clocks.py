"""rights requests follow their jurisdiction's clock: the jurisdiction, CCPA's
acknowledgement (acknowledge_by, acknowledged_at) and 45-day extension
(extension_days); the opt_out_sale_sharing and limit_sensitive types; the
profile channel's use_sensitive_data purpose; subjects.ask_again_after
(CCPA's 12-month wait after an opt-out of sale/sharing)

Requests made before keep an empty jurisdiction: GDPR's month, as they had.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
OLD_TYPES = "type IN ('access', 'erasure', 'correction')"
NEW_TYPES = "type IN ('access', 'erasure', 'correction', 'opt_out_sale_sharing', 'limit_sensitive')"
SENSITIVE = {
    "channel": "profile",
    "name": "use_sensitive_data",
    "label": "Use sensitive personal information about me beyond what my orders need",
    "marketing": False,
}


def upgrade():
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_rights_requests_type"), type_="check")
        batch_op.alter_column("type", existing_type=sa.String(length=12), type_=sa.String(length=24), existing_nullable=False)
        batch_op.create_check_constraint(op.f("ck_rights_requests_type"), NEW_TYPES)
        batch_op.add_column(sa.Column("jurisdiction", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("extension_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("acknowledge_by", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ask_again_after", UTC_DATETIME, nullable=True))
    purposes = sa.table("purposes", sa.column("channel"), sa.column("name"), sa.column("label"), sa.column("marketing"))
    op.bulk_insert(purposes, [SENSITIVE])


def downgrade():
    consent_state = sa.table("consent_state", sa.column("channel"), sa.column("purpose"))
    consent_events = sa.table("consent_events", sa.column("channel"), sa.column("purpose"))
    for table in (consent_state, consent_events):
        op.execute(table.delete().where(table.c.channel == "profile", table.c.purpose == "use_sensitive_data"))
    op.execute("DELETE FROM purposes WHERE channel = 'profile' AND name = 'use_sensitive_data'")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("ask_again_after")
    op.execute("DELETE FROM rights_requests WHERE type IN ('opt_out_sale_sharing', 'limit_sensitive')")
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("acknowledge_by")
        batch_op.drop_column("extension_days")
        batch_op.drop_column("jurisdiction")
        batch_op.drop_constraint(op.f("ck_rights_requests_type"), type_="check")
        batch_op.alter_column("type", existing_type=sa.String(length=24), type_=sa.String(length=12), existing_nullable=False)
        batch_op.create_check_constraint(op.f("ck_rights_requests_type"), OLD_TYPES)
