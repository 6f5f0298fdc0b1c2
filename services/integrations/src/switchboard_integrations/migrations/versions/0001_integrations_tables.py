"""Connector configs, channel bindings, tickets, handoff queue, webhook receipts, channel deliveries.

Revision ID: 0001_integrations
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_integrations"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "connector_configs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_connector_configs"),
        sa.UniqueConstraint("tenant_id", "kind", name="uq_connector_configs_tenant_kind"),
    )
    op.create_index("ix_connector_configs_tenant_id", "connector_configs", ["tenant_id"])

    op.create_table(
        "channel_bindings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_channel_bindings"),
        sa.UniqueConstraint("channel", "external_id", name="uq_channel_bindings_channel_external_id"),
    )
    op.create_index("ix_channel_bindings_tenant_id", "channel_bindings", ["tenant_id"])

    op.create_table(
        "tickets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("connector_id", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=True),
        sa.Column("url", sa.String(500), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("requester_external_id", sa.String(100), nullable=True),
        sa.Column("own_comment_ids", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_tickets_tenant_idempotency_key"),
    )
    op.create_index("ix_tickets_tenant_id", "tickets", ["tenant_id"])
    op.create_index("ix_tickets_external_id", "tickets", ["external_id"])
    op.create_index("ix_tickets_conversation_id", "tickets", ["conversation_id"])

    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("end_user_id", sa.String(200), nullable=False),
        sa.Column("external_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("operator_id", sa.String(200), nullable=True),
        sa.Column("ticket_id", sa.String(32), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_handoffs_ticket_id_tickets", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_handoffs_tenant_status", "handoffs", ["tenant_id", "status"])
    op.create_index("ix_handoffs_conversation_id", "handoffs", ["conversation_id"])

    op.create_table(
        "webhook_receipts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_receipts"),
        sa.UniqueConstraint("source", "event_key", name="uq_webhook_receipts_source_event_key"),
    )

    op.create_table(
        "channel_deliveries",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("external_key", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(200), nullable=True),
        sa.Column("provider_message_ids", sa.JSON(), nullable=False),
        sa.Column("provider_status", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_channel_deliveries"),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name="uq_channel_deliveries_tenant_idempotency_key"
        ),
    )
    op.create_index(
        "ix_channel_deliveries_provider_message_id", "channel_deliveries", ["provider_message_id"]
    )


def downgrade() -> None:
    op.drop_table("channel_deliveries")
    op.drop_table("webhook_receipts")
    op.drop_table("handoffs")
    op.drop_table("tickets")
    op.drop_table("channel_bindings")
    op.drop_table("connector_configs")
