"""The suggestion outbox: resolved conversations whose operator answers have not reached retrieval yet.

Revision ID: 0003_suggestion_outbox
Revises: 0002_conversations_opened_by
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_suggestion_outbox"
down_revision: str | None = "0002_conversations_opened_by"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_suggestion_outbox",
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("chat_conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_chat_suggestion_outbox_due_at", "chat_suggestion_outbox", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_suggestion_outbox_due_at", table_name="chat_suggestion_outbox")
    op.drop_table("chat_suggestion_outbox")
