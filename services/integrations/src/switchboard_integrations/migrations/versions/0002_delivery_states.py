"""Deliveries that keep what they send and when to try again: the rendered message's source (text, format,
sources), the next background attempt, and the handoff and operator an operator reply belongs to; and when a
handoff was first answered (the customer's wait ends there, not at the claim).

Revision ID: 0002_delivery_states
Revises: 0001_integrations
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_delivery_states"
down_revision: str | None = "0001_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("channel_deliveries", sa.Column("payload", sa.JSON(), nullable=True))
    op.add_column(
        "channel_deliveries", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("channel_deliveries", sa.Column("handoff_id", sa.String(32), nullable=True))
    op.add_column("channel_deliveries", sa.Column("operator_id", sa.String(200), nullable=True))
    op.create_index(
        "ix_channel_deliveries_status_next_attempt_at", "channel_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_channel_deliveries_handoff_id", "channel_deliveries", ["handoff_id"])
    op.add_column("handoffs", sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("answered_at")
    op.drop_index("ix_channel_deliveries_handoff_id", table_name="channel_deliveries")
    op.drop_index("ix_channel_deliveries_status_next_attempt_at", table_name="channel_deliveries")
    with op.batch_alter_table("channel_deliveries") as batch:
        batch.drop_column("operator_id")
        batch.drop_column("handoff_id")
        batch.drop_column("next_attempt_at")
        batch.drop_column("payload")
