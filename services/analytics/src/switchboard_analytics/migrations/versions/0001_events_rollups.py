"""Events (idempotent by id), hourly and daily rollups, conversation facts and the export cursor.

Revision ID: 0001_events_rollups
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_events_rollups"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("end_user_id", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_analytics_events"),
        sa.UniqueConstraint("event_id", name="uq_analytics_events_event_id"),
    )
    op.create_index("ix_analytics_events_tenant_occurred", "analytics_events", ["tenant_id", "occurred_at"])
    op.create_index(
        "ix_analytics_events_tenant_conversation", "analytics_events", ["tenant_id", "conversation_id"]
    )
    op.create_table(
        "analytics_rollups",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("grain", sa.String(1), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("bucket", TZ, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "grain", "metric", "bucket", "key", name="pk_analytics_rollups"),
    )
    op.create_table(
        "analytics_conversations",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("end_user_id", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_activity_at", TZ, nullable=False),
        sa.Column("customer_messages", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("no_answers", sa.Integer(), nullable=False),
        sa.Column("last_answer_at", TZ, nullable=True),
        sa.Column("last_answer_no_answer", sa.Boolean(), nullable=False),
        sa.Column("operator_replies", sa.Integer(), nullable=False),
        sa.Column("handoffs", sa.Integer(), nullable=False),
        sa.Column("handoff_reason", sa.String(64), nullable=True),
        sa.Column("positive_feedback", sa.Integer(), nullable=False),
        sa.Column("negative_feedback", sa.Integer(), nullable=False),
        sa.Column("csat_score", sa.Integer(), nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("next_contact_at", TZ, nullable=True),
        sa.Column("recontact_gap_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "conversation_id", name="pk_analytics_conversations"),
    )
    op.create_index(
        "ix_analytics_conversations_tenant_started", "analytics_conversations", ["tenant_id", "started_at"]
    )
    op.create_index(
        "ix_analytics_conversations_tenant_user_started",
        "analytics_conversations",
        ["tenant_id", "end_user_id", "started_at"],
    )
    op.create_index(
        "ix_analytics_conversations_tenant_last_activity",
        "analytics_conversations",
        ["tenant_id", "last_activity_at"],
    )
    op.create_table(
        "analytics_export_cursors",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", TZ, nullable=True),
        sa.Column("exported", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_analytics_export_cursors"),
    )


def downgrade() -> None:
    op.drop_table("analytics_export_cursors")
    op.drop_index("ix_analytics_conversations_tenant_last_activity", table_name="analytics_conversations")
    op.drop_index("ix_analytics_conversations_tenant_user_started", table_name="analytics_conversations")
    op.drop_index("ix_analytics_conversations_tenant_started", table_name="analytics_conversations")
    op.drop_table("analytics_conversations")
    op.drop_table("analytics_rollups")
    op.drop_index("ix_analytics_events_tenant_conversation", table_name="analytics_events")
    op.drop_index("ix_analytics_events_tenant_occurred", table_name="analytics_events")
    op.drop_table("analytics_events")
