"""foundation: subjects, consent ledger, purposes, policies, jobs, notices, audit, API keys

Revision ID: 0001
Revises:
Create Date: 2026-11-26 02:21:04.934723

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


UTC_DATETIME = sa.DateTime(timezone=True)

# The purposes of each channel when this revision was written (channels/ declares
# them; later revisions add or retire purposes).
PURPOSES = [
    ("email", "newsletter", "Newsletter", True),
    ("email", "product_updates", "Product updates", True),
    ("email", "offers", "Special offers", True),
    ("email", "transactional", "Receipts, delivery and account messages", False),
    ("phone", "marketing", "Marketing calls", True),
    ("fax", "marketing", "Marketing faxes", True),
    ("mail", "marketing", "Marketing by post", True),
    ("partner", "share_for_fulfilment", "Share my details with a partner when needed to fulfil my order", False),
    ("partner", "share_for_marketing", "Share my details with partners for their marketing", True),
]


def txid_default():
    """The writing transaction's id on PostgreSQL (orders the change feed);
    SQLite serialises writers, so a constant keeps id order."""
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("(pg_current_xact_id()::text::bigint)")
    return sa.text("0")


def upgrade():
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_occurred_at"), ["occurred_at"], unique=False)
        batch_op.create_index("ix_audit_events_target", ["target_type", "target_id"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", UTC_DATETIME, nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("lease_expires_at", UTC_DATETIME, nullable=True),
        sa.Column("dispatched_at", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_jobs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_jobs_dedupe_key")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_status_run_after", ["status", "run_after"], unique=False)

    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("last_updated", sa.Date(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("effective_at", UTC_DATETIME, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_policy_versions_version")),
    )
    op.create_table(
        "purposes",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "name", name=op.f("pk_purposes")),
    )
    purposes = sa.table("purposes", sa.column("channel"), sa.column("name"), sa.column("label"), sa.column("marketing"))
    op.bulk_insert(purposes, [{"channel": c, "name": n, "label": label, "marketing": m} for c, n, label, m in PURPOSES])
    op.create_table(
        "subjects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_ref", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("erased_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_subjects_external_ref")),
    )
    op.create_table(
        "suppressions",
        sa.Column("value_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("value_hash", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default=txid_default(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.Column("policy_version", sa.String(length=40), nullable=True),
        sa.Column("evidence_ip", sa.String(length=64), nullable=True),
        sa.Column("evidence_user_agent", sa.String(length=512), nullable=True),
        sa.Column("evidence_note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint("status IN ('granted', 'withdrawn')", name=op.f("ck_consent_events_status")),
        sa.ForeignKeyConstraint(
            ["channel", "purpose"], ["purposes.channel", "purposes.name"], name=op.f("fk_consent_events_channel_purposes")
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_consent_events_subject_id_subjects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index("ix_consent_events_feed", ["txid", "id"], unique=False)
        batch_op.create_index("ix_consent_events_subject_occurred", ["subject_id", "occurred_at"], unique=False)

    op.create_table(
        "identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("value_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_identifiers_subject_id_subjects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identifiers")),
        sa.UniqueConstraint("subject_id", "kind", name=op.f("uq_identifiers_subject_id_kind")),
        sa.UniqueConstraint("value_hash", name=op.f("uq_identifiers_value_hash")),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("sender IN ('transactional', 'marketing')", name=op.f("ck_notices_sender")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f("ck_notices_status")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_notices_subject_id_subjects"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notices_idempotency_key")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "consent_state",
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.CheckConstraint("status IN ('granted', 'withdrawn')", name=op.f("ck_consent_state_status")),
        sa.ForeignKeyConstraint(
            ["channel", "purpose"], ["purposes.channel", "purposes.name"], name=op.f("fk_consent_state_channel_purposes")
        ),
        sa.ForeignKeyConstraint(["event_id"], ["consent_events.id"], name=op.f("fk_consent_state_event_id_consent_events")),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_consent_state_subject_id_subjects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subject_id", "channel", "purpose", name=op.f("pk_consent_state")),
    )


def downgrade():
    op.drop_table("consent_state")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_subject_id"))

    op.drop_table("notices")
    op.drop_table("identifiers")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_subject_occurred")
        batch_op.drop_index("ix_consent_events_feed")

    op.drop_table("consent_events")
    op.drop_table("suppressions")
    op.drop_table("subjects")
    op.drop_table("purposes")
    op.drop_table("policy_versions")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_run_after")

    op.drop_table("jobs")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_target")
        batch_op.drop_index(batch_op.f("ix_audit_events_occurred_at"))

    op.drop_table("audit_events")
    op.drop_table("api_keys")
