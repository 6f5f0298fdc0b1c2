"""Conversations, messages, transitions, end-user profiles, feedback, CSAT and assistant settings.

Revision ID: 0001_conversations
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_conversations"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chat_conversations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("end_user_id", sa.String(200), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("external_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(16), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("unsupported_streak", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=True),
        sa.Column("ticket_id", sa.String(64), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_conversations"),
    )
    op.create_index("ix_chat_conversations_tenant_updated", "chat_conversations", ["tenant_id", "updated_at"])
    op.create_index("ix_chat_conversations_tenant_user", "chat_conversations", ["tenant_id", "end_user_id"])
    op.create_index(
        "ix_chat_conversations_tenant_external",
        "chat_conversations",
        ["tenant_id", "channel", "external_key"],
    )
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("no_answer", sa.Boolean(), nullable=False),
        sa.Column("retrieval_ms", sa.Float(), nullable=True),
        sa.Column("generation_ms", sa.Float(), nullable=True),
        sa.Column("total_ms", sa.Float(), nullable=True),
        sa.Column("client_message_id", sa.String(200), nullable=True),
        sa.Column("reply_to", sa.String(32), nullable=True),
        sa.Column("operator_id", sa.String(200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["chat_conversations.id"],
            name="fk_chat_messages_conversation_id_chat_conversations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_chat_messages_conversation_seq"),
        sa.UniqueConstraint(
            "conversation_id", "client_message_id", name="uq_chat_messages_conversation_client_id"
        ),
    )
    op.create_table(
        "chat_transitions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("from_value", sa.String(16), nullable=False),
        sa.Column("to_value", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_transitions"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["chat_conversations.id"],
            name="fk_chat_transitions_conversation_id_chat_conversations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_chat_transitions_conversation", "chat_transitions", ["conversation_id", "created_at"])
    op.create_table(
        "chat_end_users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("end_user_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(64), nullable=True),
        sa.Column("crm_id", sa.String(200), nullable=True),
        sa.Column("locale", sa.String(32), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_end_users"),
        sa.UniqueConstraint("tenant_id", "end_user_id", name="uq_chat_end_users_tenant_user"),
    )
    op.create_table(
        "chat_feedback",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_feedback"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["chat_conversations.id"],
            name="fk_chat_feedback_conversation_id_chat_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["chat_messages.id"],
            name="fk_chat_feedback_message_id_chat_messages",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("message_id", name="uq_chat_feedback_message"),
    )
    op.create_table(
        "chat_csat",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_csat"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["chat_conversations.id"],
            name="fk_chat_csat_conversation_id_chat_conversations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("conversation_id", name="uq_chat_csat_conversation"),
    )
    op.create_table(
        "chat_assistant_settings",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("provider_configs", sa.JSON(), nullable=False),
        sa.Column("escalation", sa.JSON(), nullable=False),
        sa.Column("greeting", sa.JSON(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("kb_ids", sa.JSON(), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_chat_assistant_settings"),
    )


def downgrade() -> None:
    op.drop_table("chat_assistant_settings")
    op.drop_table("chat_csat")
    op.drop_table("chat_feedback")
    op.drop_table("chat_end_users")
    op.drop_table("chat_transitions")
    op.drop_table("chat_messages")
    op.drop_table("chat_conversations")
