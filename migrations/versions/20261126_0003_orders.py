"""orders: Stripe events, orders, payments, provisioned systems, escalations; the profile purpose

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 03:41:11.879132

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.Column("applied_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("plan", sa.String(length=200), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("partner_code", sa.String(length=40), nullable=True),
        sa.Column("billing_name", sa.String(length=255), nullable=True),
        sa.Column("billing_address", sa.String(length=500), nullable=True),
        sa.Column("system_name", sa.String(length=30), nullable=True),
        sa.Column("username", sa.String(length=30), nullable=True),
        sa.Column("system_url", sa.String(length=300), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("paid_at", UTC_DATETIME, nullable=True),
        sa.Column("commissioned_at", UTC_DATETIME, nullable=True),
        sa.Column("provisioned_at", UTC_DATETIME, nullable=True),
        sa.Column("delivered_at", UTC_DATETIME, nullable=True),
        sa.Column("password_set_at", UTC_DATETIME, nullable=True),
        sa.Column("cancelled_at", UTC_DATETIME, nullable=True),
        sa.Column("last_payment_failed_at", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'payment_failed', 'paid', 'commissioning', 'delivered', 'cancelled')", name=op.f("ck_orders_status")
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_orders_subject_id_subjects"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("reference", name=op.f("uq_orders_reference")),
        sa.UniqueConstraint("stripe_checkout_session_id", name=op.f("uq_orders_stripe_checkout_session_id")),
        sa.UniqueConstraint("stripe_subscription_id", name=op.f("uq_orders_stripe_subscription_id")),
        sa.UniqueConstraint("system_name", name=op.f("uq_orders_system_name")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_partner_paid", ["partner_code", "paid_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("notified_count", sa.Integer(), nullable=False),
        sa.Column("last_notified_at", UTC_DATETIME, nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_escalations_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
        sa.UniqueConstraint("order_id", "kind", name=op.f("uq_escalations_order_id_kind")),
    )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.create_index("ix_escalations_open", ["resolved_at", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_escalations_order_id"), ["order_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("paid_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_payments_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("stripe_id", name=op.f("uq_payments_stripe_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_order_id"), ["order_id"], unique=False)

    op.create_table(
        "provisioned_systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("system_name", sa.String(length=30), nullable=False),
        sa.Column("username", sa.String(length=30), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_provisioned_systems_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioned_systems")),
        sa.UniqueConstraint("order_id", name=op.f("uq_provisioned_systems_order_id")),
        sa.UniqueConstraint("system_name", name=op.f("uq_provisioned_systems_system_name")),
    )
    purposes = sa.table("purposes", sa.column("channel"), sa.column("name"), sa.column("label"), sa.column("marketing"))
    op.bulk_insert(
        purposes,
        [
            {
                "channel": "profile",
                "name": "profile_enrichment",
                "label": "Keep my billing details and order history for my next purchase",
                "marketing": False,
            }
        ],
    )


def downgrade():
    op.execute("DELETE FROM purposes WHERE channel = 'profile'")
    op.drop_table("provisioned_systems")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_order_id"))

    op.drop_table("payments")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalations_order_id"))
        batch_op.drop_index("ix_escalations_open")

    op.drop_table("escalations")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_subject_id"))
        batch_op.drop_index("ix_orders_partner_paid")

    op.drop_table("orders")
    op.drop_table("stripe_events")
