"""Completion threads move to chat: an OpenAI client's thread is the conversation chat keeps for its key.

Chat's revision 0004_api_thread_keys gives each thread's conversations their key (from the conversation's
``metadata.thread``, which the gateway always wrote), so threads continue across the upgrade.

Revision ID: 0002_threads_move_to_chat
Revises: 0001_tenants_and_keys
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_threads_move_to_chat"
down_revision: str | None = "0001_tenants_and_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("gateway_completion_threads")


def downgrade() -> None:
    op.create_table(
        "gateway_completion_threads",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("thread_key", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_completion_threads"),
        sa.UniqueConstraint("tenant_id", "thread_key", name="uq_gateway_threads_tenant_key"),
    )
